"""python3 -m mixdistill {train,export,parity,recover,teacher-taps,synthetic,split} ... (see --help of each)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .calibrate import RULES
from .recipes import RECIPES, resolve


def _csv(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


def _kv_floats(v: str) -> dict[str, float]:
    out = {}
    for item in _csv(v):
        k, _, val = item.partition("=")
        out[k] = float(val)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mixdistill", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a mixed-distilled student on normal images")
    t.add_argument("--data", required=True, help="MVTec AD layout root (or category folder)")
    t.add_argument("--category", default=None)
    t.add_argument("--out", required=True, help="run folder (checkpoints, log, config)")
    t.add_argument("--recipe", default="new-category", choices=list(RECIPES),
                   help="defaults for the options below that the command leaves out (recipes.py): new-category (the default, chosen "
                        "on the development suite), resnet18, mobilenet, or none (each option's bare default)")
    t.add_argument("--teacher", default=None, help="nsfwjs:<model> or torchvision:<arch>[@<weights>] (.pth state dict, folder of folded .npy, "
                   "int8 TorchScript mobilenet_v2; without @, looked up in $MIXDISTILL_WEIGHTS, ../shared/weights and torch's hub cache)")
    t.add_argument("--taps", type=_csv, default=None, help="comma list of teacher layers, shallow to deep")
    t.add_argument("--paths", type=_csv, default=["direct", "skip", "symmetric"], help="comma list of direct,skip,symmetric")
    t.add_argument("--path-weights", type=_kv_floats, default={}, help="loss weight per path kind, e.g. skip=0.5")
    t.add_argument("--standardize-teacher", action="store_true",
                   help="standardise each teacher tap per channel with statistics of the training images (folded into teacher.onnx)")
    t.add_argument("--student", choices=["forward", "reverse"], default="forward",
                   help="forward: STPM-style student that sees the image; reverse: RD4AD-style decoder from a bottleneck of the teacher's taps")
    t.add_argument("--widths", type=lambda v: [int(x) for x in _csv(v)], default=None, help="student stage widths")
    t.add_argument("--blocks", type=int, default=2, help="basic blocks per student stage")
    t.add_argument("--size", type=int, default=256, help="square input size")
    t.add_argument("--fit", choices=["stretch", "center-crop", "letterbox", "tile"], default="stretch",
                   help="how an image meets the square input; tile: cut into --size tiles at --tile-scale (the bundle's input.tile)")
    t.add_argument("--tile-scale", type=float, default=1.0, help="with --fit tile: inspection scale (1: native pixels)")
    t.add_argument("--tile-overlap", type=int, default=32, help="with --fit tile: pixels neighbouring tiles share at least")
    t.add_argument("--tile-blend", choices=["mean", "feather"], default="feather", help="with --fit tile: how overlapping tiles' maps combine")
    t.add_argument("--normalize-intensity", type=lambda v: dict(zip(("mean", "std"), map(float, v.split(",")))), default=None,
                   metavar="MEAN,STD", help="remap each image's pixels to this mean and std (0..255) before the teacher")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--min-steps", type=int, default=None, help="at least this many optimiser steps (more epochs where there are few training images)")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--no-augment", action="store_true", help="disable random flips")
    t.add_argument("--denoise", type=float, default=None,
                   help="fraction of training images shown to the student with a synthetic defect (teacher sees them clean)")
    t.add_argument("--denoise-kinds", type=_csv, default=None,
                   help="synthetic defects to draw from for --denoise: line,spot,patch,uneven (also validation's) and crack,band (training only)")
    t.add_argument("--hard-fraction", type=float, default=None,
                   help="train each path on only this fraction of locations, the worst-fitted (EfficientAD's hard feature loss); 1: all")
    t.add_argument("--val-fraction", type=float, default=0.15)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--split-seed", type=int, default=None,
                   help="seed of the validation split (default: --seed); runs meant for one ensemble must share it")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--cache-mib", type=float, default=4096,
                   help="memory the frozen teacher's features of the training images (4 flips, float16) may take; above it they are recomputed every step")
    t.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a checkpoint")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the student trains and the teacher's cached features live; auto: CUDA if this torch has it (Debian's has not)")
    t.add_argument("--amp", action="store_true", help="mixed precision (float16 autocast, loss scaling); CUDA only")

    e = sub.add_parser("export", help="export a run to a model bundle (teacher.onnx, student.onnx, manifest.json)")
    e.add_argument("--run", required=True, action="append", type=Path,
                   help="run folder written by train; repeat it to serve several runs as one ensemble bundle (their maps fused)")
    e.add_argument("--out", required=True, help="bundle folder, e.g. models/my-model")
    e.add_argument("--version", default="1.0.0")
    e.add_argument("--checkpoint", default="best.pt", help="best.pt or last.pt")
    e.add_argument("--sigma", type=float, default=4.0)
    e.add_argument("--reduction", default="max", help="max or topk-mean:K")
    e.add_argument("--fusion-weights", type=_kv_floats, default={}, help="weight per student output or path kind; default 1")
    e.add_argument("--select-fusion", action="store_true",
                   help="score the fusion candidates (all paths, one alone, all but one) on validation data: the real defects of --defects "
                        "(with --defects-split, its validation part) when given, else synthetic defects painted on the held-out normal images; "
                        "--fusion-choice says what is then chosen")
    e.add_argument("--fusion-choice", default=None, choices=["all-paths", "guarded", "best"],
                   help="how --select-fusion picks from its table: best candidate; guarded (all paths unless a candidate wins clearly); "
                        "all-paths (table reported only). Default: guarded on real defects, all-paths on painted ones")
    e.add_argument("--member-weights", type=lambda v: [float(x) for x in _csv(v)], default=None,
                   help="an ensemble's weight per --run, in order (default: equal), e.g. 1,0.5,0.5 for two seeds of the second recipe")
    e.add_argument("--threshold-rule", default="gumbel-0.8", choices=list(RULES),
                   help="how the normal validation scores alone give the image threshold (models/studies/new-category-defaults.md)")
    e.add_argument("--pixel-rule", default="normal-p99.9", choices=["normal-p99.9", "normal-p99", "normal-p99.99", "image-rule"],
                   help="the pixel threshold (masks, regions): a percentile of the normal validation images' map values, or the "
                        "image rule applied to each normal image's maximum")
    e.add_argument("--margin", type=float, default=0.1, help="for --threshold-rule p99+margin: threshold = p99 + margin * (p99 - p50) of normal scores")
    e.add_argument("--defects", type=Path, default=None,
                   help="MVTec-layout folder with defective validation images (test/<defect>/, ground_truth/<defect>/): F1-optimal thresholds instead of normal-quantile ones; never the set you evaluate on")
    e.add_argument("--defects-split", type=Path, default=None,
                   help="a declared split of --defects' test images (e.g. ../shared/datasets/mtd/split_test.json): only its validation part is used")
    e.add_argument("--description", default="")
    e.add_argument("--card-notes", default=None, help="Markdown file whose text goes into the model card's Notes section (why this model, what a decision looked at)")

    q = sub.add_parser("parity", help="compare the service's scoring of an exported bundle with PyTorch")
    q.add_argument("--bundle", required=True)
    q.add_argument("--run", required=True, action="append", type=Path, help="the run folder(s) the bundle was exported from, in export order")
    q.add_argument("--checkpoint", default="best.pt")
    q.add_argument("--images", nargs="+", required=True, help="image files (or folders: every image in them)")
    q.add_argument("--tolerance", type=float, default=1e-4)

    r = sub.add_parser("recover", help="rebuild a run folder from an exported bundle (one member of an ensemble), to export it again with new runs")
    r.add_argument("--bundle", required=True, type=Path)
    r.add_argument("--member", default=None, help="the member's run name (provenance.members[].run); required for an ensemble")
    r.add_argument("--out", required=True, type=Path, help="run folder to write (config.json, best.pt, log.jsonl)")

    tt = sub.add_parser("teacher-taps", help="a teacher's taps on a raw float32 input (and the teacher as ONNX): for parity tests")
    tt.add_argument("--teacher", required=True)
    tt.add_argument("--taps", type=_csv, default=None)
    tt.add_argument("--height", type=int, required=True)
    tt.add_argument("--width", type=int, required=True)
    tt.add_argument("--input", required=True, type=Path, help="float32 NCHW [1,3,H,W], scaled as the teacher expects")
    tt.add_argument("--out", required=True, type=Path, help="folder for <tap>.f32")
    tt.add_argument("--onnx", type=Path, default=None, help="also export the teacher here, as export does")

    s = sub.add_parser("synthetic", help="write a small synthetic MVTec-layout data set (tests and fixtures)")
    s.add_argument("--out", required=True)
    s.add_argument("--size", type=int, default=96)
    s.add_argument("--seed", type=int, default=0)

    sp = sub.add_parser("split", help="declare a validation part of a category's test split (the rule of ../shared/datasets/mtd/split_test.json)")
    sp.add_argument("--data", required=True, type=Path, help="the category folder (with test/<folder>/ images)")
    sp.add_argument("--out", required=True, type=Path, help="split file to write, e.g. models/splits/<category>.json")
    sp.add_argument("--fraction", type=float, default=0.3)
    sp.add_argument("--seed", type=int, default=20261202)

    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)

    if args.cmd == "train":
        from .train import TrainConfig, train

        tile = {"scale": args.tile_scale, "overlap": args.tile_overlap, "blend": args.tile_blend} if args.fit == "tile" else None
        r = resolve(args.recipe, {k: getattr(args, k) for k in ("teacher", "taps", "widths", "epochs", "min_steps", "denoise", "denoise_kinds", "hard_fraction")})
        cfg = TrainConfig(data=args.data, category=args.category, out=args.out, teacher=r["teacher"], taps=r["taps"],
                          paths=args.paths, path_weights=args.path_weights, standardize_teacher=args.standardize_teacher, student=args.student, widths=r["widths"], blocks=args.blocks,
                          width=args.size, height=args.size, fit=args.fit, tile=tile, normalize_intensity=args.normalize_intensity, epochs=r["epochs"], min_steps=r["min_steps"], batch=args.batch, lr=args.lr,
                          augment=not args.no_augment, denoise=r["denoise"], denoise_kinds=r["denoise_kinds"], hard_fraction=r["hard_fraction"], val_fraction=args.val_fraction, seed=args.seed, split_seed=args.split_seed, threads=args.threads)
        train(cfg, resume=not args.no_resume, cache_mib=args.cache_mib, device=args.device, amp=args.amp)
        return 0
    if args.cmd == "export":
        from .export import ExportOptions, export

        export(ExportOptions(runs=args.run, out=Path(args.out), version=args.version, checkpoint=args.checkpoint,
                             sigma=args.sigma, reduction=args.reduction, fusion_weights=args.fusion_weights,
                             margin=args.margin, threshold_rule=args.threshold_rule, pixel_rule=args.pixel_rule, fusion_choice=args.fusion_choice, description=args.description, defects=args.defects, defects_split=args.defects_split, select_fusion=args.select_fusion,
                             member_weights=args.member_weights,
                             card_notes=Path(args.card_notes).read_text() if args.card_notes else ""))
        return 0
    if args.cmd == "teacher-taps":
        from .teacher_taps import teacher_taps

        print(",".join(teacher_taps(args.teacher, args.taps, args.height, args.width, args.input, args.out, args.onnx)))
        return 0
    if args.cmd == "parity":
        import json

        from .data import IMAGE_SUFFIXES
        from .parity import parity

        files = []
        for item in map(Path, args.images):
            files += sorted(f for f in item.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if item.is_dir() else [item]
        result = parity(Path(args.bundle), args.run, args.checkpoint, files, args.tolerance)
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    if args.cmd == "recover":
        from .recover import recover

        print(recover(args.bundle, args.member, args.out))
        return 0
    if args.cmd == "split":
        from .split import write as write_split

        print(write_split(args.data, args.out, args.fraction, args.seed))
        return 0
    if args.cmd == "synthetic":
        from .synthetic import write

        print(write(Path(args.out), size=args.size, seed=args.seed))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
