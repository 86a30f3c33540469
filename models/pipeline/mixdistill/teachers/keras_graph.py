"""A faithful PyTorch port of a Keras functional model, truncated at the requested taps.

Only the layer kinds of the nsfwjs networks are supported. Each Keras semantic that changes the features
(see ../shared/notes/teacher-from-npm.md) is reproduced explicitly:
- 'same' padding is computed like TensorFlow (asymmetric for stride 2 on even sizes) and applied as a
  constant F.pad with static numbers, so that the ONNX export keeps static spatial sizes;
- BatchNorm epsilon comes from the layer config (1e-3 in Keras);
- average pooling with 'same' padding ignores the padded zeros, as TensorFlow does.
The module is built for one input size; NCHW float input, features returned in tap order.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """(pad_before, pad_after, out_size) of TensorFlow's 'same' padding along one axis."""
    eff = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2, out


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Layer(nn.Module):
    """One Keras layer; forward takes the list of its inbound tensors."""

    def __init__(self, fn, *modules: nn.Module):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(modules)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:  # noqa: D401
        return self.fn(xs, self.mods)


class _Pool(nn.Module):
    def __init__(self, pads, kernel, stride, count: torch.Tensor):
        super().__init__()
        self.pads, self.kernel, self.stride = pads, kernel, stride
        self.register_buffer("count", count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        area = self.kernel[0] * self.kernel[1]
        return F.avg_pool2d(F.pad(x, self.pads), self.kernel, self.stride) * area / self.count


class KerasGraph(nn.Module):
    def __init__(self, topology: dict, weights: dict[str, np.ndarray], taps: list[str], height: int, width: int):
        super().__init__()
        cfg = topology.get("model_config", topology)["config"]
        layers = {layer["name"]: layer for layer in cfg["layers"]}
        unknown = [t for t in taps if t not in layers]
        if unknown:
            raise ValueError(f"unknown taps {unknown}; the network has e.g. {[n for n in layers][:8]}...")
        self.taps = list(taps)
        self.input_name = cfg["input_layers"][0][0]

        # Keep only the ancestors of the taps, in topological (file) order.
        needed: set[str] = set()
        stack = list(taps)
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            stack.extend(self._inputs(layers[name]))
        self.order = [layer["name"] for layer in cfg["layers"] if layer["name"] in needed]

        shapes: dict[str, tuple[int, int, int]] = {}  # name -> (C, H, W)
        self.layers = nn.ModuleDict()
        self.inbound: dict[str, list[str]] = {}
        for name in self.order:
            layer = layers[name]
            ins = self._inputs(layer)
            self.inbound[name] = ins
            if layer["class_name"] == "InputLayer":
                shapes[name] = (3, height, width)
                continue
            built, shape = self._build(layer, [shapes[i] for i in ins], weights)
            self.layers[self._key(name)] = built
            shapes[name] = shape
        self.tap_shapes = {t: shapes[t] for t in taps}
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "_")

    @staticmethod
    def _inputs(layer: dict) -> list[str]:
        nodes = layer.get("inbound_nodes") or []
        return [inb[0] for inb in nodes[0]] if nodes else []

    def train(self, mode: bool = True):  # the teacher is frozen: BatchNorm must never switch to batch statistics
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        values: dict[str, torch.Tensor] = {self.input_name: x}
        for name in self.order:
            if name == self.input_name:
                continue
            values[name] = self.layers[self._key(name)]([values[i] for i in self.inbound[name]])
        return [values[t] for t in self.taps]

    # --- layer builders -------------------------------------------------------------------------------
    def _build(self, layer: dict, in_shapes: list[tuple[int, int, int]], weights: dict[str, np.ndarray]):
        kind = layer["class_name"]
        c = layer["config"]
        name = layer["name"]
        cin, h, w = in_shapes[0]

        def w_(key: str) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(weights[f"{name}/{key}"]))

        if kind == "ZeroPadding2D":
            (top, bottom), (left, right) = c["padding"]
            pads = (int(left), int(right), int(top), int(bottom))
            return _Layer(lambda xs, m, p=pads: F.pad(xs[0], p)), (cin, h + top + bottom, w + left + right)

        if kind in ("Conv2D", "DepthwiseConv2D"):
            kh, kw = _pair(c["kernel_size"])
            sh, sw = _pair(c["strides"])
            dh, dw = _pair(c.get("dilation_rate", 1))
            pads, oh, ow = self._conv_pads(c["padding"], h, w, kh, kw, sh, sw, dh, dw)
            if kind == "Conv2D":
                kernel = w_("kernel").permute(3, 2, 0, 1)  # HWIO -> OIHW
                conv = nn.Conv2d(cin, c["filters"], (kh, kw), (sh, sw), 0, (dh, dw), bias=c["use_bias"])
                cout = c["filters"]
            else:
                mult = c.get("depth_multiplier", 1)
                kernel = w_("depthwise_kernel").permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)  # HW C M -> (C M) 1 H W
                conv = nn.Conv2d(cin, cin * mult, (kh, kw), (sh, sw), 0, (dh, dw), groups=cin, bias=c["use_bias"])
                cout = cin * mult
            conv.weight.data.copy_(kernel)
            if c["use_bias"]:
                conv.bias.data.copy_(w_("bias"))
            act = self._activation(c.get("activation", "linear"))
            return _Layer(lambda xs, m, p=pads, a=act: a(m[0](F.pad(xs[0], p) if any(p) else xs[0])), conv), (cout, oh, ow)

        if kind == "BatchNormalization":
            bn = nn.BatchNorm2d(cin, eps=c["epsilon"], momentum=None)
            bn.weight.data.copy_(w_("gamma") if c.get("scale", True) else torch.ones(cin))
            bn.bias.data.copy_(w_("beta") if c.get("center", True) else torch.zeros(cin))
            bn.running_mean.data.copy_(w_("moving_mean"))
            bn.running_var.data.copy_(w_("moving_variance"))
            return _Layer(lambda xs, m: m[0](xs[0]), bn), (cin, h, w)

        if kind == "ReLU":
            if c.get("negative_slope", 0) or c.get("threshold", 0):
                raise ValueError(f"{name}: leaky/thresholded ReLU is not supported")
            mx = c.get("max_value")
            fn = (lambda t: torch.clamp(t, 0.0, float(mx))) if mx is not None else torch.relu
            return _Layer(lambda xs, m, f=fn: f(xs[0])), (cin, h, w)

        if kind == "Activation":
            act = self._activation(c["activation"])
            return _Layer(lambda xs, m, a=act: a(xs[0])), (cin, h, w)

        if kind == "Add":
            return _Layer(lambda xs, m: sum(xs[1:], xs[0])), (cin, h, w)

        if kind == "Concatenate":
            if c.get("axis", -1) not in (-1, 3):
                raise ValueError(f"{name}: only channel concatenation is supported")
            return _Layer(lambda xs, m: torch.cat(xs, dim=1)), (sum(s[0] for s in in_shapes), h, w)

        if kind in ("MaxPooling2D", "AveragePooling2D"):
            kh, kw = _pair(c["pool_size"])
            sh, sw = _pair(c["strides"] or c["pool_size"])
            pads, oh, ow = self._conv_pads(c["padding"], h, w, kh, kw, sh, sw, 1, 1)
            if kind == "MaxPooling2D":
                fn = lambda xs, m, p=pads, k=(kh, kw), s=(sh, sw): F.max_pool2d(  # noqa: E731
                    F.pad(xs[0], p, value=-math.inf) if any(p) else xs[0], k, s)
            elif any(pads):
                # TensorFlow averages over the valid part of the window only; the count of valid cells
                # depends on the static shape alone, so it is a constant of the graph.
                count = F.avg_pool2d(F.pad(torch.ones(1, 1, h, w), pads), (kh, kw), (sh, sw)) * (kh * kw)
                pool = _Pool(pads, (kh, kw), (sh, sw), count)
                return _Layer(lambda xs, m: m[0](xs[0]), pool), (cin, oh, ow)
            else:
                fn = lambda xs, m, k=(kh, kw), s=(sh, sw): F.avg_pool2d(xs[0], k, s)  # noqa: E731
            return _Layer(fn), (cin, oh, ow)

        raise ValueError(f"{name}: Keras layer {kind} is not supported by the port")

    @staticmethod
    def _conv_pads(padding: str, h: int, w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int):
        if padding == "valid":
            oh = (h - ((kh - 1) * dh + 1)) // sh + 1
            ow = (w - ((kw - 1) * dw + 1)) // sw + 1
            return (0, 0, 0, 0), oh, ow
        if padding != "same":
            raise ValueError(f"padding {padding!r} is not supported")
        top, bottom, oh = tf_same_pads(h, kh, sh, dh)
        left, right, ow = tf_same_pads(w, kw, sw, dw)
        return (left, right, top, bottom), oh, ow

    @staticmethod
    def _activation(name: str):
        if name == "linear":
            return lambda t: t
        if name == "relu":
            return torch.relu
        raise ValueError(f"activation {name!r} is not supported")
