"""Tiling reference (mixdistill/tiles.py) and the bundle contract's rules for `input.fit: tile`."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from mixdistill.bundle import validate_manifest
from mixdistill.tiles import blend_tiles, scaled_size, tile_grid, tile_starts, tile_weights

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
