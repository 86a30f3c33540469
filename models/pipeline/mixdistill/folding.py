"""Weights with each BatchNorm already folded into the conv before it (torch.onnx's export, the folded .npy
teacher weights, torchvision's quantized convs): which BatchNorm belongs to which conv, and loading one."""
from __future__ import annotations

import torch
import torch.nn as nn


def batchnorm_after(net: nn.Module) -> dict[str, str]:
    """Conv name -> the name of the BatchNorm registered right after it. torchvision's networks and this
    project's students register each conv's BatchNorm next (conv1/bn1, downsample.0/downsample.1,
    features.3.conv.2/features.3.conv.3), so registration order pairs them without naming rules."""
    named = list(net.named_modules())
    return {a: b for (a, ma), (b, mb) in zip(named, named[1:]) if isinstance(ma, nn.Conv2d) and isinstance(mb, nn.BatchNorm2d)}


def load_folded_conv(net: nn.Module, conv_name: str, bn_name: str | None, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """The conv takes the folded weight and bias; its BatchNorm, folded in already, becomes the identity."""
    if bn_name is None:
        raise ValueError(f"expected a BatchNorm after {conv_name}")
    conv = net.get_submodule(conv_name)
    conv.weight = nn.Parameter(weight)
    conv.bias = nn.Parameter(bias)
    parent, _, attr = bn_name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, attr, nn.Identity())
