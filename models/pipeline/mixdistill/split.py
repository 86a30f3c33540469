"""Declaring a validation part of a category's test split, by the rule of ../shared/datasets/mtd/split_test.json
(reproduced exactly by this code), for categories that come without one: the choices that need real defects
(fusion, thresholds, recipe) are made on it, and the figures are reported on the rest.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from .data import IMAGE_SUFFIXES

FRACTION = 0.3
SEED = 20261202
RULE = ("30% of each folder of test/ (good included), rounded; random.Random(seed).sample over the sorted file stems "
        "(names without extension) of each folder, folders in sorted order")


def declare(category: Path, fraction: float = FRACTION, seed: int = SEED) -> dict:
    """The split document: one random.Random(seed) drawn through the test folders in sorted order."""
    test = category / "test"
    if not test.is_dir():
        raise SystemExit(f"{category} has no test/ folder")
    rng = random.Random(seed)
    validation, counts = {}, {}
    for folder in sorted(p for p in test.iterdir() if p.is_dir()):
        stems = sorted(f.stem for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        validation[folder.name] = sorted(rng.sample(stems, round(fraction * len(stems))))
        counts[folder.name] = len(validation[folder.name])
    rule = RULE if fraction == FRACTION else RULE.replace("30%", f"{100 * fraction:g}%")
    return {
        "what": f"A declared validation part of the test split of {category.name}: real defects with masks (and good parts) for the "
                "choices that need them (fusion, thresholds, recipe). The test part is the test split without these images; "
                "report test-part figures, whole-split ones only beside them, marked.",
        "rule": rule,
        "seed": seed,
        "counts": counts,
        "validation": validation,
    }


def write(category: Path, out: Path, fraction: float = FRACTION, seed: int = SEED) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(declare(category, fraction, seed), indent=1) + "\n")
    return out
