"""Tiling reference (mixdistill/tiles.py) and the bundle contract's rules for `input.fit: tile`."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from mixdistill.bundle import validate_manifest
from mixdistill.tiles import blend_tiles, grid_crops, scaled_size, tile_grid, tile_starts, tile_weights

TINY = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "bundles" / "tiny" / "manifest.json"


def test_tile_starts_cover_evenly_with_the_overlap():
    assert tile_starts(100, 64, 16) == [0, 36]
    assert tile_starts(64, 64, 8) == [0] and tile_starts(30, 64, 8) == [0]
    for n, t, o in [(1250, 256, 32), (500, 256, 32), (999, 100, 99)]:
        s = tile_starts(n, t, o)
        assert s[0] == 0 and s[-1] + t == n
        assert all(a + t - b >= o for a, b in zip(s, s[1:]))
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 64, 64)
    assert tile_grid(100, 70, 64, 64, 16) == [(0, 0), (36, 0), (0, 6), (36, 6)]
    assert scaled_size(500, 1251, 0.5) == (250, 626)  # halves round up, as Math.round


def test_training_crops_follow_the_grid_and_reach_the_border_as_often_as_it_does():
    # 500 wide, tiles of 256, overlap 32: the grid starts at 0, 122, 244 (step 122, jitter up to 61 either way).
    w, h, t = 500, 300, 256
    pixels = np.broadcast_to(np.arange(w)[None, :, None], (h, w, 3))  # a pixel's value is its column
    rng = np.random.default_rng(0)
    lefts = np.array([grid_crops(pixels, w, h, t, t, 32, rng)[:, 0, 0, 0] for _ in range(2000)])
    assert lefts.shape == (2000, 2 * 3)  # one crop per grid tile (2 rows x 3 columns)
    assert lefts.min() == 0 and lefts.max() == w - t  # clamped inside the image
    first = lefts[:, 0]
    # The first column sits on the border in (61 + 1) / 123 of draws; uniform offsets would give 1 / 245.
    assert abs((first == 0).mean() - 62 / 123) < 0.04
    assert abs(lefts[:, 1].mean() - 122) < 3 and len(np.unique(lefts[:, 1])) == 123
    # A side no longer than a tile gives offset 0, as the grid does.
    small = np.zeros((256, 256, 3), np.uint8)  # mirror-extended to a tile, the image its top 200 rows
    assert grid_crops(small, 256, 200, 256, 256, 32, rng).shape == (1, 256, 256, 3)


def test_blending_cut_tiles_gives_the_map_back_and_feather_weights_ramp():
    rng = np.random.default_rng(0)
    whole = rng.random((13, 17)).astype(np.float32)
    tiles = tile_grid(17, 13, 10, 8, 3)
    cut = np.stack([whole[y:y + 8, x:x + 10] for x, y in tiles])
    for blend in ("mean", "feather"):
        np.testing.assert_allclose(blend_tiles(cut, tiles, 17, 13, tile_weights(10, 8, 3, blend)), whole, atol=1e-6)
    w = tile_weights(10, 8, 3, "feather")
    assert w[0, 0] == pytest.approx(1 / 16) and w[4, 5] == 1 and w.min() > 0
    with pytest.raises(ValueError, match="unknown blend"):
        tile_weights(10, 8, 3, "median")


def test_the_contract_requires_tile_settings_with_the_tile_fit_and_only_then():
    m = json.loads(TINY.read_text())
    validate_manifest(m)
    tiled = copy.deepcopy(m)
    tiled["input"].update(fit="tile", tile={"scale": 1, "overlap": 16, "blend": "feather"})
    validate_manifest(tiled)
    bare = copy.deepcopy(tiled)
    del bare["input"]["tile"]
    with pytest.raises(ValueError, match="input.tile is required"):
        validate_manifest(bare)
    stray = copy.deepcopy(m)
    stray["input"]["tile"] = {"scale": 1, "overlap": 16, "blend": "mean"}
    with pytest.raises(ValueError, match="refused with any other fit"):
        validate_manifest(stray)
    wide = copy.deepcopy(tiled)
    wide["input"]["tile"]["overlap"] = 64
    with pytest.raises(ValueError, match="overlap 64 must be below"):
        validate_manifest(wide)
