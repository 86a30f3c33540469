"""Heatmap choices judged on halves of the MTD test split (a declared look at the test set; see the card's Notes).

Re-computes, from a bundle's runs, every figure of the mtd-mnv2-incv3 card's paragraph "the heatmap's floor and
its paths, chosen on half of the test split": the test split is cut into two halves stratified by defect folder,
candidates are ranked on half A and confirmed on half B, and the whole split is measured. Figures: image AUROC /
pixel AUROC / AUPRO (FPR <= 0.3) of maps made by the pipeline's reference math (anomaly_map), which the service's
graph mirrors; `npm run eval` remains the measure of a shipped bundle.

    /usr/bin/python3 models/studies/heatmap_choices.py --bundle models/mtd-mnv2-incv3 \
        --run runs/hard200 --run runs/inc-direct140 --data ../shared/datasets/mtd/magnetic_tile

About 6 minutes on 2 CPU cores; --maps keeps the per-path test maps (600 MB) for a second run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from bundle_runs import BundleRuns, add_arguments, sampled_pixel_auroc  # noqa: E402
from mixdistill import calibrate, data, fusion_select  # noqa: E402
from mixdistill.train import load_split  # noqa: E402

KINDS = ("blowhole", "break", "crack", "fray", "uneven")


def test_maps(b: BundleRuns, root: Path, cache: Path | None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per output name, [N, H, W] discrepancy maps of the test images; their masks and defect folders."""
    if cache and cache.exists():
        z = np.load(cache)
        return {k[2:]: z[k].astype(np.float32) for k in z.files if k.startswith("m.")}, z["masks"], z["defect"]
    members, cfg = b.members, b.members.cfg
    samples = data.test_samples(root)
    images = data.prepare(samples, cfg.width, cfg.height, cfg.fit, members.dirs[0].parent / ".cache")
    masks = data.prepare_masks(samples, cfg.width, cfg.height, cfg.fit)
    maps = dict(zip(b.names, members.collect_maps(images, 16)))
    defect = np.array([s.defect for s in samples])
    if cache:
        np.savez(cache, masks=masks, defect=defect, **{f"m.{k}": v.astype(np.float16) for k, v in maps.items()})
    return maps, masks, defect


def halves(defect: np.ndarray, seed: int) -> np.ndarray:
    """True for half A: half of each defect folder's images (good included), drawn by a seeded permutation."""
    rng = np.random.default_rng(seed)
    a = np.zeros(len(defect), bool)
    for c in np.unique(defect):
        idx = np.flatnonzero(defect == c)
        a[idx[rng.permutation(len(idx))][: len(idx) // 2]] = True
    return a


def regions(fused: np.ndarray, masks: np.ndarray) -> list[np.ndarray]:
    """The map's values inside each connected defect region (8-connectivity, as the service's AUPRO)."""
    out = []
    for i in np.flatnonzero(masks.reshape(len(masks), -1).any(1)):
        labels, n = ndimage.label(masks[i], structure=np.ones((3, 3)))
        out += [fused[i][labels == k] for k in range(1, n + 1)]
    return out


def figures(heatmap: np.ndarray, score: np.ndarray, masks: np.ndarray, defect: np.ndarray, sel: np.ndarray) -> tuple[float, float, float]:
    m, h = masks[sel], heatmap[sel]
    image = fusion_select.auroc(score[sel], defect[sel] != "good")
    return image, sampled_pixel_auroc(h[~m], h[m], 2_000_000), fusion_select.aupro(h[~m], regions(h, m), steps=400)


def lower_quantile(grid: np.ndarray, q: float) -> np.ndarray:
    """Per image, the k-th smallest value of a [N, h, w] map, k = floor(q * h * w)."""
    flat = grid.reshape(len(grid), -1)
    return np.sort(flat, axis=1)[:, int(np.floor(q * flat.shape[1]))]


def own_grid(upsampled: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A path's map back on its own grid: the upsampled map read at the grid cells' centres (nearest pixel)."""
    h, w = upsampled.shape[1:]
    rows = np.clip(np.rint((np.arange(grid[0]) + 0.5) * h / grid[0] - 0.5).astype(int), 0, h - 1)
    cols = np.clip(np.rint((np.arange(grid[1]) + 0.5) * w / grid[1] - 0.5).astype(int), 0, w - 1)
    return upsampled[:, rows][:, :, cols]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--data", type=Path, required=True, help="MVTec AD layout category folder")
    ap.add_argument("--maps", type=Path, help="cache of the per-path test maps (.npz)")
    ap.add_argument("--seed", type=int, default=13, help="seed of the halves")
    args = ap.parse_args()
    b = BundleRuns.load(args)
    members, cfg = b.members, b.members.cfg
    with torch.no_grad():  # each path's own grid, from one pass of a blank image
        blank = members.tensors(np.zeros((1, cfg.height, cfg.width, 3), np.uint8))
        grids = {n: tuple(t.shape[-2:]) for n, t in zip(b.names, members.student_module()(blank))}
    maps, masks, defect = test_maps(b, args.data, args.maps)
    a = halves(defect, args.seed)
    sets = {"A": a, "B": ~a, "whole": np.ones(len(a), bool)}

    def row(label: str, heatmap: np.ndarray, score: np.ndarray | None = None, on: tuple[str, ...] = ("A", "B", "whole")) -> None:
        s = heatmap.reshape(len(heatmap), -1).max(1) if score is None else score
        cells = [f"{k} " + " / ".join(f"{v:.4f}" for v in figures(heatmap, s, masks, defect, sets[k])) for k in on]
        print(f"{label}: " + "; ".join(cells), flush=True)

    weights = b.chosen()
    chosen = list(weights)
    shipped = b.heatmap(maps, weights)
    shipped_score = shipped.reshape(len(shipped), -1).max(1)
    print("image AUROC / pixel AUROC / AUPRO on half A, half B, the whole test split")
    row("shipped", shipped)

    print("(1) each image's fused map minus a times its q-quantile")
    flat = shipped.reshape(len(shipped), -1)
    for q in (0.1, 0.25, 0.5):
        for f in (0.5, 1.0):
            row(f"  q {q} a {f}", shipped - f * np.quantile(flat, q, axis=1)[:, None, None])
    print("    the floor per path on its own grid (q 0.25), half A: every chosen path, or only the last (deepest)")
    for f in (0.5, 1.0):
        for only in (None, chosen[-1]):
            parts = []
            for n in chosen:
                x = b.normalised(maps, n)
                if only in (None, n):
                    x = x - f * lower_quantile(own_grid(x, grids[n]), 0.25)[:, None, None]
                parts.append(weights[n] * x)
            row(f"  a {f} {'every chosen path' if only is None else only}", b.smooth(sum(parts)), on=("A",))

    print("(2) one map for score and heatmap, half A")
    _, val_set = load_split(cfg)
    val = data.prepare(val_set, cfg.width, cfg.height, cfg.fit, members.dirs[0].parent / ".cache")
    val_maps = dict(zip(b.names, members.collect_maps(val, 16)))
    logged = []
    for n in chosen:  # STPM multiplies the paths' maps: a sum of logs, normalised like calibrate does
        offset, scale = calibrate.path_normalization(np.log(np.maximum(val_maps[n], 1e-6)))
        logged.append((np.log(np.maximum(maps[n], 1e-6)) - offset) / scale)
    row("  log of the chosen paths", b.smooth(sum(logged)), on=("A",))
    all_direct = b.heatmap(maps, b.all_direct())
    row("  all direct paths, equal within a member", all_direct, on=("A",))

    print("(3) score from the shipped map, heatmap from all direct paths")
    row("  score shipped, heatmap all direct", all_direct, shipped_score)
    for c in KINDS:
        sel = (defect == c) | (defect == "good")
        for label, h in (("shipped", shipped), ("all direct", all_direct)):
            _, pixel, pro = figures(h, shipped_score, masks, defect, sel)
            print(f"    {c} {label}: pixel AUROC {pixel:.4f} AUPRO {pro:.4f}", flush=True)


if __name__ == "__main__":
    main()
