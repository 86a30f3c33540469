"""A torchvision ResNet from one NumPy file per tensor with every BatchNorm folded into the conv before it
(../shared/weights/resnet18-imagenet-npy): each conv gets the file's bias and its BatchNorm becomes the
identity, so the network computes exactly what the folded weights say. The folder may hold only the first
stages (that one holds conv1 and layer1-3); the network is cut after the last stage it holds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..folding import batchnorm_after, load_folded_conv

STAGES = ("layer1", "layer2", "layer3", "layer4")


def stages_in(folder: Path) -> list[str]:
    names = {p.name.split(".")[0] for p in folder.glob("*.npy")}
    return [s for s in STAGES if s in names]


def load_folded_resnet(net: nn.Module, folder: Path) -> nn.Module:
    """Fill `net` (a torchvision ResNet) from `folder`, folding every BatchNorm; stages the folder lacks are
    removed from `net`. Raises when a conv of a kept stage has no file or a file fits no conv."""
    kept = stages_in(folder)
    if not kept:
        raise ValueError(f"{folder} holds no ResNet stage (expected files like layer1.0.conv1.weight.npy)")
    for stage in STAGES[len(kept):]:
        setattr(net, stage, nn.Identity())
    files = {p.name[: -len(".npy")]: p for p in folder.glob("*.npy")}
    used: set[str] = set()
    bn_after = batchnorm_after(net)
    for name, module in list(net.named_modules()):
        if not isinstance(module, nn.Conv2d):
            continue
        if f"{name}.weight" not in files or f"{name}.bias" not in files:
            raise ValueError(f"{folder}: no {name}.weight.npy / {name}.bias.npy for a conv the kept stages need")
        weight = torch.from_numpy(np.load(files[f"{name}.weight"])).float()
        bias = torch.from_numpy(np.load(files[f"{name}.bias"])).float()
        if weight.shape != module.weight.shape or bias.shape != (module.out_channels,):
            raise ValueError(f"{folder}: {name} has shape {tuple(weight.shape)}, the network expects {tuple(module.weight.shape)}")
        load_folded_conv(net, name, bn_after.get(name), weight, bias)
        used |= {f"{name}.weight", f"{name}.bias"}
    stray = sorted(set(files) - used)
    if stray:
        raise ValueError(f"{folder}: files that fit no conv of the network: {stray[:5]}")
    return net
