"""torchvision backbones as teachers, from local ImageNet weights (no download happens here). The weights may be
- a state dict (`.pth`) of the float network, for any arch below;
- a folder of folded per-tensor `.npy` files, for the ResNets (see folded_npy.py);
- torchvision's int8 TorchScript MobileNetV2, ported to float (see quantized_torchscript.py)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

from .folded_npy import load_folded_resnet
from .quantized_torchscript import float_mobilenet_v2

ARCHS = {"resnet18": torchvision.models.resnet18, "wide_resnet50_2": torchvision.models.wide_resnet50_2,
         "mobilenet_v2": torchvision.models.mobilenet_v2}
RESNET_TAPS = ("layer1", "layer2", "layer3", "layer4")
MOBILENET_TAPS = tuple(f"features.{i}" for i in range(19))
IMAGENET = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _is_torchscript(file: Path) -> bool:
    # torch.save and torch.jit.save both write zip archives; only TorchScript's holds code/.
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as z:
        return any("/code/" in n for n in z.namelist())


def load_network(arch: str, weights: Path) -> tuple[nn.Module, str]:
    """The float network and a word on what its weights were read from."""
    if arch not in ARCHS:
        raise ValueError(f"unknown torchvision backbone {arch!r}; known: {sorted(ARCHS)}")
    if not weights.exists():
        raise ValueError(f"teacher weights not found: {weights}")
    if weights.is_dir():
        if not arch.startswith(("resnet", "wide_resnet")):
            raise ValueError(f"a folder of folded .npy weights is read for ResNets only, not {arch}")
        return load_folded_resnet(ARCHS[arch](weights=None), weights), "folded-npy"
    if _is_torchscript(weights):
        if arch != "mobilenet_v2":
            raise ValueError(f"{weights} is TorchScript; only torchvision's quantized mobilenet_v2 is read from TorchScript")
        return float_mobilenet_v2(weights), "int8-torchscript-dequantized"
    net = ARCHS[arch](weights=None)
    state = torch.load(weights, map_location="cpu")
    net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    return net, "state-dict"


def _stages(arch: str, net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The network as (tap name, module) stages run in order; a ResNet's stem runs before its first tap."""
    if arch == "mobilenet_v2":
        return [(f"features.{i}", m) for i, m in enumerate(net.features)]
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return [("stem", stem)] + [(t, getattr(net, t)) for t in RESNET_TAPS if not isinstance(getattr(net, t), nn.Identity)]


class TorchvisionTeacher(nn.Module):
    def __init__(self, arch: str, weights: Path, taps: list[str], height: int, width: int):
        super().__init__()
        net, self.weights_format = load_network(arch, weights)
        known = MOBILENET_TAPS if arch == "mobilenet_v2" else RESNET_TAPS
        unknown = [t for t in taps if t not in known]
        if unknown:
            raise ValueError(f"unknown taps {unknown}; choose from {', '.join(known)}")
        stages = _stages(arch, net)
        names = [n for n, _ in stages]
        absent = [t for t in taps if t not in names]
        if absent:
            raise ValueError(f"taps {absent} are not in {weights}: those weights hold only {', '.join(n for n in names if n != 'stem')} "
                             "(layer4's convs could not be obtained for that set); tap earlier stages")
        last = max(names.index(t) for t in taps)
        self.names = names[: last + 1]
        self.stages = nn.ModuleList([m for _, m in stages[: last + 1]])
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
        out = {}
        for name, stage in zip(self.names, self.stages):
            x = stage(x)
            out[name] = x
        return [out[t] for t in self.taps]
