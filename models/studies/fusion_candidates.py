"""Every fusion candidate of a run, and the image-threshold rules, scored on one part of a category's test split.

For issue 26: what `--select-fusion` could have picked (the candidates of fusion_select: all paths, each alone,
all but one), each scored on the real defects of a part of a declared split (validation to choose a rule, test to
report it), with the per-path normalisation of the bundle (held-out normal images). And, for the bundle's own
fusion, the F1 that each threshold rule of calibrate.py gives on that part, the rule seeing only the held-out
normal images' scores, and the pixel F1 of each pixel-threshold rule (a rule on each held-out image's maximum,
or a quantile of all held-out normal pixels). The scores themselves go into the JSON, for threshold_rules.py.
Figures by the pipeline's reference math (as export's selection computes them); `npm run
eval` remains the measure of a shipped bundle.

    /usr/bin/python3 models/studies/fusion_candidates.py --bundle runs/b-transistor-painted --run runs/r18-transistor \
        --data ../shared/datasets/mvtec_transistor/transistor --split models/splits/transistor.json --part validation \
        --json out/studies/transistor-validation.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from bundle_runs import BundleRuns, add_arguments  # noqa: E402
from mixdistill import calibrate, data, fusion_select  # noqa: E402
from mixdistill.anomaly_map import fuse, reduce_score  # noqa: E402
from mixdistill.train import load_split  # noqa: E402


def part_samples(root: Path, split: Path, part: str) -> list:
    samples = data.test_samples(root)
    chosen = {(s.defect, s.path.name) for s in data.validation_part(samples, split)}
    return [s for s in samples if ((s.defect, s.path.name) in chosen) == (part == "validation")]


def f1_at(normal: np.ndarray, defective: np.ndarray, threshold: float) -> float:
    """Image F1 with scores above `threshold` flagged, defective = positive."""
    tp = float((defective > threshold).sum())
    fp = float((normal > threshold).sum())
    return 2 * tp / max(tp + fp + defective.size, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--part", choices=["validation", "test"], required=True)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    b = BundleRuns.load(args)
    members, cfg = b.members, b.members.cfg
    names = b.names
    norms = [(b.paths[n]["offset"], b.paths[n]["scale"]) for n in names]
    sigma, ksize, reduction = b.fusion["sigma"], b.fusion["kernelSize"], b.fusion["reduction"]
    cache = members.dirs[0].parent / ".cache"

    samples = part_samples(args.data, args.split, args.part)
    good = [s for s in samples if s.defect == "good"]
    defective = [s for s in samples if s.defect != "good"]
    maps = lambda ss: [torch.from_numpy(m) for m in members.collect_maps(data.prepare(ss, cfg.width, cfg.height, cfg.fit, cache), 8)]
    g_maps, d_maps = maps(good), maps(defective)
    masks = data.prepare_masks(defective, cfg.width, cfg.height, cfg.fit)
    rows = fusion_select.score(g_maps, d_maps, masks, norms, fusion_select.candidates(names), sigma, ksize, reduction, real=True)
    bundle_weights = [b.paths[n]["weight"] for n in names]
    for r in rows:
        r["bundle"] = np.allclose(np.asarray(r["weights"]) * max(bundle_weights), np.asarray(bundle_weights) * max(r["weights"]))
    if not any(r["bundle"] for r in rows):  # a fusion that is no candidate (e.g. weights set by hand)
        rows += fusion_select.score(g_maps, d_maps, masks, norms, [("the bundle's fusion", bundle_weights)], sigma, ksize, reduction, real=True)
        rows[-1]["bundle"] = True

    # Threshold rules on the bundle's fusion, each from the held-out normal images' scores alone.
    _, val_set = load_split(cfg)
    held = maps(val_set)
    fmaps = lambda ms: fuse(ms, [o for o, _ in norms], [s for _, s in norms], bundle_weights, sigma, ksize)
    held_f, good_f, defect_f = fmaps(held), fmaps(g_maps), fmaps(d_maps)
    normal_scores, good_scores, defect_scores = (reduce_score(f, reduction).numpy() for f in (held_f, good_f, defect_f))
    rules = {name: float(rule(normal_scores)) for name, rule in calibrate.RULES.items()}
    thresholds = {name: {"threshold": t, "f1": f1_at(good_scores, defect_scores, t),
                         "fpr": float((good_scores > t).mean()), "tpr": float((defect_scores > t).mean())} for name, t in rules.items()}
    f1max = calibrate.f1_optimal(good_scores, defect_scores)[1]
    # Pixel thresholds (masks and regions), each from the held-out normal maps alone; pixel F1 over every pixel of the part.
    held_px = held_f.numpy().ravel()
    per_image_max = held_f.flatten(1).max(dim=1).values.numpy()
    part_px = np.r_[good_f.numpy().ravel(), defect_f.numpy().ravel()]
    part_lab = np.r_[np.zeros(good_f.numel(), bool), masks.ravel()]
    order = np.argsort(-part_px, kind="stable")
    tp_c = np.cumsum(part_lab[order])
    fp_c = np.cumsum(~part_lab[order])
    n_pos = int(part_lab.sum())
    px_f1 = 2 * tp_c / (tp_c + fp_c + n_pos)
    pixel_f1max = float(px_f1.max())

    def pixel_f1(t: float) -> float:
        k = int((part_px > t).sum())
        return float(px_f1[k - 1]) if k else 0.0

    pixel_rules = {f"image rule {name} on each image's maximum": float(rule(per_image_max)) for name, rule in calibrate.RULES.items()}
    pixel_rules.update({f"normal pixels p{q}": float(np.percentile(held_px, q)) for q in (99, 99.9, 99.99)})
    pixel_thresholds = {name: {"threshold": t, "f1": pixel_f1(t), "fpr": float((part_px[~part_lab] > t).mean()),
                               "tpr": float((part_px[part_lab] > t).mean())} for name, t in pixel_rules.items()}
    out = {"bundle": str(args.bundle), "runs": [str(r) for r in args.run], "data": str(args.data), "split": str(args.split), "part": args.part,
           "images": {"good": len(good), "defective": len(defective), "heldOutNormals": len(val_set)},
           "candidates": rows, "thresholds": thresholds, "f1Max": f1max, "pixelThresholds": pixel_thresholds, "pixelF1Max": pixel_f1max,
           "normalScores": sorted(map(float, normal_scores)), "goodScores": sorted(map(float, good_scores)), "defectScores": sorted(map(float, defect_scores))}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    for r in sorted(rows, key=lambda r: -r["mean"]):
        print(f"{'*' if r['bundle'] else ' '} {r['name']:40s} img {r['imageAUROC']:.3f} px {r['pixelAUROC']:.3f} pro {r['AUPRO']:.3f} mean {r['mean']:.3f}")
    for k, v in thresholds.items():
        print(f"  threshold {k:28s} {v['threshold']:.3f}  F1 {v['f1']:.3f} (F1-max {f1max:.3f})  FPR {v['fpr']:.2f} TPR {v['tpr']:.2f}")
    for k, v in pixel_thresholds.items():
        print(f"  pixel threshold {k:55s} {v['threshold']:.3f}  F1 {v['f1']:.3f} (F1-max {pixel_f1max:.3f})  FPR {v['fpr']:.4f} TPR {v['tpr']:.2f}")


if __name__ == "__main__":
    main()
