"""The student: a randomly initialised CNN with one stage per teacher tap, and a small head per path.

Paths (the paper's mixed distillation):
- direct    student stage i    -> teacher tap i            (layer-wise)
- skip      deepest stage      -> shallowest teacher tap  (cross-layer: deep student learns shallow teacher)
- symmetric shallowest stage   -> deepest teacher tap     (cross-layer: shallow student learns deep teacher)

Choices the paper leaves open, and why:
- Stages are ResNet basic blocks (as STPM's ResNet18 student), widths configurable; they reach each tap's
  stride, so direct heads are 1x1 convolutions (channel match only, no resampling).
- skip heads upsample bilinearly to the shallow stride, then conv3x3-BN-ReLU-conv1x1 (RD4AD-style decoder step);
- symmetric heads downsample with stride-2 conv3x3-BN-ReLU blocks, then conv1x1.
Heads stay small so that the discrepancy reflects what the student body learned, not head capacity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

PATH_KINDS = ("direct", "skip", "symmetric")


@dataclass(frozen=True)
class Tap:
    name: str
    stride: int
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class PathSpec:
    kind: str          # direct | skip | symmetric
    student_stage: int
    teacher_tap: int

    def output_name(self, taps: list[Tap]) -> str:
        return f"{self.kind}.{taps[self.teacher_tap].name}"


def taps_of(shapes: dict[str, tuple[int, int, int]], input_height: int) -> list[Tap]:
    """Taps with their nominal stride: the power of two nearest input/feature size (InceptionV3's 'valid'
    taps at 256 are 60, 29, 14: strides 4, 8, 16)."""
    taps = []
    for name, (c, h, w) in shapes.items():
        taps.append(Tap(name, 2 ** max(0, round(math.log2(input_height / h))), c, h, w))
    return taps


def plan_paths(n_taps: int, kinds: list[str]) -> list[PathSpec]:
    bad = [k for k in kinds if k not in PATH_KINDS]
    if bad:
        raise ValueError(f"unknown path kinds {bad}; choose from {PATH_KINDS}")
    paths: list[PathSpec] = []
    if "direct" in kinds:
        paths += [PathSpec("direct", i, i) for i in range(n_taps)]
    if n_taps > 1 and "skip" in kinds:
        paths.append(PathSpec("skip", n_taps - 1, 0))
    if n_taps > 1 and "symmetric" in kinds:
        paths.append(PathSpec("symmetric", 0, n_taps - 1))
    if not paths:
        raise ValueError("no path is enabled")
    return paths


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Upsample(nn.Module):
    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)


def _log2(n: int) -> int:
    k = int(round(math.log2(n)))
    if 2 ** k != n:
        raise ValueError(f"stride ratio {n} is not a power of two")
    return k


class Student(nn.Module):
    def __init__(self, taps: list[Tap], paths: list[PathSpec], widths: list[int], blocks: int = 2):
        super().__init__()
        if len(widths) != len(taps):
            raise ValueError(f"{len(widths)} stage widths for {len(taps)} taps")
        self.taps, self.paths = taps, paths
        first = taps[0].stride
        # Stem: down to the first tap's stride with stride-2 convs (as ResNet's conv1+pool reach s4).
        stem: list[nn.Module] = []
        cin = 3
        for i in range(_log2(first)):
            cout = widths[0] if i == _log2(first) - 1 else max(32, widths[0] // 2)
            stem.append(conv_bn_relu(cin, cout, 2))
            cin = cout
        self.stem = nn.Sequential(*stem)
        self.stages = nn.ModuleList()
        prev_stride = first
        for i, tap in enumerate(taps):
            ratio = tap.stride // prev_stride
            layers: list[nn.Module] = []
            for j in range(blocks):
                stride = 2 if (j == 0 and ratio == 2) else 1
                layers.append(BasicBlock(cin, widths[i], stride))
                cin = widths[i]
            if ratio not in (1, 2):
                raise ValueError(f"tap {tap.name}: stride {tap.stride} after {prev_stride}; consecutive taps must differ by at most 2x")
            self.stages.append(nn.Sequential(*layers))
            prev_stride = tap.stride
        self.heads = nn.ModuleList([self._head(p, widths) for p in paths])  # in path order

    def _head(self, p: PathSpec, widths: list[int]) -> nn.Module:
        src_stride = self.taps[p.student_stage].stride
        dst = self.taps[p.teacher_tap]
        cin = widths[p.student_stage]
        if p.kind == "direct":
            return nn.Conv2d(cin, dst.channels, 1)
        if dst.stride < src_stride:  # skip: upsample to the shallow resolution
            mid = max(dst.channels * 2, cin // 2)
            return nn.Sequential(Upsample(src_stride // dst.stride), conv_bn_relu(cin, mid), nn.Conv2d(mid, dst.channels, 1))
        layers: list[nn.Module] = []  # symmetric: downsample to the deep resolution
        c = cin
        for _ in range(_log2(dst.stride // src_stride)):
            layers.append(conv_bn_relu(c, c * 2, 2))
            c *= 2
        layers.append(nn.Conv2d(c, dst.channels, 1))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        y = self.stem(x)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        outs = []
        for p, head in zip(self.paths, self.heads):
            y = head(feats[p.student_stage])
            tap = self.taps[p.teacher_tap]
            if y.shape[-2:] != (tap.height, tap.width):  # taps of 'valid'-padded teachers are not stride-exact
                y = F.interpolate(y, size=(tap.height, tap.width), mode="bilinear", align_corners=False)
            outs.append(y)
        return outs
