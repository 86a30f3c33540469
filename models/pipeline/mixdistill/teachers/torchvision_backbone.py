"""torchvision ResNets as teachers, from a local ImageNet weights file (no download happens here)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torchvision

ARCHS = {"resnet18": torchvision.models.resnet18, "wide_resnet50_2": torchvision.models.wide_resnet50_2}
TAPS = ("layer1", "layer2", "layer3", "layer4")
IMAGENET = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class TorchvisionTeacher(nn.Module):
    def __init__(self, arch: str, weights: Path, taps: list[str], height: int, width: int):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown torchvision backbone {arch!r}; known: {sorted(ARCHS)}")
        unknown = [t for t in taps if t not in TAPS]
        if unknown:
            raise ValueError(f"unknown taps {unknown}; choose from {TAPS}")
        net = ARCHS[arch](weights=None)
        state = torch.load(weights, map_location="cpu")
        net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        self.body = nn.ModuleDict({k: getattr(net, k) for k in ("conv1", "bn1", "relu", "maxpool", *TAPS[: max(TAPS.index(t) for t in taps) + 1])})
        self.taps = list(taps)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            shapes = [f.shape[1:] for f in self.forward(torch.zeros(1, 3, height, width))]
        self.tap_shapes = {t: tuple(int(v) for v in s) for t, s in zip(taps, shapes)}

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b = self.body
        x = b["maxpool"](b["relu"](b["bn1"](b["conv1"](x))))
        out = {}
        for name in TAPS:
            if name not in b:
                break
            x = b[name](x)
            out[name] = x
        return [out[t] for t in self.taps]
