"""Teacher registry: `nsfwjs:<model>` (pretrained Keras networks from the npm package) or
`torchvision:<arch>@<weights.pth>` (ImageNet weights the user has locally)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

DEFAULT_TAPS = {
    "nsfwjs:mobilenet_v2": ["block_2_add", "block_5_add", "block_9_add"],
    "nsfwjs:inception_v3": ["activation_5", "mixed2", "mixed5"],
    "torchvision:resnet18": ["layer1", "layer2", "layer3"],
    "torchvision:wide_resnet50_2": ["layer1", "layer2", "layer3"],
}


@dataclass
class BuiltTeacher:
    module: nn.Module            # forward(x) -> list of tap features; frozen, eval mode
    taps: list[str]
    shapes: dict[str, tuple[int, int, int]]
    scaling: dict                # {"scale", "mean", "std"} the weights expect
    source: dict                 # provenance for the manifest and model card


def build_teacher(spec: str, taps: list[str] | None, height: int, width: int) -> BuiltTeacher:
    family, _, rest = spec.partition(":")
    if family == "nsfwjs":
        from . import nsfwjs
        from .keras_graph import KerasGraph

        taps = taps or DEFAULT_TAPS[spec]
        art = nsfwjs.load(rest)
        module = KerasGraph(art.topology, art.weights, taps, height, width)
        # x/255 is what the stored BatchNorm statistics match (see ../shared/notes/teacher-from-npm.md).
        scaling = {"scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
        return BuiltTeacher(module, taps, module.tap_shapes, scaling, {"spec": spec, **art.source})
    if family == "torchvision":
        from .torchvision_backbone import IMAGENET, TorchvisionTeacher

        arch, _, weights = rest.partition("@")
        if not weights:
            raise ValueError("torchvision teachers need a local weights file: torchvision:<arch>@/path/to/weights.pth")
        taps = taps or DEFAULT_TAPS[f"torchvision:{arch}"]
        module = TorchvisionTeacher(arch, Path(weights), taps, height, width)
        return BuiltTeacher(module, taps, module.tap_shapes, dict(IMAGENET),
                            {"spec": f"torchvision:{arch}", "weights": Path(weights).name, "note": "user-supplied ImageNet weights"})
    raise ValueError(f"unknown teacher {spec!r}: use nsfwjs:<model> or torchvision:<arch>@<weights.pth>")
