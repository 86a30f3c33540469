"""PyTorch reference timing of a bundle's run(s) (teacher + student + maps + fusion + score), eager and
TorchScript-frozen, for the service's benchmark (npm run bench). Prints one JSON object.

    python3 -m mixdistill.bench_torch --run runs/x --checkpoint best.pt --bundle models/x --batches 1,8 --seconds 5
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from .anomaly_map import fuse, path_maps, reduce_score
from .members import Members


class Scorer(torch.nn.Module):
    def __init__(self, members: Members, manifest: dict):
        super().__init__()
        self.teacher, self.student = members.teacher_module(), members.student_module()
        names = [o["name"] for o in manifest["student"]["outputs"]]
        f = manifest["fusion"]
        chosen = [p for p in f["paths"] if p["weight"] != 0]
        self.index = [names.index(p["student"]) for p in chosen]
        self.pairs = members.target_index()
        self.offsets, self.scales, self.weights = [p["offset"] for p in chosen], [p["scale"] for p in chosen], [p["weight"] for p in chosen]
        self.sigma, self.ksize, self.reduction = f["sigma"], f["kernelSize"], f["reduction"]
        self.h, self.w = manifest["input"]["height"], manifest["input"]["width"]

    def forward(self, x: torch.Tensor):
        feats = self.teacher(x)
        maps = path_maps([feats[i] for i in self.pairs], self.student(x), self.h, self.w)
        fused = fuse([maps[i] for i in self.index], self.offsets, self.scales, self.weights, self.sigma, self.ksize)
        return fused, reduce_score(fused, self.reduction)


def timeit(fn, x: torch.Tensor, seconds: float) -> dict:
    with torch.no_grad():
        fn(x)
        fn(x)
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 3:
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    n = x.shape[0]
    return {"batch": n, "runs": len(times), "imagesPerSecond": n * len(times) / sum(times), "p50Ms": 1000 * times[len(times) // 2]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True, action="append", type=Path, help="the run(s) the bundle was exported from, in export order")
    p.add_argument("--checkpoint", default="best.pt")
    p.add_argument("--bundle", required=True)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--seconds", type=float, default=5)
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    manifest = json.loads((Path(a.bundle) / "manifest.json").read_text())
    scorer = Scorer(Members.load(a.run, a.checkpoint), manifest).eval()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "eager": [], "torchscript": []}
    for b in [int(v) for v in a.batches.split(",")]:
        x = torch.rand(b, 3, scorer.h, scorer.w)
        out["eager"].append(timeit(scorer, x, a.seconds))
        with torch.no_grad():
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(scorer, x).eval()))
        out["torchscript"].append(timeit(frozen, x, a.seconds))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
