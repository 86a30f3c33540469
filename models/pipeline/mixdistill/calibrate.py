"""Calibration from normal validation images alone: per-path map normalisation and thresholds.

Thresholds never depend on anomalous examples, so a validation set without defects (the usual case) gives
a sensible value instead of the degenerate ones adaptive-F1 schemes pick:
    threshold = p99 + margin * (p99 - p50)   of the normal images' scores,
    low       = p50                          (normalized score 0; the threshold maps to 0.5).
The pixel threshold applies the same rule to each normal image's most anomalous pixel, so a normal image
gets an empty mask as often as it gets a normal verdict.
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
