"""Reference implementation of the scoring math that the service composes into its ONNX graph.

Per path: d = 1 - cos(teacher, student) at each location; upsampled bilinearly (half-pixel centres) to the
input size; normalised (d - offset) / scale; weighted sum over paths; Gaussian blur with reflect padding;
image score by max or top-k mean. Any change here must be mirrored in src/graph/head.ts and src/maps/.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .loss import cosine_distance


def kernel_size_for(sigma: float) -> int:
    """anomalib's rule: 2 * int(4 * sigma + 0.5) + 1 (covers +-4 sigma)."""
    return 2 * int(4.0 * sigma + 0.5) + 1 if sigma > 0 else 1


def gaussian_kernel1d(sigma: float, size: int) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x ** 2) / (2 * sigma * sigma))
    return (k / k.sum()).float()


def path_maps(teacher: list[torch.Tensor], student: list[torch.Tensor], height: int, width: int) -> list[torch.Tensor]:
    """Per path [N, H, W] discrepancy maps at input resolution."""
    return [F.interpolate(cosine_distance(t, s).unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False)[:, 0]
            for t, s in zip(teacher, student)]


def blur(m: torch.Tensor, sigma: float, size: int) -> torch.Tensor:
    if sigma <= 0 or size <= 1:
        return m
    k = gaussian_kernel1d(sigma, size)
    pad = (size - 1) // 2
    x = m.unsqueeze(1)
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), k.view(1, 1, 1, size))
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), k.view(1, 1, size, 1))
    return x[:, 0]


def fuse(maps: list[torch.Tensor], offsets: list[float], scales: list[float], weights: list[float], sigma: float, size: int) -> torch.Tensor:
    fused = sum(w * (m - o) / s for m, o, s, w in zip(maps, offsets, scales, weights))
    return blur(fused, sigma, size)


def reduce_score(fused: torch.Tensor, reduction: dict) -> torch.Tensor:
    """Per image; NaN (outside an image of a tiled bundle's stacked maps, tiles.nan_stack) never counts."""
    flat = torch.nan_to_num(fused.flatten(1), nan=-torch.inf)
    if reduction["kind"] == "max":
        return flat.max(dim=1).values
    if reduction["kind"] == "topk-mean":
        return flat.topk(min(reduction["k"], flat.shape[1]), dim=1).values.mean(dim=1)
    raise ValueError(f"unknown reduction {reduction}")
