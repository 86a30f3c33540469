"""A small synthetic data set in MVTec AD layout: smooth random textures, and defective copies with a bright
scratch and its pixel mask. For tests and fixtures only; it proves plumbing, not accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    noise = rng.normal(0, 1, (size // 4 + 2, size // 4 + 2))
    img = np.asarray(Image.fromarray(((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC), dtype=np.float32)
    stripes = 20 * np.sin(np.arange(size) / 3.0)[None, :]
    return np.clip(0.6 * img + 60 + stripes, 0, 255)


def write(root: Path, category: str = "synthetic", train: int = 24, test_good: int = 6, test_bad: int = 6, size: int = 96, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    cat = root / category
    for sub in ("train/good", "test/good", "test/scratch", "ground_truth/scratch"):
        (cat / sub).mkdir(parents=True, exist_ok=True)
    for i in range(train):
        Image.fromarray(texture(rng, size).astype(np.uint8)).save(cat / "train/good" / f"{i:03d}.png")
    for i in range(test_good):
        Image.fromarray(texture(rng, size).astype(np.uint8)).save(cat / "test/good" / f"{i:03d}.png")
    for i in range(test_bad):
        img = texture(rng, size)
        mask = np.zeros((size, size), np.uint8)
        y = int(rng.integers(size // 4, 3 * size // 4))
        x0 = int(rng.integers(0, size // 2))
        mask[y:y + 3, x0:x0 + size // 3] = 255
        img[mask > 0] = 250
        Image.fromarray(img.astype(np.uint8)).convert("RGB").save(cat / "test/scratch" / f"{i:03d}.png")
        Image.fromarray(mask).save(cat / "ground_truth/scratch" / f"{i:03d}_mask.png")
    return cat
