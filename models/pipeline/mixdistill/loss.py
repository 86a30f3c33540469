"""Mixed-distillation objective: per path, the mean over locations of 1 - cos(teacher, student)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cosine_distance(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] x2 -> [N, H, W]: 1 - cosine similarity along channels (the anomaly map of one path)."""
    return 1.0 - F.cosine_similarity(t, s, dim=1, eps=1e-8)


def hardest_mean(d: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of the largest `fraction` of the values in d (all of them at 1). EfficientAD's hard feature loss: the
    image score is a maximum, so what false alarms come from is the worst-fitted normal locations, and a plain
    mean spends the student's capacity on locations that are already fitted."""
    if fraction >= 1.0:
        return d.mean()
    flat = d.flatten()
    return flat.topk(max(1, math.ceil(fraction * flat.numel()))).values.mean()


def mixed_distillation_loss(teacher: list[torch.Tensor], student: list[torch.Tensor], weights: list[float],
                            hard_fraction: float = 1.0) -> tuple[torch.Tensor, list[float]]:
    """teacher[i] is the target of student[i] (already paired by path); returns total and per-path values."""
    per_path = [hardest_mean(cosine_distance(t, s), hard_fraction) for t, s in zip(teacher, student)]
    total = sum(w * l for w, l in zip(weights, per_path))
    return total, [float(l.detach()) for l in per_path]
