"""Training recipes: the defaults `train` fills in for the options a command leaves out.

`new-category` is what `train --data D --category C` with no further flags trains, chosen on the development
suite's validation parts (models/studies/new-category-defaults.md); `none` is the bare defaults of each option,
which the commands of the shipped models were written against (their configs record every value anyway).
"""
from __future__ import annotations

from .synthetic_defects import KINDS, TRAINING_KINDS

# The options a recipe may set, with their bare defaults.
BARE = {
    "teacher": "nsfwjs:mobilenet_v2",
    "taps": None,
    "widths": None,
    "epochs": 40,
    "min_steps": 0,
    "denoise": 0.0,
    "denoise_kinds": list(KINDS),
    "hard_fraction": 1.0,
}

RECIPES: dict[str, dict] = {
    "none": {},
    "resnet18": {
        # ImageNet ResNet-18 layer2+3 (PatchCore's layers), the student at the teacher's widths; a budget of
        # optimiser steps rather than epochs, so that 54 images train as long as 700.
        "teacher": "torchvision:resnet18",
        "taps": ["layer2", "layer3"],
        "widths": [128, 256],
        "epochs": 1,
        "min_steps": 260,
        "denoise": 0.5,
        "denoise_kinds": list(TRAINING_KINDS),
        "hard_fraction": 0.1,
    },
    "mobilenet": {
        # The README's MobileNetV2 recipe (the default model's first member, without MTD's intensity remap).
        "teacher": "nsfwjs:mobilenet_v2",
        "taps": ["block_5_add", "block_9_add", "block_12_add"],
        "epochs": 40,
        "min_steps": 260,
        "denoise": 0.5,
        "denoise_kinds": list(TRAINING_KINDS),
        "hard_fraction": 0.1,
    },
}
RECIPES["new-category"] = RECIPES["resnet18"]


def resolve(recipe: str, given: dict) -> dict:
    """Every recipe option: the command's own value where it gave one (not None), else the recipe's, else bare."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: one of {', '.join(RECIPES)}")
    chosen = {**BARE, **RECIPES[recipe]}
    return {k: given[k] if given.get(k) is not None else chosen[k] for k in BARE}
