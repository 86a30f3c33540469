"""Parity of an exported bundle: the service's code (Node, onnxruntime) against PyTorch on the same images.

Both sides see the same pixels (prepared by the service's own decode/resize code); the final anomaly maps
and image scores must agree within the tolerance.
"""
from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import data
from .anomaly_map import fuse, reduce_score
from .members import Members
from .teachers.nsfwjs import REPO_ROOT

log = logging.getLogger("mixdistill.parity")
SCORE_JS = REPO_ROOT / "dist" / "src" / "cli" / "score-images.js"


def reference(members: Members, manifest: dict, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps and scores by the PyTorch reference math, with the bundle's fusion settings."""
    fusion = manifest["fusion"]
    names = [o["name"] for o in manifest["student"]["outputs"]]
    with torch.no_grad():
        maps = dict(zip(names, members.maps(x)))
        chosen = [f for f in fusion["paths"] if f["weight"] != 0]
        fused = fuse([maps[f["student"]] for f in chosen], [f["offset"] for f in chosen], [f["scale"] for f in chosen],
                     [f["weight"] for f in chosen], fusion["sigma"], fusion["kernelSize"])
        return fused.numpy(), reduce_score(fused, fusion["reduction"]).numpy()


def tiled_reference(members: Members, manifest: dict, image: data.ScaledImage, batch: int) -> tuple[np.ndarray, float]:
    """fit tile: the image's tiles through the reference math, each path's maps blended at the inspection scale,
    then fused and blurred as one map (src/detect/tiled.ts does the same with the fused tile maps: the blend is
    linear, so blending fused maps equals fusing blended ones)."""
    fusion = manifest["fusion"]
    names = [o["name"] for o in manifest["student"]["outputs"]]
    maps = dict(zip(names, members.tiled_maps([image], batch)))
    chosen = [f for f in fusion["paths"] if f["weight"] != 0]
    fused = fuse([torch.from_numpy(maps[f["student"]][0])[None] for f in chosen], [f["offset"] for f in chosen],
                 [f["scale"] for f in chosen], [f["weight"] for f in chosen], fusion["sigma"], fusion["kernelSize"])
    return fused[0].numpy(), float(reduce_score(fused, fusion["reduction"])[0])


def parity(bundle: Path, run_dirs: list[Path], checkpoint: str, images: list[Path], tolerance: float = 1e-4, batch: int = 16) -> dict:
    """run_dirs: the run the bundle was exported from, or its members' runs in export order."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    members = Members.load(run_dirs, checkpoint)
    inp = manifest["input"]
    samples = [data.Sample(p, "any") for p in images]
    with tempfile.TemporaryDirectory() as tmp:
        tiled = inp["fit"] == "tile"
        pixels = (data.prepare_scaled(samples, inp["width"], inp["height"], inp["tile"]["scale"], Path(tmp)) if tiled
                  else data.prepare(samples, inp["width"], inp["height"], inp["fit"], Path(tmp)))
        lst = Path(tmp) / "files.txt"
        lst.write_text("\n".join(str(p.resolve()) for p in images) + "\n")
        out = Path(tmp) / "maps.f32"
        lines = subprocess.run(["node", str(SCORE_JS), "--bundle", str(bundle), "--list", str(lst), "--out", str(out)],
                               check=True, capture_output=True, text=True).stdout.splitlines()
        flat = np.fromfile(out, dtype=np.float32)
    answers = [json.loads(l) for l in lines]
    node_scores = np.array([a["score"] for a in answers], dtype=np.float32)
    if tiled:  # each image's map at its own size, one after the other
        sizes = [a["mapWidth"] * a["mapHeight"] for a in answers]
        node_maps = [m.reshape(a["mapHeight"], a["mapWidth"]) for m, a in zip(np.split(flat, np.cumsum(sizes)[:-1]), answers)]
        refs = [tiled_reference(members, manifest, im, batch) for im in pixels]
        ref_maps, ref_scores = [r[0] for r in refs], np.array([r[1] for r in refs])
    else:
        node_maps = flat.reshape(len(images), inp["height"], inp["width"])
        s = inp["scaling"]
        chunks = [reference(members, manifest, data.to_tensor(pixels[i:i + batch], s["scale"], s["mean"], s["std"], inp.get("normalizeIntensity")))
                  for i in range(0, len(pixels), batch)]
        ref_maps, ref_scores = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
    result = {"images": len(images), **({"tiles": sum(a["tiles"] for a in answers)} if tiled else {}),
              "maxMapDiff": max(float(np.abs(r - m).max()) for r, m in zip(ref_maps, node_maps)),
              "maxScoreDiff": float(np.abs(ref_scores - node_scores).max()), "tolerance": tolerance}
    result["ok"] = result["maxMapDiff"] <= tolerance and result["maxScoreDiff"] <= tolerance
    log.info("parity %s: %s", bundle, result)
    return result
