"""A float torchvision MobileNetV2 from torchvision's post-training-quantized one saved as TorchScript
(../shared/weights/torchvision-mobilenet_v2-quantized). The TorchScript file is frozen: no submodules, no
state dict, only packed conv parameters hoisted to attributes named after the float module they came from
(`_jit_pass_hoist_conv_packed_params.features.3.conv.0.0._packed_params.7` is `features.3.conv.0.0`).
Each unpacks to an int8 weight and a float bias with its BatchNorm already folded in, so the port sets the
dequantized weight and the bias on that conv and makes its BatchNorm the identity. torchvision's quantizable
MobileNetV2 swaps ReLU6 for ReLU before quantizing, so the port does too. The int8 activations are the int8
network's own approximation; the float port of its weights is the better teacher."""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

from ..folding import batchnorm_after, load_folded_conv

_PACKED = re.compile(r"^_jit_pass_hoist_conv_packed_params\.(?P<module>.+)\._packed_params\.\d+$")


def load_int8(file: Path) -> torch.jit.ScriptModule:
    # qnnpack is the engine the file was quantized for; fbgemm reads its packed weights wrongly.
    torch.backends.quantized.engine = "qnnpack"
    return torch.jit.load(str(file), map_location="cpu")


def packed_convs(scripted: torch.jit.ScriptModule) -> dict[str, object]:
    """Float module path -> packed conv parameters, in graph order."""
    out: dict[str, object] = {}
    for node in scripted.graph.nodes():
        if node.kind() != "prim::GetAttr":
            continue
        m = _PACKED.match(node.s("name"))
        if m:
            out[m.group("module")] = scripted._c.getattr(node.s("name"))
    return out


def float_mobilenet_v2(file: Path) -> nn.Module:
    scripted = load_int8(file)
    convs = packed_convs(scripted)
    net = torchvision.models.mobilenet_v2(weights=None)
    wanted = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    bn_after = batchnorm_after(net)
    if sorted(convs) != sorted(wanted):
        missing, extra = sorted(set(wanted) - set(convs)), sorted(set(convs) - set(wanted))
        raise ValueError(f"{file} is not torchvision's quantized MobileNetV2: convs missing {missing[:3]}, unexpected {extra[:3]}")
    for name in wanted:
        conv: nn.Conv2d = net.get_submodule(name)
        params = convs[name]
        weight, bias = params.unpack()
        layout = (list(params.stride()), list(params.padding()), list(params.dilation()), int(params.groups()))
        if tuple(weight.shape) != tuple(conv.weight.shape) or layout != (list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups):
            raise ValueError(f"{file}: {name} does not match torchvision's MobileNetV2 layout")
        load_folded_conv(net, name, bn_after.get(name), weight.dequantize().float(), bias.float())
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.ReLU6):
            parent, _, attr = name.rpartition(".")
            setattr(net.get_submodule(parent), attr, nn.ReLU(inplace=False))
    # The classifier is not a tap, but the port's logits are what prove it against the int8 original.
    packed = getattr(getattr(scripted.classifier, "1"), "_packed_params")._c.getattr("_packed_params")
    fc_weight, fc_bias = torch.ops.quantized.linear_unpack(packed)
    net.classifier[1].weight = nn.Parameter(fc_weight.dequantize().float())
    net.classifier[1].bias = nn.Parameter(fc_bias.float())
    return net.eval()
