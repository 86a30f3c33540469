"""Choosing the fusion weights on validation data, never the test set: normal held-out images and either
synthetic defects painted on them (synthetic_defects.py) or real defects of a declared validation part of the
test split (export --defects with --defects-split).

Candidates: every path with weight 1 (the default), each path alone, and every path but one. On synthetic
defects each is scored by the mean of image AUROC and pixel AUROC; AUPRO (each painted defect one region) is
reported beside it, not part of the criterion, because a painted outline is not a real defect's. On real
defects the criterion is the mean of all three, the figures the model is judged by, AUPRO over each mask's
connected regions as the evaluation counts them. Ties keep the candidate with more paths. The best candidate
replaces the all-paths fusion only if it wins by a margin and in nearly every bootstrap resample (the guard).
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
    # Pixel AUROC on every defect pixel and a fixed random sample of the normal ones (same for all candidates);
    # NaN marks where a tiled bundle's stacked maps lie outside an image (tiles.nan_stack).
    on_image = ~np.isnan(torch.cat([normal_maps[0], defect_maps[0]]).numpy()).ravel()
    px_neg = np.concatenate([np.ones((n_normal,) + masks.shape[1:], bool), ~masks]).ravel() & on_image
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


def bootstrap_advantage(normal_maps: list[torch.Tensor], defect_maps: list[torch.Tensor], masks: np.ndarray,
                        norms: list[tuple[float, float]], weights: list[float], baseline: list[float], sigma: float, ksize: int,
                        reduction: dict, real: bool, seed: int = 0, resamples: int = 200, pixels_per_image: int = 1000) -> np.ndarray:
    """The criterion of `weights` minus that of `baseline` in each of `resamples` paired bootstrap resamples of the
    images (normal and defective drawn separately, with replacement; the same draw for both). Pixel figures use
    every defect pixel (at most 4 * pixels_per_image an image) and a fixed sample of normal pixels per image, so
    that a resample is a few hundred thousand values, not millions."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    n_normal, n_defect = normal_maps[0].shape[0], defect_maps[0].shape[0]
    full = np.concatenate([np.zeros((n_normal,) + masks.shape[1:], bool), masks])
    offsets, scales = [o for o, _ in norms], [s for _, s in norms]
    hw = full[0].size
    on_image = ~np.isnan(torch.cat([normal_maps[0], defect_maps[0]]).numpy()).reshape(len(full), hw)  # see score()
    neg_px, pos_px = [], []  # per image: flat indices of its sampled normal pixels and of its defect pixels
    for m, inside in zip(full.reshape(len(full), -1), on_image):
        neg, pos = np.flatnonzero(~m & inside), np.flatnonzero(m)
        neg_px.append(rng.choice(neg, min(pixels_per_image, neg.size), replace=False))
        pos_px.append(rng.choice(pos, min(4 * pixels_per_image, pos.size), replace=False) if pos.size else pos)
    region_px = []  # per defective image: each region's flat pixel indices (8-connected for real defects)
    for m in masks:
        if real:
            labelled, k = ndimage.label(m, structure=np.ones((3, 3)))
            region_px.append([np.flatnonzero(labelled.ravel() == j) for j in range(1, k + 1)])
        else:
            region_px.append([np.flatnonzero(m.ravel())] if m.any() else [])

    def parts(w: list[float]):
        fused = torch.cat([fuse(normal_maps, offsets, scales, w, sigma, ksize), fuse(defect_maps, offsets, scales, w, sigma, ksize)])
        return reduce_score(fused, reduction).numpy(), fused.numpy().reshape(len(full), hw)

    def criterion(scores: np.ndarray, flat: np.ndarray, idx: np.ndarray) -> float:
        labels = idx >= n_normal
        img = auroc(scores[idx], labels)
        neg = np.concatenate([flat[i, neg_px[i]] for i in idx])
        pos = np.concatenate([flat[i, pos_px[i]] for i in idx if i >= n_normal])
        px = auroc(np.r_[neg, pos], np.r_[np.zeros(neg.size, bool), np.ones(pos.size, bool)])
        if not real:
            return (img + px) / 2
        pro = aupro(neg, [flat[i, r] for i in idx if i >= n_normal for r in region_px[i - n_normal]])
        return (img + px + pro) / 3

    a, b = parts(weights), parts(baseline)
    out = np.empty(resamples)
    for k in range(resamples):
        idx = np.r_[rng.integers(0, n_normal, n_normal), n_normal + rng.integers(0, n_defect, n_defect)]
        out[k] = criterion(*a, idx) - criterion(*b, idx)
    return out


# The guard of `select` (models/studies/new-category-defaults.md): a candidate replaces all paths only if it wins
# by a clear margin and in nearly every resample, because a single path chosen on a few (painted) defects can cost
# far more than the all-paths fusion ever does.
def best_candidate(rows: list[dict]) -> dict:
    """The row with the highest criterion (to four decimals); ties keep the candidate with more paths."""
    return max(rows, key=lambda r: (round(r["mean"], 4), sum(w > 0 for w in r["weights"])))


GUARD_MARGIN = 0.01
GUARD_LEVEL = 0.95
CHOICES = ("all-paths", "guarded", "best")


def select(normal_maps: list[torch.Tensor], defect_maps: list[torch.Tensor], masks: np.ndarray, norms: list[tuple[float, float]],
           names: list[str], sigma: float, ksize: int, reduction: dict, seed: int = 0, negatives: int = 400_000,
           real: bool = False, choose: str | None = None) -> tuple[list[float], list[dict]]:
    """Weights of the chosen candidate and the table of all of them (name, weights, imageAUROC, pixelAUROC, AUPRO,
    mean; the best one's bootstrap figures under "guard"). `choose` (CHOICES): "best" takes the best candidate;
    "guarded" keeps all paths unless the best candidate beats them by GUARD_MARGIN on the criterion and in
    GUARD_LEVEL of paired bootstrap resamples; "all-paths" only reports the table. Default: "guarded" on real
    defects, "all-paths" on painted ones, whose ranking agreed too poorly with real defects on the development
    suite to choose by (models/studies/new-category-defaults.md)."""
    choose = choose or ("guarded" if real else "all-paths")
    if choose not in CHOICES:
        raise ValueError(f"fusion choice {choose!r}: one of {', '.join(CHOICES)}")
    rows = score(normal_maps, defect_maps, masks, norms, candidates(names), sigma, ksize, reduction, seed, negatives, real)
    best = best_candidate(rows)
    chosen = rows[0] if choose == "all-paths" else best
    if choose == "guarded" and best["name"] != "all paths":
        everything = rows[0]
        diff = bootstrap_advantage(normal_maps, defect_maps, masks, norms, best["weights"], everything["weights"], sigma, ksize,
                                   reduction, real, seed)
        advantage = best["mean"] - everything["mean"]
        wins = float((diff > 0).mean())
        kept = advantage >= GUARD_MARGIN and wins >= GUARD_LEVEL
        best["guard"] = {"advantage": advantage, "bootstrapWins": wins, "resamples": len(diff),
                         "bootstrapAdvantageP05": float(np.percentile(diff, 5)), "margin": GUARD_MARGIN, "level": GUARD_LEVEL,
                         "passed": kept}
        if not kept:
            chosen = everything
    for r in rows:
        r["chosen"] = r is chosen
    return chosen["weights"], rows
