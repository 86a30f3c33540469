"""Where training runs: `auto` is CUDA when this torch has it and a GPU is visible, else the CPU. Debian's torch
has no CUDA build, so on the project's own machines `auto` is always the CPU; the CUDA path is written for GPU
nodes with a CUDA-enabled torch (and, with `amp`, float16 autocast with loss scaling)."""
from __future__ import annotations

import contextlib

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device cuda: this torch ({torch.__version__}) "
                         + ("has no CUDA build (Debian's does not)" if torch.version.cuda is None else "sees no CUDA GPU")
                         + "; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Precision:
    """Float32, or on CUDA with amp, float16 autocast for the forward passes and a gradient scaler for the
    backward one (the teacher cache is float16 already; the loss and the optimiser stay float32)."""

    def __init__(self, device: torch.device, amp: bool):
        if amp and device.type != "cuda":
            raise ValueError("--amp (mixed precision) needs --device cuda: on the CPU it would only lose precision")
        self.amp = amp
        self.scaler = torch.cuda.amp.GradScaler() if amp else None

    def autocast(self):
        return torch.autocast(device_type="cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            opt.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
