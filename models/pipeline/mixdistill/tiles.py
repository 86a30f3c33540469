"""Tiling for bundles with `input.fit: tile`: the grid, the blend weights and the blend of tile maps into one map.

The service does the same in src/maps/tiles.ts (tested against values this module computes); calibration and
parity of a tiled bundle run on maps blended here.
"""
from __future__ import annotations

import math

import numpy as np

BLENDS = ("mean", "feather")


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The image's (width, height) at the inspection scale; JavaScript's Math.round (half up) for equal sizes."""
    return max(1, math.floor(width * scale + 0.5)), max(1, math.floor(height * scale + 0.5))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Fewest tiles covering [0, length) with at least `overlap` shared, spread evenly from 0 to length - tile."""
    if not (tile > 0 and 0 <= overlap < tile):
        raise ValueError(f"overlap {overlap} must be in [0, {tile})")
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [math.floor(i * (length - tile) / (n - 1) + 0.5) for i in range(n)]


def tile_grid(width: int, height: int, tile_w: int, tile_h: int, overlap: int) -> list[tuple[int, int]]:
    """Row-major (left, top) of the tiles over a width x height image."""
    xs, ys = tile_starts(width, tile_w, overlap), tile_starts(height, tile_h, overlap)
    return [(x, y) for y in ys for x in xs]


def tile_weights(tile_w: int, tile_h: int, overlap: int, blend: str) -> np.ndarray:
    """[tile_h, tile_w] blend weights: ones (mean) or a linear ramp over `overlap` pixels from each edge (feather)."""
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}: one of {', '.join(BLENDS)}")
    if blend == "mean" or overlap == 0:
        return np.ones((tile_h, tile_w), np.float32)

    def ramp(n: int) -> np.ndarray:
        i = np.arange(n)
        return np.minimum(1.0, (np.minimum(i, n - 1 - i) + 1) / (overlap + 1))

    return np.outer(ramp(tile_h), ramp(tile_w)).astype(np.float32)


def blend_tiles(maps: np.ndarray, tiles: list[tuple[int, int]], width: int, height: int, weights: np.ndarray) -> np.ndarray:
    """[n, tile_h, tile_w] tile maps -> [height, width]: the weighted mean of the tiles covering each pixel."""
    th, tw = weights.shape
    acc = np.zeros((height, width), np.float64)
    total = np.zeros((height, width), np.float64)
    for m, (left, top) in zip(maps, tiles):
        rows, cols = min(th, height - top), min(tw, width - left)
        acc[top:top + rows, left:left + cols] += m[:rows, :cols].astype(np.float64) * weights[:rows, :cols]
        total[top:top + rows, left:left + cols] += weights[:rows, :cols]
    return (acc / total).astype(np.float32)


def cut(pixels: np.ndarray, width: int, height: int, tile_w: int, tile_h: int, overlap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The grid's tiles of an image at the inspection scale (`pixels` mirror-extended to at least one tile, the
    image its top-left width x height), [n, tile_h, tile_w, 3], and the grid; as the service cuts them."""
    grid = tile_grid(width, height, tile_w, tile_h, overlap)
    return np.stack([pixels[y:y + tile_h, x:x + tile_w] for x, y in grid]), grid


def random_crops(pixels: np.ndarray, width: int, height: int, tile_w: int, tile_h: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n tiles at uniformly random places of the image (training: the texture at the scale it is inspected at, at
    every offset rather than only the grid's), [n, tile_h, tile_w, 3]. A side shorter than a tile gives offset 0,
    as the grid does: the mirror extension is seen where the service sees it."""
    xs = rng.integers(0, max(0, width - tile_w) + 1, n)
    ys = rng.integers(0, max(0, height - tile_h) + 1, n)
    return np.stack([pixels[y:y + tile_h, x:x + tile_w] for x, y in zip(xs, ys)])


def nan_stack(maps: list[np.ndarray], height: int | None = None, width: int | None = None, fill: float | bool = np.nan) -> np.ndarray:
    """Per-image maps of different sizes as one [N, height, width] array (default: the largest size), `fill`
    outside each image (NaN for maps, False for masks): the calibration and fusion choice then read only each
    image's own pixels (every consumer is NaN-aware)."""
    if not maps:
        return np.full((0, height or 0, width or 0), fill, np.float32)
    h = height or max(m.shape[0] for m in maps)
    w = width or max(m.shape[1] for m in maps)
    out = np.full((len(maps), h, w), fill, np.asarray(maps[0]).dtype)
    for i, m in enumerate(maps):
        out[i, :m.shape[0], :m.shape[1]] = m
    return out
