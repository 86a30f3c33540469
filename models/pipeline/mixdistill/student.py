"""The student: a CNN with one stage per teacher tap, and a small head per path.

Paths (the paper's mixed distillation):
- direct    student stage i    -> teacher tap i            (layer-wise)
- skip      deepest stage      -> shallowest teacher tap  (cross-layer: deep student learns shallow teacher)
- symmetric shallowest stage   -> deepest teacher tap     (cross-layer: shallow student learns deep teacher)

Two bodies, chosen by configuration (`--student`):
- forward (STPM): a randomly initialised ResNet of basic blocks that sees the image, one stage per tap stride.
- reverse (RD4AD): the frozen teacher encodes the image, a trainable bottleneck fuses its taps into one small
  embedding at half the deepest resolution, and a decoder climbs back to each tap's resolution. Stage i is the
  decoder stage at tap i's resolution, so "deep" and "shallow" keep their meaning for the mixed paths. The
  bottleneck is why it works: what it cannot compress (what normal images never showed) the decoder cannot
  restore, while a forward student of the same capacity learns to copy the teacher on anything.

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


STUDENT_KINDS = ("forward", "reverse")


class ForwardBody(nn.Module):
    """STPM-style: image -> stem -> one ResNet stage per tap stride."""

    def __init__(self, taps: list[Tap], widths: list[int], blocks: int):
        super().__init__()
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
            if ratio not in (1, 2):
                raise ValueError(f"tap {tap.name}: stride {tap.stride} after {prev_stride}; consecutive taps must differ by at most 2x")
            layers: list[nn.Module] = []
            for j in range(blocks):
                layers.append(BasicBlock(cin, widths[i], 2 if (j == 0 and ratio == 2) else 1))
                cin = widths[i]
            self.stages.append(nn.Sequential(*layers))
            prev_stride = tap.stride

    def forward(self, x: torch.Tensor, teacher_feats: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        feats = []
        y = self.stem(x)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats


class ReverseBody(nn.Module):
    """RD4AD-style: frozen encoder -> multi-scale fusion -> one-class bottleneck -> decoder, deep to shallow."""

    def __init__(self, taps: list[Tap], widths: list[int], blocks: int, encoder: nn.Module):
        super().__init__()
        self.taps = taps
        self.encoder = encoder  # the teacher itself: frozen, stays in eval mode (its train() refuses)
        deep = taps[-1]
        # Multi-scale fusion: every shallower tap is brought down to the deepest tap's grid with stride-2 convs.
        self.fuse = nn.ModuleList()
        for t in taps[:-1]:
            layers: list[nn.Module] = []
            c = t.channels
            for _ in range(_log2(max(1, deep.stride // t.stride))):
                layers.append(conv_bn_relu(c, deep.channels, 2))
                c = deep.channels
            self.fuse.append(nn.Sequential(*layers))
        bottleneck = 2 * widths[-1]
        fused = deep.channels * len(taps)
        self.embed = nn.Sequential(nn.Conv2d(fused, bottleneck, 1, bias=False), nn.BatchNorm2d(bottleneck), nn.ReLU(inplace=True),
                                   BasicBlock(bottleneck, bottleneck, 2))
        self.stages = nn.ModuleList()  # indexed like taps (shallow to deep), run deep to shallow
        cin = bottleneck
        up: list[nn.Module] = [None] * len(taps)  # type: ignore[list-item]
        for i in reversed(range(len(taps))):
            layers = [conv_bn_relu(cin, widths[i])] + [BasicBlock(widths[i], widths[i], 1) for _ in range(blocks - 1)]
            up[i] = nn.Sequential(*layers)
            cin = widths[i]
        self.stages.extend(up)

    def forward(self, x: torch.Tensor, teacher_feats: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        if teacher_feats is None:
            with torch.no_grad():
                teacher_feats = self.encoder(x)
        deep = self.taps[-1]
        grid = (deep.height, deep.width)
        parts = []
        for f, down in zip(teacher_feats[:-1], self.fuse):
            f = down(f)
            if f.shape[-2:] != grid:  # 'valid'-padded teachers: taps are not stride-exact
                f = F.interpolate(f, size=grid, mode="bilinear", align_corners=False)
            parts.append(f)
        y = self.embed(torch.cat(parts + [teacher_feats[-1]], 1))
        feats: list[torch.Tensor] = [y] * len(self.taps)
        for i in reversed(range(len(self.taps))):
            t = self.taps[i]
            y = F.interpolate(y, size=(t.height, t.width), mode="bilinear", align_corners=False)
            y = self.stages[i](y)
            feats[i] = y
        return feats


class Student(nn.Module):
    def __init__(self, taps: list[Tap], paths: list[PathSpec], widths: list[int], blocks: int = 2,
                 kind: str = "forward", encoder: nn.Module | None = None):
        super().__init__()
        if len(widths) != len(taps):
            raise ValueError(f"{len(widths)} stage widths for {len(taps)} taps")
        if kind not in STUDENT_KINDS:
            raise ValueError(f"unknown student {kind!r}; choose from {STUDENT_KINDS}")
        if kind == "reverse" and encoder is None:
            raise ValueError("a reverse student needs the teacher as its encoder")
        self.taps, self.paths, self.kind, self.widths, self.blocks = taps, paths, kind, widths, blocks
        self.body = ForwardBody(taps, widths, blocks) if kind == "forward" else ReverseBody(taps, widths, blocks, encoder)
        self.heads = nn.ModuleList([self._head(p, widths) for p in paths])  # in path order

    def describe(self) -> str:
        name = "resnet-basic-blocks" if self.kind == "forward" else "reverse-distillation decoder (frozen teacher encoder, one-class bottleneck)"
        return f"{name} widths={self.widths} blocks={self.blocks}"

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

    def forward(self, x: torch.Tensor, teacher_feats: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """teacher_feats: the teacher's taps of x when the caller has them (training), so a reverse student
        does not run the encoder twice; exported graphs compute them from x."""
        feats = self.body(x, teacher_feats)
        outs = []
        for p, head in zip(self.paths, self.heads):
            y = head(feats[p.student_stage])
            tap = self.taps[p.teacher_tap]
            if y.shape[-2:] != (tap.height, tap.width):  # taps of 'valid'-padded teachers are not stride-exact
                y = F.interpolate(y, size=(tap.height, tap.width), mode="bilinear", align_corners=False)
            outs.append(y)
        return outs
