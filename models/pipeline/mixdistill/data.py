"""MVTec-AD-layout data sets, prepared by the service's own decode/resize code (src/cli/prepare-images.ts)."""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .teachers.nsfwjs import REPO_ROOT

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
PREPARE_JS = REPO_ROOT / "dist" / "src" / "cli" / "prepare-images.js"


@dataclass(frozen=True)
class Sample:
    path: Path
    defect: str  # "good" or the defect type
    mask: Path | None = None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def category_dir(data: Path, category: str | None) -> Path:
    root = data / category if category else data
    if not (root / "train" / "good").is_dir():
        raise FileNotFoundError(f"{root} is not an MVTec AD category folder (no train/good)")
    return root


def train_good(root: Path) -> list[Sample]:
    return [Sample(p, "good") for p in _images(root / "train" / "good")]


def test_samples(root: Path) -> list[Sample]:
    out: list[Sample] = []
    for folder in sorted((root / "test").iterdir()):
        for p in _images(folder):
            mask = root / "ground_truth" / folder.name / f"{p.stem}_mask.png"
            out.append(Sample(p, folder.name, mask if mask.exists() else None))
    return out


def validation_part(samples: list[Sample], split_file: Path) -> list[Sample]:
    """The test samples a declared split sets aside for choices (its `validation` lists, per test folder, file
    stems; see ../shared/datasets/mtd/split_test.json). As the evaluation does, a split naming images the data
    lacks is refused: it was made for other data."""
    listed = {(folder, stem) for folder, stems in json.loads(Path(split_file).read_text())["validation"].items() for stem in stems}
    present = {(s.defect, s.path.stem) for s in samples}
    missing = sorted(listed - present)
    if missing:
        raise ValueError(f"{split_file} lists {len(missing)} validation images the data does not have (e.g. test/{missing[0][0]}/{missing[0][1]})")
    return [s for s in samples if (s.defect, s.path.stem) in listed]


def split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Seeded split of normal training images into fit and validation (calibration) sets."""
    order = list(samples)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(val_fraction * len(order))) if val_fraction > 0 else 0
    return sorted(order[n_val:], key=lambda s: s.path), sorted(order[:n_val], key=lambda s: s.path)


def _prepared(samples: list[Sample], name: str, settings: list, args: list[str], cache: Path) -> tuple[Path, Path]:
    """The service's prepare-images run over `samples` with `args`, cached by file list and settings: the pixel
    file and its index (one JSON line per image, as the command prints them)."""
    if not PREPARE_JS.exists():
        raise FileNotFoundError(f"{PREPARE_JS} is missing: run `npm run build` in the repo root first")
    files = [str(s.path.resolve()) for s in samples]
    stamp = [(f, Path(f).stat().st_size, Path(f).stat().st_mtime_ns) for f in files]
    key = hashlib.sha256(json.dumps([stamp, *settings]).encode()).hexdigest()[:16]
    out = cache / f"{name}-{key}.u8"
    index = out.with_suffix(".jsonl")
    if not (out.exists() and index.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lst:
            lst.write("\n".join(files) + "\n")
        # A name of its own: runs started side by side prepare the same file at once; os.replace is atomic and
        # both write the same bytes, so whichever lands last is as good.
        fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=out.stem + ".", suffix=".partial")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            lines = subprocess.run(["node", str(PREPARE_JS), "--list", lst.name, *args, "--out", str(tmp)],
                                   check=True, capture_output=True, text=True).stdout
            tmp.with_suffix(".jsonl").write_text(lines)
            os.replace(tmp.with_suffix(".jsonl"), index)
            os.replace(tmp, out)
        finally:
            Path(lst.name).unlink()
            tmp.unlink(missing_ok=True)
            tmp.with_suffix(".jsonl").unlink(missing_ok=True)
    return out, index


def prepare(samples: list[Sample], width: int, height: int, fit: str, cache: Path) -> np.ndarray:
    """uint8 [N, H, W, 3] RGB exactly as the server prepares them; cached by file list and settings."""
    out, _ = _prepared(samples, f"images-{width}x{height}-{fit}", [width, height, fit],
                       ["--width", str(width), "--height", str(height), "--fit", fit], cache)
    return np.fromfile(out, dtype=np.uint8).reshape(len(samples), height, width, 3)


@dataclass(frozen=True)
class ScaledImage:
    """An image at a tiled bundle's inspection scale, as the service prepares it (resizeForTiles): `pixels` is
    mirror-extended to at least one tile a side; the image itself is its top-left `width` x `height`."""
    pixels: np.ndarray  # [H, W, 3] uint8 RGB
    width: int
    height: int


def prepare_scaled(samples: list[Sample], tile_width: int, tile_height: int, scale: float, cache: Path) -> list[ScaledImage]:
    """Each sample at the inspection scale (fit tile), exactly as the server prepares it; cached like prepare()."""
    out, index = _prepared(samples, f"scaled-{tile_width}x{tile_height}-x{scale:g}", [tile_width, tile_height, "tile", scale],
                           ["--width", str(tile_width), "--height", str(tile_height), "--fit", "tile", "--scale", repr(float(scale))], cache)
    raw = np.fromfile(out, dtype=np.uint8)
    images, at = [], 0
    for line in index.read_text().splitlines():
        m = json.loads(line)
        n = m["rgbWidth"] * m["rgbHeight"] * 3
        images.append(ScaledImage(raw[at:at + n].reshape(m["rgbHeight"], m["rgbWidth"], 3), m["scaledWidth"], m["scaledHeight"]))
        at += n
    if len(images) != len(samples) or at != raw.size:
        raise RuntimeError(f"{out}: prepared images do not match their index; delete it and run again")
    return images


def letterbox_window(w0: int, h0: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of a w0 x h0 image inside a letterboxed input, as src/image/preprocess.ts
    letterboxWindow() places it (Math.round: halves round up)."""
    scale = min(width / w0, height / h0)
    cw = max(1, min(width, math.floor(w0 * scale + 0.5)))
    ch = max(1, min(height, math.floor(h0 * scale + 0.5)))
    return (width - cw) // 2, (height - ch) // 2, cw, ch


def prepare_masks(samples: list[Sample], width: int, height: int, fit: str) -> np.ndarray:
    """bool [N, H, W]: each sample's ground-truth mask over the window the model sees (the service's placement),
    resized with nearest neighbour; all False where a sample has no mask."""
    from PIL import Image

    out = np.zeros((len(samples), height, width), dtype=bool)
    for i, s in enumerate(samples):
        if s.mask is None:
            continue
        m = Image.open(s.mask).convert("L")
        if fit == "letterbox":  # the image's window, the borders mirrored like the image's (sharp extend 'mirror')
            left, top, cw, ch = letterbox_window(*m.size, width, height)
            inner = np.asarray(m.resize((cw, ch), Image.NEAREST)) > 127
            out[i] = np.pad(inner, ((top, height - top - ch), (left, width - left - cw)), mode="symmetric")
            continue
        if fit == "center-crop":  # same window as src/image/preprocess.ts placement()
            w0, h0 = m.size
            scale = max(width / w0, height / h0)
            cw, ch = min(w0, round(width / scale)), min(h0, round(height / scale))
            left, top = (w0 - cw) // 2, (h0 - ch) // 2
            m = m.crop((left, top, left + cw, top + ch))
        out[i] = np.asarray(m.resize((width, height), Image.NEAREST)) > 127
    return out


def prepare_masks_scaled(samples: list[Sample], scale: float) -> list[np.ndarray]:
    """fit tile: each sample's mask at the inspection scale (the image's own size at scale 1), nearest neighbour, as
    the evaluation resizes it; all False where a sample has no mask."""
    from PIL import Image

    from .tiles import scaled_size

    out = []
    for s in samples:
        with Image.open(s.path) as im:
            size = scaled_size(*im.size, scale)
        if s.mask is None:
            out.append(np.zeros(size[::-1], dtype=bool))
            continue
        m = Image.open(s.mask).convert("L")
        out.append(np.asarray(m.resize(size, Image.NEAREST) if m.size != size else m) > 127)
    return out


def intensity_remap(images: np.ndarray, target: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per image (gain, bias) remapping its pixels (all channels) to target mean/std, as intensityRemap in
    src/image/preprocess.ts; a flat image keeps gain 1."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    mean = flat.mean(axis=1)
    std = np.sqrt(np.maximum((flat * flat).mean(axis=1) - mean * mean, 0))
    gain = np.where(std > 1e-3, target["std"] / np.maximum(std, 1e-12), 1.0)
    return gain, target["mean"] - mean * gain


def to_tensor(images: np.ndarray, scale: float, mean: list[float], std: list[float], intensity: dict | None = None) -> torch.Tensor:
    """uint8 NHWC -> float NCHW, x = (p * scale - mean) / std with p the pixel, or pixel * gain + bias
    under intensity normalisation, as src/image/preprocess.ts does."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if intensity:
        gain, bias = intensity_remap(images, intensity)
        x = x * torch.from_numpy(gain).float().view(-1, 1, 1, 1) + torch.from_numpy(bias).float().view(-1, 1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x * scale - m) / s
