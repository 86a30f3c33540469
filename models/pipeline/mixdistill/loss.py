"""Mixed-distillation objective: per path, the mean over locations of 1 - cos(teacher, student)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_distance(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] x2 -> [N, H, W]: 1 - cosine similarity along channels (the anomaly map of one path)."""
    return 1.0 - F.cosine_similarity(t, s, dim=1, eps=1e-8)


def mixed_distillation_loss(teacher: list[torch.Tensor], student: list[torch.Tensor], weights: list[float]) -> tuple[torch.Tensor, list[float]]:
    """teacher[i] is the target of student[i] (already paired by path); returns total and per-path values."""
    per_path = [cosine_distance(t, s).mean() for t, s in zip(teacher, student)]
    total = sum(w * l for w, l in zip(weights, per_path))
    return total, [float(l.detach()) for l in per_path]
