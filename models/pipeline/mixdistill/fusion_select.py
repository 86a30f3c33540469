"""Choosing the fusion weights on validation data, never the test set: normal held-out images and either
synthetic defects painted on them (synthetic_defects.py) or real defects of a declared validation part of the
test split (export --defects with --defects-split).

Candidates: every path with weight 1 (the default), each path alone, and every path but one. On synthetic
defects each is scored by the mean of image AUROC and pixel AUROC; AUPRO (each painted defect one region) is
reported beside it, not part of the criterion, because a painted outline is not a real defect's. On real
defects the criterion is the mean of all three, the figures the model is judged by, AUPRO over each mask's
connected regions as the evaluation counts them. Ties keep the candidate with more paths.
The table of all candidates goes into the manifest and the model card, so the choice can be checked.
An ensemble bundle (several runs) chooses among each run's own paths; export.select_fusion combines the choices.
"""
from __future__ import annotations

import numpy as np
import torch

from .anomaly_map import fuse, reduce_score


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUROC with average ranks for ties."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # 1-based, averaged over ties
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def aupro(normal_px: np.ndarray, regions: list[np.ndarray], limit: float = 0.3, steps: int = 300) -> float:
    """Area under the per-region overlap curve up to `limit` false positive rate, divided by `limit`, as the
    evaluation defines it (src/eval/metrics.ts): at each threshold, PRO is the mean over regions of the share of
    the region's pixels at or above it, FPR the share of normal pixels above it. `regions` holds each region's
    map values. Thresholds are the normal pixels' quantiles at `steps` evenly spaced FPRs (the evaluation bins
    instead; both converge on the same area)."""
    if not regions or normal_px.size == 0:
        return float("nan")
    fprs = np.linspace(0.0, limit, steps + 1)
    thresholds = np.quantile(np.asarray(normal_px, np.float64), 1.0 - fprs)
    pro = np.zeros_like(fprs)
    for values in regions:
        v = np.sort(np.asarray(values, np.float64))
        pro += (v.size - np.searchsorted(v, thresholds, side="left")) / v.size
    pro /= len(regions)
    return float(np.trapz(pro, fprs) / limit)


def candidates(names: list[str]) -> list[tuple[str, list[float]]]:
    n = len(names)
    out = [("all paths", [1.0] * n)]
    if n > 1:
        out += [(f"only {name}", [1.0 if j == i else 0.0 for j in range(n)]) for i, name in enumerate(names)]
        if n > 2:
            out += [(f"without {name}", [0.0 if j == i else 1.0 for j in range(n)]) for i, name in enumerate(names)]
    return out


def score(normal_maps: list[torch.Tensor], defect_maps: list[torch.Tensor], masks: np.ndarray, norms: list[tuple[float, float]],
          cands: list[tuple[str, list[float]]], sigma: float, ksize: int, reduction: dict, seed: int = 0,
          negatives: int = 400_000, real: bool = False) -> list[dict]:
    """Each candidate's row: name, weights, imageAUROC, pixelAUROC, AUPRO and the criterion's mean (see the
    module's docstring; `real`: the defects are real ones, their masks split into connected regions)."""
    rng = np.random.default_rng(seed)
    n_normal = normal_maps[0].shape[0]
    labels = np.r_[np.zeros(n_normal, bool), np.ones(defect_maps[0].shape[0], bool)]
    # Pixel AUROC on every defect pixel and a fixed random sample of the normal ones (same for all candidates).
    px_neg = np.concatenate([np.ones((n_normal,) + masks.shape[1:], bool), ~masks]).ravel()
    neg_idx = rng.choice(np.flatnonzero(px_neg), size=min(negatives, int(px_neg.sum())), replace=False)
    pos_idx = np.flatnonzero(np.concatenate([np.zeros((n_normal,) + masks.shape[1:], bool), masks]).ravel())
    px_labels = np.r_[np.zeros(len(neg_idx), bool), np.ones(len(pos_idx), bool)]
    offsets, scales = [o for o, _ in norms], [s for _, s in norms]
    if real:
        from scipy import ndimage

        regions = []  # (image index, boolean region)
        for i, mask in enumerate(masks):
            labelled, n = ndimage.label(mask, structure=np.ones((3, 3)))  # 8-connected, as the evaluation
            regions += [(i, labelled == k) for k in range(1, n + 1)]
    else:
        regions = [(i, mask) for i, mask in enumerate(masks)]  # one painted defect per image
    rows = []
    for name, weights in cands:
        fused = torch.cat([fuse(normal_maps, offsets, scales, weights, sigma, ksize), fuse(defect_maps, offsets, scales, weights, sigma, ksize)])
        scores = reduce_score(fused, reduction).numpy()
        flat = fused.numpy().ravel()
        img, px = auroc(scores, labels), auroc(np.r_[flat[neg_idx], flat[pos_idx]], px_labels)
        painted = fused[n_normal:].numpy()
        pro = aupro(flat[px_neg], [painted[i][region] for i, region in regions])
        mean = (img + px + pro) / 3 if real else (img + px) / 2
        rows.append({"name": name, "weights": weights, "imageAUROC": img, "pixelAUROC": px, "mean": mean, "AUPRO": pro})
    return rows


def select(normal_maps: list[torch.Tensor], defect_maps: list[torch.Tensor], masks: np.ndarray, norms: list[tuple[float, float]],
           names: list[str], sigma: float, ksize: int, reduction: dict, seed: int = 0, negatives: int = 400_000,
           real: bool = False) -> tuple[list[float], list[dict]]:
    """Weights of the best candidate and the table of all of them (name, weights, imageAUROC, pixelAUROC, AUPRO, mean)."""
    rows = score(normal_maps, defect_maps, masks, norms, candidates(names), sigma, ksize, reduction, seed, negatives, real)
    best = max(rows, key=lambda r: (round(r["mean"], 4), sum(w > 0 for w in r["weights"])))
    for r in rows:
        r["chosen"] = r is best
    return best["weights"], rows
