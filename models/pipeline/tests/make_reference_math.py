"""Writes test/fixtures/reference-math.json: small random inputs and what PyTorch computes for them.
The service's TypeScript math (src/maps) is tested against these values.

    PYTHONPATH=models/pipeline /usr/bin/python3 models/pipeline/tests/make_reference_math.py
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from mixdistill.anomaly_map import blur, fuse, gaussian_kernel1d, kernel_size_for, reduce_score
from mixdistill.loss import cosine_distance
from mixdistill.tiles import BLENDS, blend_tiles, tile_grid, tile_starts, tile_weights

torch.manual_seed(0)
out = {}
t, s = torch.randn(1, 5, 3, 4), torch.randn(1, 5, 3, 4)
s[0, :, 0, 0] = 0  # a zero student vector exercises the epsilon rule
out["cosine"] = {"c": 5, "h": 3, "w": 4, "t": t.flatten().tolist(), "s": s.flatten().tolist(), "expected": cosine_distance(t, s).flatten().tolist()}
src = torch.randn(1, 1, 7, 5)
out["resize"] = [{"h": 7, "w": 5, "H": H, "W": W, "src": src.flatten().tolist(),
                  "expected": F.interpolate(src, size=(H, W), mode="bilinear", align_corners=False).flatten().tolist()}
                 for H, W in [(16, 16), (30, 11), (7, 5), (3, 2)]]
m = torch.randn(1, 12, 9)
out["blur"] = {"h": 12, "w": 9, "sigma": 1.3, "size": kernel_size_for(1.3) - 4, "src": m.flatten().tolist(),
               "expected": blur(m, 1.3, kernel_size_for(1.3) - 4).flatten().tolist(), "kernel": gaussian_kernel1d(1.3, 9).tolist()}
maps = [torch.rand(1, 6, 6), torch.rand(1, 6, 6)]
fused = fuse(maps, [0.1, 0.2], [0.5, 2.0], [1.0, 0.5], 0.0, 1)
out["fuse"] = {"maps": [x.flatten().tolist() for x in maps], "offsets": [0.1, 0.2], "scales": [0.5, 2.0], "weights": [1.0, 0.5],
               "expected": fused.flatten().tolist(), "max": float(reduce_score(fused, {"kind": "max"})),
               "top5": float(reduce_score(fused, {"kind": "topk-mean", "k": 5}))}
tile_maps = torch.rand(4, 8, 10).numpy()
tiles = tile_grid(17, 13, 10, 8, 3)
out["tiles"] = {"width": 17, "height": 13, "tileW": 10, "tileH": 8, "overlap": 3, "tiles": [list(t) for t in tiles],
                "starts": {f"{n},{t},{o}": tile_starts(n, t, o) for n, t, o in [(100, 64, 16), (250, 64, 16), (1250, 256, 32), (500, 256, 32), (64, 64, 8), (30, 64, 8), (257, 256, 0)]},
                "maps": [m.flatten().tolist() for m in tile_maps],
                "blended": {b: blend_tiles(tile_maps, tiles, 17, 13, tile_weights(10, 8, 3, b)).flatten().tolist() for b in BLENDS},
                "feather": tile_weights(10, 8, 3, "feather").flatten().tolist()}
path = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "reference-math.json"
path.write_text(json.dumps(out) + "\n")
print(path)
