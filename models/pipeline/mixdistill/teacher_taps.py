"""A teacher's taps on given input tensors, written as raw float32 files, and optionally the teacher exported
to ONNX exactly as `export` exports it: what the service's tests compare teacher.onnx against, run by
onnxruntime-node (test/teacher-parity.test.ts), for teachers that have no JavaScript original to run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .teachers import build_teacher


def teacher_taps(spec: str, taps: list[str] | None, height: int, width: int, x_file: Path, out: Path, onnx_file: Path | None = None) -> list[str]:
    """x_file: float32 NCHW [1, 3, height, width], already scaled as the teacher expects. Writes out/<tap>.f32
    (NCHW) and returns the tap names in order."""
    from .export import _export_onnx

    teacher = build_teacher(spec, taps, height, width)
    x = torch.from_numpy(np.fromfile(x_file, dtype=np.float32).reshape(1, 3, height, width))
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for name, f in zip(teacher.taps, teacher.module(x)):
            f.numpy().astype(np.float32).tofile(out / f"{name}.f32")
    if onnx_file:
        _export_onnx(teacher.module, onnx_file, teacher.taps, height, width)
    return teacher.taps
