"""Where a tiled run's maps peak on KolektorSDD, and what the edge blobs do to the scores (models/studies/tiling.md,
probes T3 and T4).

For some of the run's own training images, its held-out normal images and the validation part's good and defective
images: each image's maps blended over its tiles at the inspection scale (as the service and export blend them),
every path normalised on the held-out images' maps as export does, summed with equal weights and blurred (sigma 4);
the score is the maximum. An image "has blobs" when more than 200 pixels of its leftmost 40 columns are above 245
(the saturated white patches at the commutator's edge). Printed per set: the score medians with and without blobs
and how many images peak in the left or right 40 columns. Held-out normals and the validation part only: choices.

    /usr/bin/python3 models/studies/tiling_peaks.py --run runs/kol-t4 \
        --data ../shared/datasets/kolektorsdd/kolektorsdd --split models/splits/kolektorsdd.json

About 5 minutes on 2 idle CPU cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from mixdistill import data  # noqa: E402
from mixdistill.anomaly_map import blur, kernel_size_for  # noqa: E402
from mixdistill.calibrate import path_normalization  # noqa: E402
from mixdistill.members import Members  # noqa: E402
from mixdistill.train import load_split  # noqa: E402

STRIP = 40  # columns at each side counted as the image's edge
SIGMA = 4.0


def has_blobs(sample: data.Sample) -> bool:
    return int((np.asarray(Image.open(sample.path).convert("L"))[:, :STRIP] > 245).sum()) > 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a run trained with --fit tile")
    ap.add_argument("--data", type=Path, required=True, help="the category folder (MVTec layout)")
    ap.add_argument("--split", type=Path, required=True, help="the declared validation part of its test split")
    ap.add_argument("--training-images", type=int, default=30, help="how many of the run's own training images to score")
    args = ap.parse_args()

    members = Members.load([args.run], "best.pt")
    cfg = members.cfg
    if cfg.fit != "tile":
        raise SystemExit(f"{args.run} was trained with --fit {cfg.fit}, not tile")
    fit_set, val_set = load_split(cfg)
    tested = data.validation_part(data.test_samples(args.data), args.split)
    sets = {"training": fit_set[:args.training_images], "held-out": val_set,
            "validation good": [s for s in tested if s.defect == "good"],
            "validation defective": [s for s in tested if s.defect != "good"]}
    cache = args.run.parent / ".cache"
    raw = {k: members.tiled_maps(data.prepare_scaled(s, cfg.width, cfg.height, cfg.tile["scale"], cache), 8) for k, s in sets.items()}
    norms = [path_normalization(np.concatenate([m.ravel() for m in per_image])) for per_image in raw["held-out"]]
    ksize = kernel_size_for(SIGMA)
    for name, samples in sets.items():
        per_path = raw[name]
        scores, peak_x, blobs = [], [], []
        for i, sample in enumerate(samples):
            fused = sum((per_path[p][i] - off) / scale for p, (off, scale) in enumerate(norms))
            fused = blur(torch.from_numpy(fused.astype(np.float32))[None], SIGMA, ksize)[0].numpy()
            scores.append(float(fused.max()))
            peak_x.append((int(np.unravel_index(np.argmax(fused), fused.shape)[1]), fused.shape[1]))
            blobs.append(has_blobs(sample))
        s, b = np.array(scores), np.array(blobs)
        left = sum(x < STRIP for x, _ in peak_x)
        right = sum(x >= w - STRIP for x, w in peak_x)
        med = lambda v: f"{np.median(v):.2f}" if v.size else "-"  # noqa: E731
        print(f"{name}: {len(samples)} images, {int(b.sum())} with blobs; score median {med(s)} "
              f"(with blobs {med(s[b])}, without {med(s[~b])}); peak in the left {STRIP} columns {left}, right {right}")


if __name__ == "__main__":
    main()
