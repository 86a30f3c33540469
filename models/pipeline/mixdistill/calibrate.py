"""Calibration from normal validation images alone: per-path map normalisation and thresholds.

Thresholds never depend on anomalous examples, so a validation set without defects (the usual case) gives
a sensible value instead of the degenerate ones adaptive-F1 schemes pick:
    threshold = p99 + margin * (p99 - p50)   of the normal images' scores,
    low       = p50                          (normalized score 0; the threshold maps to 0.5).
The pixel threshold applies the same rule to each normal image's most anomalous pixel, so a normal image
gets an empty mask as often as it gets a normal verdict.

With defective validation images (and masks) at hand, `f1_optimal` picks the threshold of the best F1 instead,
image and pixel separately. It is guarded: the threshold must stay above the normal median (`low`), or the rule
above is kept, so a validation set that cannot separate anything never yields a threshold that flags most parts.
"""
from __future__ import annotations

import numpy as np

QUANTILES = (50, 90, 95, 99)


def stats(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64).ravel()
    out = {"count": float(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}
    out.update({f"p{q}": float(np.percentile(v, q)) for q in QUANTILES})
    return out


def path_normalization(maps: np.ndarray) -> tuple[float, float]:
    """(offset, scale) that put a path's normal map values at mean 0 and their 99.9th percentile at 1."""
    v = maps.ravel().astype(np.float64)
    offset = float(v.mean())
    scale = float(np.percentile(v, 99.9) - offset)
    return offset, max(scale, 1e-6)


def threshold_from_normal(values: np.ndarray, margin: float) -> dict:
    s = stats(values)
    spread = max(s["p99"] - s["p50"], 1e-6)
    return {"threshold": s["p99"] + margin * spread, "low": s["p50"], "stats": s}


def _best_f1(normal: np.ndarray, defective: np.ndarray, cands: np.ndarray) -> tuple[int, float]:
    """Index into `cands` and value of the best F1 when values at or above a candidate are flagged
    (normal and defective sorted)."""
    pos_ge = defective.size - np.searchsorted(defective, cands, side="left")
    neg_ge = normal.size - np.searchsorted(normal, cands, side="left")
    f1 = 2 * pos_ge / np.maximum(pos_ge + neg_ge + defective.size, 1)
    i = int(np.argmax(f1))
    return i, float(f1[i])


def _sorted_pair(normal, defective) -> tuple[np.ndarray, np.ndarray]:
    normal = np.sort(np.asarray(normal, np.float64).ravel())
    defective = np.sort(np.asarray(defective, np.float64).ravel())
    if defective.size == 0 or normal.size == 0:
        raise ValueError("F1-optimal thresholds need both normal and defective values")
    return normal, defective


def f1_optimal(normal: np.ndarray, defective: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 with `value > threshold` flagged, defective = positive. The threshold sits
    halfway between the lowest flagged value and the highest value below it, so it does not hang on one sample."""
    normal, defective = _sorted_pair(normal, defective)
    cands = np.unique(np.concatenate([normal, defective]))
    i, f1 = _best_f1(normal, defective, cands)
    below = cands[i - 1] if i > 0 else cands[i] - 1e-6
    return float((cands[i] + below) / 2), f1


def f1_optimal_binned(normal: np.ndarray, defective: np.ndarray, bins: int = 4096) -> tuple[float, float]:
    """f1_optimal for millions of pixel values: thresholds on a grid of `bins` edges between the extremes."""
    normal, defective = _sorted_pair(normal, defective)
    edges = np.linspace(min(normal[0], defective[0]), max(normal[-1], defective[-1]), bins + 1)
    i, f1 = _best_f1(normal, defective, edges)
    return float(edges[i]), f1


def threshold_f1(base: dict, normal: np.ndarray, defective: np.ndarray, binned: bool = False) -> tuple[dict, str]:
    """The F1-optimal calibration of one level (image or pixel), or `base` (the normal-quantile one) with the reason."""
    threshold, f1 = (f1_optimal_binned if binned else f1_optimal)(normal, defective)
    if not threshold > base["low"]:
        return base, f"F1-optimal threshold {threshold:.4g} is not above the normal median {base['low']:.4g}; kept p99 + margin"
    return {**base, "threshold": threshold, "f1": f1}, f"F1-optimal (F1 {f1:.3f})"
