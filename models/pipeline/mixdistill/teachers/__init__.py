"""Teacher registry: `nsfwjs:<model>` (pretrained Keras networks from the npm package) or
`torchvision:<arch>@<weights>` (ImageNet weights the user has locally: a state dict, a folder of folded .npy
files, or torchvision's int8 TorchScript MobileNetV2; see torchvision_backbone.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

DEFAULT_TAPS = {
    "nsfwjs:mobilenet_v2": ["block_2_add", "block_5_add", "block_9_add"],
    "nsfwjs:inception_v3": ["activation_5", "mixed2", "mixed5"],
    "torchvision:resnet18": ["layer1", "layer2", "layer3"],
    # torchvision's features 3/6/10 are the Keras block_2/5/9_add the nsfwjs MobileNetV2 taps by default
    "torchvision:mobilenet_v2": ["features.3", "features.6", "features.10"],
    "torchvision:wide_resnet50_2": ["layer1", "layer2", "layer3"],
}


# Where `torchvision:<arch>` without @weights looks, in order, and the file or folder names it looks for: the
# team's folded NumPy set, then torchvision's own download (what `torchvision.models.resnet18(weights="DEFAULT")`
# leaves in torch's hub cache on a machine with internet).
KNOWN_NAMES = {
    "resnet18": ["resnet18-imagenet-npy", "resnet18-f37072fd.pth"],
    "mobilenet_v2": ["torchvision-mobilenet_v2-quantized/mobilenet_quantized.pt", "mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"],
    "wide_resnet50_2": ["wide_resnet50_2-95faca4d.pth", "wide_resnet50_2-9ba9bcbe.pth"],
}


def weight_dirs() -> list[Path]:
    import os

    from .nsfwjs import REPO_ROOT

    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return ([Path(os.environ["MIXDISTILL_WEIGHTS"])] if os.environ.get("MIXDISTILL_WEIGHTS") else []) + [
        REPO_ROOT.parent / "shared" / "weights", torch_home / "hub" / "checkpoints"]


def find_weights(arch: str) -> Path:
    names = KNOWN_NAMES.get(arch, [])
    for d in weight_dirs():
        for n in names:
            if (d / n).exists():
                return d / n
    raise ValueError(f"torchvision:{arch} needs ImageNet weights, and none of {', '.join(names) or '(no known file names)'} is in "
                     f"{', '.join(map(str, weight_dirs()))}. Give them as torchvision:{arch}@/path/to/weights (a .pth state dict, a "
                     "folder of folded .npy files or the int8 TorchScript MobileNetV2), set MIXDISTILL_WEIGHTS to their folder, or "
                     f"on a machine with internet run python3 -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"")


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

        from .known_weights import KNOWN, digest

        arch, _, weights = rest.partition("@")
        weights = weights or str(find_weights(arch))
        taps = taps or DEFAULT_TAPS[f"torchvision:{arch}"]
        module = TorchvisionTeacher(arch, Path(weights), taps, height, width)
        sha = digest(Path(weights))
        known = KNOWN.get(sha)
        source = {"spec": f"torchvision:{arch}", "weights": Path(weights).name, "weightsSha256": sha,
                  "weightsFormat": module.weights_format,
                  **(known if known else {"note": "user-supplied ImageNet weights; provenance and licence are the user's to state"})}
        return BuiltTeacher(module, taps, module.tap_shapes, dict(IMAGENET), source)
    raise ValueError(f"unknown teacher {spec!r}: use nsfwjs:<model> or torchvision:<arch>@<weights>")


class Standardized(nn.Module):
    """The teacher with every tap standardised per channel, (f - mean) / std, by statistics of the training
    images (EfficientAD normalises its teacher the same way). Raw MobileNetV2 taps share a large mean direction
    (two random locations of block_9_add have cosine 0.57 on MTD), so 1 - cos followed that direction and was
    blind to the many small channels; standardised, random pairs have cosine ~0 and every channel counts.
    Exported as part of teacher.onnx; the manifest lists the statistics."""

    def __init__(self, inner: nn.Module, channels: list[int]):
        super().__init__()
        self.inner = inner
        self.n = len(channels)
        for i, c in enumerate(channels):
            self.register_buffer(f"mean{i}", torch.zeros(1, c, 1, 1))
            self.register_buffer(f"std{i}", torch.ones(1, c, 1, 1))

    def train(self, mode: bool = True):  # frozen, like the teacher it wraps
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [(f - getattr(self, f"mean{i}")) / getattr(self, f"std{i}") for i, f in enumerate(self.inner(x))]

    def stats(self) -> list[dict[str, list[float]]]:
        return [{"mean": getattr(self, f"mean{i}").flatten().tolist(), "std": getattr(self, f"std{i}").flatten().tolist()} for i in range(self.n)]

    def set_stats(self, stats: list[dict[str, list[float]]]) -> None:
        for i, st in enumerate(stats):
            getattr(self, f"mean{i}").copy_(torch.tensor(st["mean"]).view(1, -1, 1, 1))
            getattr(self, f"std{i}").copy_(torch.tensor(st["std"]).view(1, -1, 1, 1))

    @torch.no_grad()
    def fit(self, batches) -> None:
        """Per-channel mean and std over every location of every image in `batches` (tensors ready for the teacher)."""
        sums: list[torch.Tensor] = []
        squares: list[torch.Tensor] = []
        counts: list[int] = []
        for x in batches:
            for i, f in enumerate(self.inner(x)):
                f = f.double()
                s1, s2, n = f.sum(dim=(0, 2, 3)), f.pow(2).sum(dim=(0, 2, 3)), f.shape[0] * f.shape[2] * f.shape[3]
                if i == len(sums):
                    sums.append(s1), squares.append(s2), counts.append(n)
                else:
                    sums[i] += s1
                    squares[i] += s2
                    counts[i] += n
        stats = []
        for s1, s2, n in zip(sums, squares, counts):
            mean = s1 / n
            std = (s2 / n - mean ** 2).clamp_min(0).sqrt().clamp_min(1e-3)  # a dead channel must not divide by 0
            stats.append({"mean": mean.float().tolist(), "std": std.float().tolist()})
        self.set_stats(stats)
