"""The trained runs one bundle serves: usually one, or several (an ensemble) whose teachers and students run
side by side on the same input and whose maps are fused like the paths of one run.

Why ensembles: students of different teachers fail in different places (on MTD the MobileNetV2 student finds
defective parts, the InceptionV3 one outlines uneven areas), and averaging normalised maps keeps what each
finds while their independent false alarms average down. The bundle contract needs nothing new for this:
teacher.onnx and student.onnx just have more outputs, so the service serves an ensemble like any model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import tiles
from .anomaly_map import path_maps
from .train import Run, TrainConfig

# What every member must share: the input the service prepares once for all of them, and the held-out
# normal images export calibrates on.
SHARED_CONFIG = ("data", "category", "width", "height", "fit", "tile", "normalize_intensity", "val_fraction", "val_seed")


class Concat(nn.Module):
    """One graph whose outputs are its parts' outputs in order; every part sees the same input."""

    def __init__(self, parts: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for part in self.parts:
            out.extend(part(x))
        return out


class Rescaled(nn.Module):
    """A member whose teacher expects another input scaling than the bundle's (member 1's), e.g. ImageNet's mean
    and std beside nsfwjs' x/255: the bundle's input tensor is mapped back to pixels and scaled the member's way,
    one per-channel multiply-add inside the graph, so one input still feeds every member exactly."""

    def __init__(self, inner: nn.Module, given: dict, wanted: dict):
        super().__init__()
        self.inner = inner
        g_mean, g_std = torch.tensor(given["mean"]), torch.tensor(given["std"])
        w_mean, w_std = torch.tensor(wanted["mean"]), torch.tensor(wanted["std"])
        # pixel = (x * g_std + g_mean) / g_scale; wanted x = (pixel * w_scale - w_mean) / w_std
        ratio = wanted["scale"] / given["scale"]
        self.register_buffer("a", (g_std * ratio / w_std).view(1, 3, 1, 1))
        self.register_buffer("b", ((g_mean * ratio - w_mean) / w_std).view(1, 3, 1, 1))

    def train(self, mode: bool = True):  # wraps frozen teachers and students in eval mode alike
        self.inner.train(mode)
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.inner(x * self.a + self.b)


def same_scaling(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in ("scale", "mean", "std"))


def check_compatible(configs: list[TrainConfig], tap_names: list[list[str]]) -> None:
    first = configs[0]
    for i, cfg in enumerate(configs[1:], start=2):
        differ = [k for k in SHARED_CONFIG if getattr(cfg, k) != getattr(first, k)]
        if differ:
            raise ValueError(f"run {i} differs from run 1 in {', '.join(differ)}: members of one bundle must share "
                             "their input and validation split")
    names = [n for taps in tap_names for n in taps]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"teacher outputs {dup} appear in more than one run: each member needs its own tap names")


@dataclass
class Members:
    runs: list[Run]
    states: list[dict]
    dirs: list[Path]

    @classmethod
    def load(cls, run_dirs: list[Path], checkpoint: str) -> "Members":
        resolved = [Path(d).resolve() for d in run_dirs]
        twice = sorted({str(d) for d, r in zip(run_dirs, resolved) if resolved.count(r) > 1})
        if twice:
            raise ValueError(f"run {', '.join(twice)} given more than once: each member is its own run")
        runs, states = [], []
        for d in run_dirs:
            cfg = TrainConfig(**json.loads((d / "config.json").read_text()))
            torch.manual_seed(cfg.seed)
            run = Run(cfg)
            state = torch.load(d / checkpoint, map_location="cpu")
            run.load(state)
            run.student.eval()
            runs.append(run)
            states.append(state)
        members = cls(runs, states, list(run_dirs))
        check_compatible([r.cfg for r in runs], members.member_tap_names())
        return members

    @property
    def cfg(self) -> TrainConfig:
        """The shared part of the configuration (SHARED_CONFIG) is the same in every member."""
        return self.runs[0].cfg

    @property
    def ensemble(self) -> bool:
        return len(self.runs) > 1

    def rescaled(self) -> list[bool]:
        """Per member: whether its input is re-scaled inside the graphs (see Rescaled)."""
        return [not same_scaling(r.teacher.scaling, self.runs[0].teacher.scaling) for r in self.runs]

    def _fed(self, modules: list[nn.Module]) -> nn.Module:
        """The members' modules side by side, each taking the bundle's input (member 1's scaling)."""
        given = self.runs[0].teacher.scaling
        return Concat([Rescaled(m, given, r.teacher.scaling) if again else m for m, r, again in zip(modules, self.runs, self.rescaled())])

    def teacher_module(self) -> nn.Module:
        return self.runs[0].teacher.module if not self.ensemble else self._fed([r.teacher.module for r in self.runs])

    def student_module(self) -> nn.Module:
        return self.runs[0].student if not self.ensemble else self._fed([r.student for r in self.runs])

    def suffixes(self) -> list[str]:
        """Per member, what its output names carry after the tap name: nothing, or, for a member that taps a layer an
        earlier member already taps (another seed of the same recipe), @ and its run folder's name, since every
        output of teacher.onnx and student.onnx needs its own name."""
        seen: set[str] = set()
        out: list[str] = []
        for r, d in zip(self.runs, self.dirs):
            out.append(f"@{d.name}" if seen & set(r.teacher.taps) else "")
            seen |= set(r.teacher.taps)
        return out

    def member_tap_names(self) -> list[list[str]]:
        """Per member, the names of its teacher outputs."""
        return [[n + sfx for n in r.teacher.taps] for r, sfx in zip(self.runs, self.suffixes())]

    def tap_names(self) -> list[str]:
        return [n for names in self.member_tap_names() for n in names]

    def output_names(self) -> list[list[str]]:
        """Per member, its students' output names (= path names, e.g. direct.block_12_add)."""
        return [[p.output_name(r.taps) + sfx for p in r.paths] for r, sfx in zip(self.runs, self.suffixes())]

    def tensors(self, images: np.ndarray) -> torch.Tensor:
        return self.runs[0].tensors(images)

    def target_index(self) -> list[int]:
        """Per student output, in output order, the index of the teacher output it imitates among the teachers'
        joint outputs (tap_names)."""
        out: list[int] = []
        first = 0
        for r in self.runs:
            out += [first + p.teacher_tap for p in r.paths]
            first += len(r.teacher.taps)
        return out

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per output, in output order, [N, H, W] discrepancy maps at input size (reference math)."""
        with torch.no_grad():
            feats = self.teacher_module()(x)
            return path_maps([feats[i] for i in self.target_index()], self.student_module()(x), self.cfg.height, self.cfg.width)

    def tiled_maps(self, images: list, batch: int) -> list[list[np.ndarray]]:
        """fit tile: per output, per image (data.ScaledImage), its raw map blended over the grid's tiles at the
        inspection scale, [height, width], as the service blends them (before any blur)."""
        cfg = self.cfg
        out: list[list[np.ndarray]] = []
        for im in images:
            pixels, grid = tiles.cut(im.pixels, im.width, im.height, cfg.width, cfg.height, cfg.tile["overlap"])
            weights = tiles.tile_weights(cfg.width, cfg.height, cfg.tile["overlap"], cfg.tile["blend"])
            maps = [tiles.blend_tiles(m, grid, im.width, im.height, weights) for m in self.collect_maps(pixels, batch)]
            out = out or [[] for _ in maps]
            for k, m in enumerate(maps):
                out[k].append(m)
        return out

    def collect_maps(self, images: np.ndarray, batch: int) -> list[np.ndarray]:
        chunks: list[list[torch.Tensor]] = []
        for i in range(0, len(images), batch):
            maps = self.maps(self.tensors(images[i:i + batch]))
            chunks = chunks or [[] for _ in maps]
            for k, m in enumerate(maps):
                chunks[k].append(m)
        return [torch.cat(c).numpy() for c in chunks]
