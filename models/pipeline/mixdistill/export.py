"""Export a training run to a model bundle: teacher.onnx, student.onnx, manifest.json, MODEL_CARD.md."""
from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from . import __version__, data, fusion_select, synthetic_defects
from .anomaly_map import fuse, kernel_size_for, path_maps, reduce_score
from .bundle import validate_manifest, write_card
from .calibrate import path_normalization, threshold_f1, threshold_from_normal
from .train import Run, TrainConfig, load_split
from .teachers.nsfwjs import REPO_ROOT

log = logging.getLogger("mixdistill.export")
INPUT = "image"


@dataclass
class ExportOptions:
    run: Path
    out: Path
    version: str = "1.0.0"
    checkpoint: str = "best.pt"
    sigma: float = 4.0
    reduction: str = "max"
    fusion_weights: dict[str, float] = field(default_factory=dict)
    margin: float = 0.1
    description: str = ""
    card_notes: str = ""
    select_fusion: bool = False  # choose fusion weights on validation images with synthetic defects
    defects: Path | None = None  # MVTec-layout folder whose test/<defect>/ images (and masks) make thresholds F1-optimal
    batch: int = 16


def parse_reduction(text: str) -> dict:
    if text == "max":
        return {"kind": "max"}
    kind, _, k = text.partition(":")
    if kind == "topk-mean" and k.isdigit() and int(k) > 0:
        return {"kind": "topk-mean", "k": int(k)}
    raise ValueError(f"reduction must be max or topk-mean:K, not {text!r}")


def _export_onnx(module: torch.nn.Module, path: Path, outputs: list[str], h: int, w: int) -> None:
    module.eval()
    dyn = {INPUT: {0: "batch"}, **{o: {0: "batch"} for o in outputs}}
    with torch.no_grad():
        torch.onnx.export(module, torch.zeros(1, 3, h, w), str(path), input_names=[INPUT], output_names=outputs,
                          dynamic_axes=dyn, opset_version=17, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(path)))


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def collect_maps(run: Run, images: np.ndarray, batch: int) -> list[np.ndarray]:
    """Per path, [N, H, W] discrepancy maps at input size (reference math)."""
    cfg = run.cfg
    chunks: list[list[torch.Tensor]] = [[] for _ in run.paths]
    run.student.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = run.tensors(images[i:i + batch])
            maps = path_maps(run.targets(run.teacher.module(x)), run.student(x), cfg.height, cfg.width)
            for k, m in enumerate(maps):
                chunks[k].append(m)
    return [torch.cat(c).numpy() for c in chunks]


def export(opts: ExportOptions) -> Path:
    cfg = TrainConfig(**json.loads((opts.run / "config.json").read_text()))
    torch.manual_seed(cfg.seed)
    run = Run(cfg)
    state = torch.load(opts.run / opts.checkpoint, map_location="cpu")
    run.load(state)
    run.student.eval()
    name = opts.out.name
    opts.out.mkdir(parents=True, exist_ok=True)
    out_names = [p.output_name(run.taps) for p in run.paths]

    _export_onnx(run.teacher.module, opts.out / "teacher.onnx", run.teacher.taps, cfg.height, cfg.width)
    _export_onnx(run.student, opts.out / "student.onnx", out_names, cfg.height, cfg.width)

    # Calibration on the normal validation split the run held out (never trained on).
    fit_set, val_set = load_split(cfg)
    val_imgs = data.prepare(val_set, cfg.width, cfg.height, cfg.fit, opts.run.parent / ".cache")
    maps = collect_maps(run, val_imgs, opts.batch)
    norms = [path_normalization(m) for m in maps]
    weights = [opts.fusion_weights.get(n, opts.fusion_weights.get(p.kind, 1.0)) for n, p in zip(out_names, run.paths)]
    ksize = kernel_size_for(opts.sigma)
    reduction = parse_reduction(opts.reduction)
    offsets, scales = [o for o, _ in norms], [s for _, s in norms]
    val_maps = [torch.from_numpy(m) for m in maps]
    selection = None
    if opts.select_fusion:
        if opts.fusion_weights:
            raise ValueError("--select-fusion chooses the weights itself; drop --fusion-weights")
        d_imgs, d_masks, kinds = synthetic_defects.paint(val_imgs, cfg.seed)
        d_maps = collect_maps(run, d_imgs, opts.batch)
        weights, rows = fusion_select.select(val_maps, [torch.from_numpy(m) for m in d_maps], d_masks, norms,
                                             out_names, opts.sigma, ksize, reduction, cfg.seed)
        selection = {"data": f"{len(val_imgs)} normal validation images and one synthetic defect painted on each "
                             f"({', '.join(f'{k} {kinds.count(k)}' for k in synthetic_defects.KINDS)}), seed {cfg.seed}",
                     "criterion": "mean of image AUROC and pixel AUROC", "candidates": rows}
        log.info("fusion weights chosen on synthetic defects: %s", next(r["name"] for r in rows if r["chosen"]))
    fused = fuse(val_maps, offsets, scales, weights, opts.sigma, ksize)
    scores = reduce_score(fused, reduction).numpy()
    per_image_max = fused.flatten(1).max(dim=1).values.numpy()
    method = "normal-quantile"
    description = f"threshold = p99 + {opts.margin} * (p99 - p50) of normal validation scores; low = p50"
    image_cal = threshold_from_normal(scores, opts.margin)
    pixel_cal = threshold_from_normal(per_image_max, opts.margin)
    pixel_cal["low"] = float(np.median(fused.numpy()))
    if opts.defects and not (opts.defects / "test").is_dir():
        raise FileNotFoundError(f"--defects {opts.defects}: expected an MVTec-layout folder with test/<defect>/ images")
    defective = [s for s in data.test_samples(opts.defects) if s.defect != "good"] if opts.defects else []
    if opts.defects and not defective:
        log.warning("%s holds no defective images: thresholds stay normal-quantile", opts.defects)
    if defective:
        method = "f1-optimal"
        d_imgs = data.prepare(defective, cfg.width, cfg.height, cfg.fit, opts.run.parent / ".cache")
        d_fused = fuse([torch.from_numpy(m) for m in collect_maps(run, d_imgs, opts.batch)], offsets, scales, weights, opts.sigma, ksize)
        image_cal, image_how = threshold_f1(image_cal, scores, reduce_score(d_fused, reduction).numpy())
        masks = data.prepare_masks(defective, cfg.width, cfg.height, cfg.fit)
        d_px = d_fused.numpy()
        if masks.any():
            normal_px = np.concatenate([fused.numpy().ravel(), d_px[~masks]])
            pixel_cal, pixel_how = threshold_f1(pixel_cal, normal_px, d_px[masks], binned=True)
        else:
            pixel_how = "no masks: pixel threshold kept p99 + margin of each normal image's maximum"
        description = (f"F1-optimal on {len(val_set)} normal validation and {len(defective)} defective images; "
                       f"image: {image_how}; pixel: {pixel_how}; low = normal median")
        log.info("calibration: %s", description)

    log_lines = [json.loads(l) for l in (opts.run / "log.jsonl").read_text().splitlines() if l.strip()]
    manifest = {
        "schemaVersion": 1,
        "name": name,
        "version": opts.version,
        "description": opts.description or f"Mixed-distillation student on {cfg.category or Path(cfg.data).name}, teacher {cfg.teacher}",
        "card": "MODEL_CARD.md",
        "input": {"name": INPUT, "width": cfg.width, "height": cfg.height, "channelOrder": "RGB",
                  "scaling": {k: run.teacher.scaling[k] for k in ("scale", "mean", "std")}, "fit": cfg.fit,
                  **({"normalizeIntensity": cfg.normalize_intensity} if cfg.normalize_intensity else {})},
        "teacher": {"file": "teacher.onnx", "architecture": cfg.teacher,
                    "outputs": [{"name": t.name, "stride": t.stride, "channels": t.channels, **({"standardize": st} if cfg.standardize_teacher else {})}
                                for t, st in zip(run.taps, run.teacher.module.stats() if cfg.standardize_teacher else [None] * len(run.taps))]},
        "student": {"file": "student.onnx", "architecture": run.student.describe(),
                    "outputs": [{"name": n, "imitates": run.taps[p.teacher_tap].name, "path": p.kind, "layer": f"stage{p.student_stage + 1}",
                                 "stride": run.taps[p.teacher_tap].stride, "channels": run.taps[p.teacher_tap].channels}
                                for n, p in zip(out_names, run.paths)]},
        "fusion": {"paths": [{"student": n, "weight": w, "offset": o, "scale": s} for n, w, (o, s) in zip(out_names, weights, norms)],
                   "sigma": opts.sigma, "kernelSize": ksize, "reduction": reduction},
        "calibration": {"method": method, "description": description, "image": image_cal, "pixel": pixel_cal,
                        "validation": {"normalImages": len(val_set), "defectiveImages": len(defective)}},
        "provenance": {
            "createdAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "teacher": run.teacher.source,
            "data": {"root": Path(cfg.data).name, "category": cfg.category, "trainImages": len(fit_set),
                     "validationImages": len(val_set), "validationFraction": cfg.val_fraction, "seed": cfg.seed},
            "training": {"epochs": state.get("epoch"), "config": json.loads((opts.run / "config.json").read_text()),
                         "seconds": round(sum(r["seconds"] for r in log_lines), 1),
                         "finalValLoss": log_lines[-1]["val_loss"] if log_lines else None,
                         "torch": torch.__version__},
            "code": {"pipeline": __version__, "commit": _git_commit()},
            **({"fusionSelection": selection} if selection else {}),
        },
    }
    validate_manifest(manifest)
    (opts.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_card(opts.out, manifest, log_lines, opts.card_notes)
    log.info("bundle written to %s: image threshold %.4f (normal p50 %.4f)", opts.out, image_cal["threshold"], image_cal["low"])
    return opts.out
