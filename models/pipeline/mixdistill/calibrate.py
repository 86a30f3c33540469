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


def gumbel_quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile of a Gumbel (maximum) distribution fitted by moments: an image score is the maximum of a
    smoothed map, whose tail an extreme-value law describes better than the few largest samples do."""
    v = np.asarray(values, np.float64).ravel()
    beta = max(v.std(ddof=1) if v.size > 1 else 0.0, 1e-6) * np.sqrt(6) / np.pi
    loc = v.mean() - np.euler_gamma * beta
    return float(loc - beta * np.log(-np.log(q)))


def prediction_bound(values: np.ndarray, q: float) -> float:
    """One-sided Student-t prediction bound at level q for one new normal score: mean + t(n-1) * std * sqrt(1 + 1/n).
    It widens as n shrinks, so tens of normals give a more cautious threshold than hundreds."""
    from scipy import stats as st

    v = np.asarray(values, np.float64).ravel()
    n = v.size
    sd = max(v.std(ddof=1) if n > 1 else 0.0, 1e-6)
    return float(v.mean() + st.t.ppf(q, max(n - 1, 1)) * sd * np.sqrt(1 + 1 / n))


# Image-threshold rules from normal scores alone (export --threshold-rule), compared on the development suite's
# validation parts (models/studies/threshold_rules.py, models/studies/new-category-defaults.md).
RULES = {
    "p99+margin": lambda v: threshold_from_normal(v, 0.1)["threshold"],
    "max": lambda v: float(np.max(v)),
    "p95": lambda v: float(np.percentile(v, 95)),
    "p90": lambda v: float(np.percentile(v, 90)),
    "tukey": lambda v: float(np.percentile(v, 75) + 1.5 * (np.percentile(v, 75) - np.percentile(v, 25))),
    "gumbel-0.99": lambda v: gumbel_quantile(v, 0.99),
    "gumbel-0.95": lambda v: gumbel_quantile(v, 0.95),
    "gumbel-0.9": lambda v: gumbel_quantile(v, 0.9),
    "gumbel-0.8": lambda v: gumbel_quantile(v, 0.8),
    "t-bound-0.99": lambda v: prediction_bound(v, 0.99),
    "t-bound-0.95": lambda v: prediction_bound(v, 0.95),
    "t-bound-0.9": lambda v: prediction_bound(v, 0.9),
    "t-bound-0.8": lambda v: prediction_bound(v, 0.8),
}
RULE_TEXT = {
    "p99+margin": "p99 + margin * (p99 - p50)",
    "max": "the highest",
    "p95": "the 95th percentile",
    "p90": "the 90th percentile",
    "tukey": "Tukey's fence, q3 + 1.5 * (q3 - q1)",
    **{f"gumbel-{q}": f"the {q} quantile of a Gumbel law fitted by moments" for q in ("0.99", "0.95", "0.9", "0.8")},
    **{f"t-bound-{q}": f"the one-sided {q} Student-t prediction bound, mean + t(n-1) * std * sqrt(1 + 1/n)" for q in ("0.99", "0.95", "0.9", "0.8")},
}


def threshold_by_rule(values: np.ndarray, rule: str, margin: float = 0.1) -> dict:
    """A normal-only calibration of one level by a rule of RULES (p99+margin with the given margin)."""
    if rule not in RULES:
        raise ValueError(f"unknown threshold rule {rule!r}: one of {', '.join(RULES)}")
    if rule == "p99+margin":
        return {**threshold_from_normal(values, margin), "rule": rule}
    s = stats(values)
    return {"threshold": float(RULES[rule](values)), "low": s["p50"], "stats": s, "rule": rule}


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
        return base, f"F1-optimal threshold {threshold:.4g} is not above the normal median {base['low']:.4g}; kept the normal-only rule"
    return {**base, "threshold": threshold, "f1": f1}, f"F1-optimal (F1 {f1:.3f})"
