"""Runs trained with different fits of non-square images, compared on the test split at each image's own size.

Each run is scored on its own (not as an ensemble) with one of its paths' maps, smoothed at the model's resolution
as the service does (sigma 4), then the window of the input that holds the image (all of it under `stretch`, the
centred window under `letterbox`) is resized bilinearly to the image's original size and compared with the
original mask, so that fits which place an image differently are judged on the same pixels. Score: the map's
maximum over that window. Figures: image AUROC / pixel AUROC / AUPRO (FPR <= 0.3), overall and AUPRO per defect
(each kind's regions against every normal pixel).
A look at the test set (declared in the card that quotes it).

    /usr/bin/python3 models/studies/fit_compare.py --data ../shared/datasets/mtd/magnetic_tile \
        --run runs/hard200 --run runs/mn-lb --path direct.block_12_add

About 2 minutes a run on 2 idle CPU cores (6 beside a training run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from bundle_runs import output_names, sampled_pixel_auroc  # noqa: E402
from heatmap_choices import KINDS, regions  # noqa: E402
from mixdistill import data, fusion_select  # noqa: E402
from mixdistill.anomaly_map import blur, kernel_size_for  # noqa: E402
from mixdistill.members import Members  # noqa: E402


def window(width: int, height: int, fit: str, model_w: int, model_h: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the image inside the model's input, as src/image/preprocess.ts places it."""
    if fit == "stretch":
        return 0, 0, model_w, model_h
    if fit != "letterbox":
        raise ValueError(f"fit {fit} is not compared here")
    return data.letterbox_window(width, height, model_w, model_h)


def on_original(run: Path, root: Path, path: str, sigma: float) -> tuple[list[np.ndarray], np.ndarray, str]:
    """Per test image, the path's smoothed map on the original pixels; the images' scores; the run's fit."""
    members = Members.load([run], "best.pt")
    cfg = members.cfg
    samples = data.test_samples(root)
    images = data.prepare(samples, cfg.width, cfg.height, cfg.fit, run.parent / ".cache")
    maps = members.collect_maps(images, 16)[output_names(members).index(path)]
    smooth = blur(torch.from_numpy(np.asarray(maps, np.float32)), sigma, kernel_size_for(sigma))
    out, scores = [], np.zeros(len(samples))
    for i, s in enumerate(samples):
        w, h = Image.open(s.path).size
        left, top, cw, ch = window(w, h, cfg.fit, cfg.width, cfg.height)
        crop = smooth[i, top:top + ch, left:left + cw]
        scores[i] = float(crop.max())
        out.append(F.interpolate(crop[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy())
    return out, scores, cfg.fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="MVTec AD layout category folder")
    ap.add_argument("--run", type=Path, action="append", required=True)
    ap.add_argument("--path", default="direct.block_12_add", help="student output whose map is compared")
    ap.add_argument("--sigma", type=float, default=4.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    samples = data.test_samples(args.data)
    defect = np.array([s.defect for s in samples])
    masks = [np.asarray(Image.open(s.mask).convert("L")) > 127 if s.mask else np.zeros(Image.open(s.path).size[::-1], bool)
             for s in samples]
    for run in args.run:
        with torch.no_grad():
            maps, scores, fit = on_original(run, args.data, args.path, args.sigma)
        normal = np.concatenate([m[~k] for m, k in zip(maps, masks)])
        per_image = [regions(m[None], k[None]) for m, k in zip(maps, masks)]
        region_values = [v for r in per_image for v in r]
        region_defect = [d for r, d in zip(per_image, defect) for _ in r]
        positive = np.concatenate([m[k] for m, k in zip(maps, masks)])
        image = fusion_select.auroc(scores, defect != "good")
        pixel = sampled_pixel_auroc(normal, positive, 2_000_000)
        pro = fusion_select.aupro(normal, region_values, steps=400)
        per = " ".join(f"{kind} {fusion_select.aupro(normal, [v for v, d in zip(region_values, region_defect) if d == kind], steps=400):.3f}"
                       for kind in KINDS)
        print(f"{run.name} ({fit}, {args.path}): image AUROC {image:.4f} pixel AUROC {pixel:.4f} "
              f"AUPRO {pro:.4f} (AUPRO per defect: {per})", flush=True)


if __name__ == "__main__":
    main()
