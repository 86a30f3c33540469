"""Synthetic defects painted on normal validation images, for the design decisions that need defective
examples without looking at the test set (which paths to fuse, with which weights).

Four kinds, after the defects of surface inspection data sets (MTD's blowholes, cracks, breaks/frays,
uneven areas); one per image, cycling:
- line:   a thin dark polyline, 1-3 px wide (cracks, scratches);
- spot:   a dark ellipse with a soft rim, 4-12 px radius (blowholes, pits);
- patch:  a rectangle of texture cut from another image, rotated a quarter turn (breaks, frays, foreign matter);
- uneven: a broad Gaussian brightness change of 25-40 % (uneven surface, stains).
They prove that a path reacts to local change; they are not the line's real defects, so choices made on
them are written down as such.

Two more kinds exist for training a denoising student only (validation keeps the four above, so that its
figures stay comparable across models):
- crack: a long, thin, meandering dark line of low contrast (a random walk with a slowly turning heading);
- band:  a region running in from one edge of the image, bounded by a wavy line, whose surface texture is
  another image's, magnified and with another contrast (a differently finished area of the part).
"""
from __future__ import annotations

import numpy as np

KINDS = ("line", "spot", "patch", "uneven")
TRAINING_KINDS = KINDS + ("crack", "band")


def _disc_mask(h: int, w: int, cy: np.ndarray, cx: np.ndarray, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for y, x in zip(cy, cx):
        y0, y1, x0, x1 = int(max(0, y - r - 1)), int(min(h, y + r + 2)), int(max(0, x - r - 1)), int(min(w, x + r + 2))
        m[y0:y1, x0:x1] |= (yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2 <= r * r
    return m


def line(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    pts = [np.array([rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w])]
    for _ in range(int(rng.integers(2, 5))):
        ang = rng.uniform(0, 2 * np.pi)
        step = rng.uniform(0.08, 0.2) * min(h, w)
        pts.append(np.clip(pts[-1] + step * np.array([np.sin(ang), np.cos(ang)]), 0, [h - 1, w - 1]))
    ys, xs = [], []
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(np.ceil(np.abs(b - a).max())) + 1
        ys.append(np.linspace(a[0], b[0], n))
        xs.append(np.linspace(a[1], b[1], n))
    mask = _disc_mask(h, w, np.concatenate(ys), np.concatenate(xs), rng.uniform(0.6, 1.6))
    out = img.astype(np.float32)
    out[mask] *= rng.uniform(0.3, 0.6)
    return out, mask


def spot(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    ry, rx = rng.uniform(4, 12, 2)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    weight = np.clip(1.5 - d, 0, 1)  # full inside, soft rim out to 1.5 radii
    out = img.astype(np.float32) * (1 - weight[..., None] * rng.uniform(0.5, 0.8))
    return out, d <= 1.0


def patch(img: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    s = int(rng.integers(16, 48)) * min(h, w) // 256 or 4
    y, x = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
    sy, sx = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
    out = img.astype(np.float32)
    out[y:y + s, x:x + s] = np.rot90(other[sy:sy + s, sx:sx + s]).astype(np.float32)
    mask = np.zeros((h, w), bool)
    mask[y:y + s, x:x + s] = True
    return out, mask


def uneven(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    sigma = rng.uniform(0.08, 0.15) * min(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma * sigma))
    gain = rng.uniform(0.25, 0.4) * rng.choice([-1, 1])
    out = img.astype(np.float32) * (1 + gain * g[..., None])
    return out, g > 0.5


def crack(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    p = np.array([rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w])
    heading = rng.uniform(0, 2 * np.pi)
    step = 0.5
    ys, xs = [], []
    for _ in range(int(rng.uniform(0.2, 0.7) * max(h, w) / step)):
        heading += rng.normal(0, 0.08)
        p = p + step * np.array([np.sin(heading), np.cos(heading)])
        if not (0 <= p[0] < h and 0 <= p[1] < w):
            break
        ys.append(p[0])
        xs.append(p[1])
    mask = _disc_mask(h, w, np.array(ys), np.array(xs), rng.uniform(0.5, 1.2))
    out = img.astype(np.float32)
    out[mask] *= rng.uniform(0.45, 0.8)
    return out, mask


def band(img: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Drawn for a band entering from the top; the edge is chosen by flipping the result.
    t = rng.integers(0, 2) == 1
    img_t, other_t = (img.transpose(1, 0, 2), other.transpose(1, 0, 2)) if t else (img, other)
    hh, ww = img_t.shape[:2]
    xx = np.arange(ww)
    depth = rng.uniform(0.15, 0.5) * hh + sum(
        rng.uniform(0.005, 0.02) * hh * np.sin(2 * np.pi * rng.uniform(0.5, 3) * xx / ww + rng.uniform(0, 2 * np.pi))
        for _ in range(3))
    yy = np.arange(hh)[:, None]
    soft = rng.uniform(1, 4)
    alpha = np.clip((depth[None, :] - yy) / soft + 0.5, 0, 1)
    zoom = rng.uniform(1.0, 2.0)
    sy = np.clip((rng.uniform(0, 1 - 1 / zoom) * hh + yy / zoom).astype(int), 0, hh - 1)
    sx = np.clip((rng.uniform(0, 1 - 1 / zoom) * ww + xx[None, :] / zoom).astype(int), 0, ww - 1)
    tex = other_t[sy, sx].astype(np.float32)
    m = tex.mean()
    tex = (tex - m) * rng.uniform(0.5, 1.6) + m * rng.uniform(0.8, 1.2)
    out = img_t.astype(np.float32) * (1 - alpha[..., None]) + tex * alpha[..., None]
    mask = alpha >= 0.5
    if rng.integers(0, 2) == 1:
        out, mask = out[::-1], mask[::-1]
    if t:
        out, mask = out.transpose(1, 0, 2), mask.T
    return np.ascontiguousarray(out), np.ascontiguousarray(mask)


def _other(images: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    return images[(i + 1 + int(rng.integers(0, len(images) - 1))) % len(images)] if len(images) > 1 else images[i]


def paint_one(images: np.ndarray, i: int, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Image i of uint8 [N, H, W, 3] -> (its defective copy, uint8; the defect's bool mask). A patch is cut
    from another image of the set (drawn only for patches, so that each kind uses the generator alike)."""
    img = images[i]
    if kind == "line":
        y, m = line(img, rng)
    elif kind == "spot":
        y, m = spot(img, rng)
    elif kind == "patch":
        y, m = patch(img, _other(images, i, rng), rng)
    elif kind == "uneven":
        y, m = uneven(img, rng)
    elif kind == "crack":
        y, m = crack(img, rng)
    elif kind == "band":
        y, m = band(img, _other(images, i, rng), rng)
    else:
        raise ValueError(f"unknown synthetic defect {kind!r}; choose from {TRAINING_KINDS}")
    return np.clip(np.rint(y), 0, 255).astype(np.uint8), m


def paint(images: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 [N, H, W, 3] normal images -> (defective copies, bool masks [N, H, W], kind of each)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    masks = np.zeros(images.shape[:3], bool)
    kinds = []
    for i in range(len(images)):
        kind = KINDS[i % len(KINDS)]
        out[i], masks[i] = paint_one(images, i, kind, rng)
        kinds.append(kind)
    return out, masks, kinds


def corrupt(images: np.ndarray, fraction: float, rng: np.random.Generator,
            kinds: tuple[str, ...] | list[str] = KINDS) -> np.ndarray:
    """A copy of a training batch in which each image, with probability `fraction`, carries one synthetic
    defect of a kind drawn from `kinds` (patches and bands take another image of the batch). For the
    denoising student."""
    out = images.copy()
    for i in np.flatnonzero(rng.random(len(images)) < fraction):
        out[i], _ = paint_one(images, i, kinds[int(rng.integers(0, len(kinds)))], rng)
    return out
