"""Rebuild a run folder (config.json, best.pt, log.jsonl) from an exported bundle, for one of its members.

Why: a bundle outlives its run folders (checkpoints are not kept with the model), yet export needs runs to
build a new ensemble. Recovering a shipped member lets a new run join it without retraining it, and the
recovered member computes the same maps as the bundle (check with `parity`).

What the bundle keeps: the training configuration (manifest provenance) and the student's weights, with each
BatchNorm folded into the conv before it by torch.onnx. The folded conv is loaded as is and the BatchNorm
after it becomes an identity that adds the folded bias, which is exact in eval mode.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from .folding import batchnorm_after
from .train import Run, TrainConfig


def _members(manifest: dict) -> list[dict]:
    prov = manifest["provenance"]
    if "members" in prov:
        return prov["members"]
    return [{"run": None, "training": prov["training"]}]


def _conv_weights(model: onnx.ModelProto, scope: str = "") -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of every Conv node whose name starts with scope, in graph order (the order tracing ran the
    convs). An ensemble's graph scopes each member's nodes by its place in members.Concat: /parts.<i>/."""
    g = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"})
    return [(values[n.input[1]], values[n.input[2]] if len(n.input) > 2 and n.input[2] else None)
            for n in g.node if n.op_type == "Conv" and n.name.startswith(scope)]


def _convs_in_call_order(student: nn.Module, height: int, width: int) -> list[nn.Conv2d]:
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod)) for m in student.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            student(torch.zeros(1, 3, height, width))
    finally:
        for h in hooks:
            h.remove()
    return order


def _run_for(member: dict) -> Run:
    cfg = TrainConfig(**member["training"]["config"])
    if cfg.student != "forward":
        raise ValueError(f"member {member['run']!r} has a {cfg.student} student: only forward students can be recovered")
    torch.manual_seed(cfg.seed)
    return Run(cfg)


def recover(bundle: Path, member_name: str | None, out: Path) -> Path:
    manifest = json.loads((bundle / "manifest.json").read_text())
    members = _members(manifest)
    names = [m["run"] for m in members]
    if member_name is None and len(members) > 1:
        raise ValueError(f"{bundle} is an ensemble: name the member to recover ({', '.join(names)})")
    if member_name is not None and member_name not in names:
        raise ValueError(f"{bundle} has no member {member_name!r}: its members are {', '.join(map(str, names))}")
    index = 0 if member_name is None else names.index(member_name)
    member = members[index]
    run = _run_for(member)
    cfg = run.cfg
    student = run.student.eval()

    convs = _convs_in_call_order(student, cfg.height, cfg.width)
    stored = _conv_weights(onnx.load(str(bundle / manifest["student"]["file"])), f"/parts.{index}/" if len(members) > 1 else "")
    if len(stored) != len(convs):
        raise ValueError(f"{bundle}'s student graph has {len(stored)} convs for member {index + 1}, its configuration builds {len(convs)}")
    bn_after = {student.get_submodule(c): student.get_submodule(b) for c, b in batchnorm_after(student).items()}
    with torch.no_grad():
        for conv, (w, b) in zip(convs, stored):
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(f"conv weight {tuple(w.shape)} in the graph where the configuration builds {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w.copy()))
            bias = torch.from_numpy(b.copy()) if b is not None else torch.zeros(w.shape[0])
            bn = bn_after.get(conv)
            if bn is None:
                conv.bias.copy_(bias)
            else:
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) = 1
                bn.bias.copy_(bias)

    # Self-check: exporting the recovered student folds to the same conv weights as the bundle's.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "student.onnx"
        torch.onnx.export(student, torch.zeros(1, 3, cfg.height, cfg.width), str(path), opset_version=17, do_constant_folding=True)
        again = _conv_weights(onnx.load(str(path)))
    if len(again) != len(stored):
        raise ValueError("the recovered student exports to another number of convs than the bundle's")
    for (w1, b1), (w2, b2) in zip(again, stored):
        if not np.allclose(w1, w2, atol=1e-6) or not np.allclose(b1 if b1 is not None else 0, b2 if b2 is not None else 0, atol=1e-6):
            raise ValueError("the recovered student does not export to the bundle's weights: its graph is not one this code builds")

    training = member["training"]
    config = {**training["config"], "out": str(out)}
    checkpoint = {"config": config, "student": student.state_dict(), "epoch": training["epochs"], "val_loss": training["finalValLoss"]}
    if cfg.standardize_teacher:
        # teacher.onnx's outputs are the members' taps in member order
        first_tap = sum(len(m["taps"]) for m in members[:index])
        checkpoint["teacher_stats"] = [o["standardize"] for o in manifest["teacher"]["outputs"][first_tap:first_tap + len(run.taps)]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.save(checkpoint, out / "best.pt")
    # One line for the whole training, enough for export's provenance (time, final validation loss).
    (out / "log.jsonl").write_text(json.dumps({"epoch": training["epochs"], "seconds": training["seconds"],
                                               "val_loss": training["finalValLoss"], "torch": training["torch"],
                                               "recoveredFrom": f"{manifest['name']} {manifest['version']}"}) + "\n")
    return out
