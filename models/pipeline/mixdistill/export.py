"""Export a training run (or several, as an ensemble) to a model bundle: teacher.onnx, student.onnx, manifest.json,
MODEL_CARD.md."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from . import __version__, data, fusion_select, synthetic_defects, tiles
from .anomaly_map import blur, fuse, kernel_size_for, reduce_score
from .bundle import validate_manifest, write_card
from .calibrate import RULE_TEXT, path_normalization, threshold_by_rule, threshold_f1
from .calibrate import stats as value_stats
from .members import Members
from .train import load_split
from .teachers.nsfwjs import REPO_ROOT

log = logging.getLogger("mixdistill.export")
INPUT = "image"


@dataclass
class ExportOptions:
    runs: list[Path]  # one run, or several served as an ensemble (members.py)
    out: Path
    version: str = "1.0.0"
    checkpoint: str = "best.pt"
    sigma: float = 4.0
    reduction: str = "max"
    fusion_weights: dict[str, float] = field(default_factory=dict)
    margin: float = 0.1
    threshold_rule: str = "gumbel-0.8"  # calibrate.RULES: how normal scores alone give the thresholds
    pixel_rule: str = "normal-p99.9"  # the pixel threshold: normal-p<q> (a quantile of normal map values) or image-rule
    fusion_choice: str | None = None  # fusion_select.CHOICES; None: guarded on real defects, all paths on painted ones
    description: str = ""
    card_notes: str = ""
    select_fusion: bool = False  # score the fusion candidates on validation defects (real or painted) and choose by fusion_choice
    # An ensemble's weight per member, in run order (default: equal). Seeds of one recipe share a member's
    # weight (e.g. 1, 0.5, 0.5) so that training a recipe twice averages it instead of outvoting the others.
    member_weights: list[float] | None = None
    defects: Path | None = None  # MVTec-layout folder whose test/<defect>/ images (and masks) make thresholds F1-optimal
    # A declared split of that folder's test images (split_test.json): only its validation part is used, its good
    # images joining the normal ones; with select_fusion, the fusion is chosen on these real defects.
    defects_split: Path | None = None
    batch: int = 16


def parse_reduction(text: str) -> dict:
    if text == "max":
        return {"kind": "max"}
    kind, _, k = text.partition(":")
    if kind == "topk-mean" and k.isdigit() and int(k) > 0:
        return {"kind": "topk-mean", "k": int(k)}
    raise ValueError(f"reduction must be max or topk-mean:K, not {text!r}")


def _export_onnx(module: torch.nn.Module, path: Path, outputs: list[str], h: int, w: int) -> None:
    module.eval()
    dyn = {INPUT: {0: "batch"}, **{o: {0: "batch"} for o in outputs}}
    with torch.no_grad():
        torch.onnx.export(module, torch.zeros(1, 3, h, w), str(path), input_names=[INPUT], output_names=outputs,
                          dynamic_axes=dyn, opset_version=17, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(path)))


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def select_fusion(members: Members, val_maps: list[torch.Tensor], d_maps: list[torch.Tensor], d_masks: np.ndarray,
                  norms: list[tuple[float, float]], sigma: float, ksize: int, reduction: dict,
                  member_weights: list[float], real: bool = False, choose: str | None = None) -> tuple[list[float], list[dict]]:
    """One run: the candidate fusion_select chooses (`choose`). An ensemble: each member's choice among its own
    paths, then the members' choices together, each member's weights summing to its member weight so that no
    member outvotes another by having more paths chosen. The combination is the design, not a candidate: a
    single member's map can score higher on synthetic defects (which favour sharp pixel outlines) and still give
    worse verdicts."""
    seed = members.cfg.val_seed
    names = members.output_names()
    if not members.ensemble:
        return fusion_select.select(val_maps, d_maps, d_masks, norms, names[0], sigma, ksize, reduction, seed, real=real, choose=choose)
    n = sum(len(x) for x in names)
    weights: list[float] = []
    rows: list[dict] = []
    for d, member_names, mw in zip(members.dirs, names, member_weights):
        sl = slice(len(weights), len(weights) + len(member_names))
        w, member_rows = fusion_select.select(val_maps[sl], d_maps[sl], d_masks, norms[sl], member_names, sigma, ksize, reduction, seed, real=real, choose=choose)
        for r in member_rows:
            r["name"] = f"{d.name}: {r['name']}"
            r["weights"] = [0.0] * sl.start + r["weights"] + [0.0] * (n - sl.stop)
        rows += member_rows
        weights += [mw * x / sum(w) for x in w]
    how = ("each member weighted equally" if len(set(member_weights)) == 1
           else "members weighted " + " : ".join(f"{w:g}" for w in member_weights))
    both = fusion_select.score(val_maps, d_maps, d_masks, norms, [(f"members' choices together, {how}", weights)],
                               sigma, ksize, reduction, seed, real=real)[0]
    both["chosen"] = True
    return weights, rows + [both]


def _image_pixels(maps: torch.Tensor) -> np.ndarray:
    """Every map value that lies on an image (a tiled bundle's stacked maps are NaN around smaller images)."""
    v = maps.numpy().ravel()
    return v[~np.isnan(v)]


def _tiled_maps(members: Members, val_set: list, defective: list, good: list, cache: Path, batch: int, sigma: float, ksize: int):
    """fit tile: each set's maps blended over its tiles at the inspection scale, normalised on the held-out normal
    images' blended maps (before blur, as the untiled maps are), then blurred image by image and stacked on one
    canvas (NaN outside each image; masks False there): (val, defective, good maps per path, defect masks, norms)."""
    cfg = members.cfg
    scaled = [data.prepare_scaled(s, cfg.width, cfg.height, cfg.tile["scale"], cache) if s else [] for s in (val_set, defective, good)]
    raw = [members.tiled_maps(images, batch) if images else None for images in scaled]
    norms = [path_normalization(np.concatenate([m.ravel() for m in per_image])) for per_image in raw[0]]
    h = max(im.height for images in scaled for im in images)
    w = max(im.width for images in scaled for im in images)

    def blurred(per_path):
        return None if per_path is None else [
            tiles.nan_stack([blur(torch.from_numpy(m)[None], sigma, ksize)[0].numpy() for m in per_image], h, w) for per_image in per_path]

    masks = tiles.nan_stack(data.prepare_masks_scaled(defective, cfg.tile["scale"]), h, w, fill=False) if defective else None
    val, d, g = (blurred(r) for r in raw)
    return val, d, g, masks, norms


def export(opts: ExportOptions) -> Path:
    members = Members.load(opts.runs, opts.checkpoint)
    cfg = members.cfg
    name = opts.out.name
    opts.out.mkdir(parents=True, exist_ok=True)
    paths = [(i, run, p) for i, run in enumerate(members.runs) for p in run.paths]  # (member index, run, path)
    member_weights = opts.member_weights or [1.0] * len(members.runs)
    if len(member_weights) != len(members.runs) or min(member_weights) <= 0:
        raise ValueError(f"member weights: one positive weight per run ({len(members.runs)}), got {opts.member_weights}")
    out_names = [n for names in members.output_names() for n in names]

    _export_onnx(members.teacher_module(), opts.out / "teacher.onnx", members.tap_names(), cfg.height, cfg.width)
    _export_onnx(members.student_module(), opts.out / "student.onnx", out_names, cfg.height, cfg.width)

    # Calibration on the normal validation split the runs held out (never trained on).
    cache = opts.runs[0].parent / ".cache"
    fit_set, val_set = load_split(cfg)
    weights = [member_weights[i] * opts.fusion_weights.get(n, opts.fusion_weights.get(p.kind, 1.0))
               for n, (i, _, p) in zip(out_names, paths)]
    ksize = kernel_size_for(opts.sigma)
    reduction = parse_reduction(opts.reduction)
    if opts.defects and not (opts.defects / "test").is_dir():
        raise FileNotFoundError(f"--defects {opts.defects}: expected an MVTec-layout folder with test/<defect>/ images")
    if opts.defects_split and not opts.defects:
        raise ValueError("--defects-split names a part of --defects' test images: give --defects too")
    tested = data.test_samples(opts.defects) if opts.defects else []
    if opts.defects_split:
        tested = data.validation_part(tested, opts.defects_split)
    defective = [s for s in tested if s.defect != "good"]
    good = [s for s in tested if s.defect == "good"] if opts.defects_split else []  # a split's good images are validation normals
    if opts.defects and not defective:
        log.warning("%s holds no defective images: thresholds stay normal-quantile", opts.defects)
    tiled = cfg.fit == "tile"
    if tiled:
        maps, d_maps, good_maps, d_real_masks, norms = _tiled_maps(members, val_set, defective, good, cache, opts.batch, opts.sigma, ksize)
    else:
        val_imgs = data.prepare(val_set, cfg.width, cfg.height, cfg.fit, cache)
        maps = members.collect_maps(val_imgs, opts.batch)
        norms = [path_normalization(m) for m in maps]
        d_maps = members.collect_maps(data.prepare(defective, cfg.width, cfg.height, cfg.fit, cache), opts.batch) if defective else None
        d_real_masks = data.prepare_masks(defective, cfg.width, cfg.height, cfg.fit) if defective else None
        good_maps = members.collect_maps(data.prepare(good, cfg.width, cfg.height, cfg.fit, cache), opts.batch) if good else None
    # A tiled bundle's maps are blurred image by image already (blur is linear, so blurring each path's map before
    # the weighted sum equals blurring the sum): their fusion here adds no blur.
    fsigma, fk = (0.0, 1) if tiled else (opts.sigma, ksize)
    offsets, scales = [o for o, _ in norms], [s for _, s in norms]
    val_maps = [torch.from_numpy(m) for m in maps]
    n_val = len(val_set)
    d_real = [torch.from_numpy(m) for m in d_maps] if defective else None
    normal_maps = val_maps
    if good:
        normal_maps = [torch.cat([v, torch.from_numpy(g)]) for v, g in zip(val_maps, good_maps)]
    part = f" (the validation part of {opts.defects_split.name})" if opts.defects_split else ""
    selection = None
    if opts.select_fusion:
        if opts.fusion_weights:
            raise ValueError("--select-fusion chooses the weights itself; drop --fusion-weights")
        if defective and d_real_masks.any():
            weights, rows = select_fusion(members, normal_maps, d_real, d_real_masks, norms, fsigma, fk, reduction, member_weights, real=True,
                                          choose=opts.fusion_choice)
            selection = {"data": f"{n_val} normal held-out training images, {len(good)} good and {len(defective)} defective "
                                 f"test images of {opts.defects.name}{part}, real defects with their masks",
                         "criterion": "mean of image AUROC, pixel AUROC and AUPRO", "real": True,
                         "choice": opts.fusion_choice or "guarded", "candidates": rows}
            log.info("fusion weights chosen on real validation defects: %s", next(r["name"] for r in reversed(rows) if r["chosen"]))
        elif tiled:
            log.warning("painted defects are not scored for tiled bundles: all paths kept (give --defects to choose on real ones)")
        else:
            s_imgs, s_masks, kinds = synthetic_defects.paint(val_imgs, cfg.val_seed)
            s_maps = [torch.from_numpy(m) for m in members.collect_maps(s_imgs, opts.batch)]
            weights, rows = select_fusion(members, val_maps, s_maps, s_masks, norms, opts.sigma, ksize, reduction, member_weights,
                                          choose=opts.fusion_choice)
            selection = {"data": f"{n_val} normal validation images and one synthetic defect painted on each "
                                 f"({', '.join(f'{k} {kinds.count(k)}' for k in synthetic_defects.KINDS)}), seed {cfg.val_seed}",
                         "criterion": "mean of image AUROC and pixel AUROC", "choice": opts.fusion_choice or "all-paths", "candidates": rows}
            log.info("fusion weights chosen on synthetic defects: %s", next(r["name"] for r in reversed(rows) if r["chosen"]))  # an ensemble's is last
    # Every normal validation image at once (the split's good ones after the held-out ones); the normal-quantile
    # calibration reads the held-out ones, the F1-optimal one all of them. Maps fuse image by image.
    normal_fused = fuse(normal_maps, offsets, scales, weights, fsigma, fk)
    fused = normal_fused[:n_val]
    scores = reduce_score(fused, reduction).numpy()
    per_image_max = reduce_score(fused, {"kind": "max"}).numpy()
    method = "normal-quantile"
    rule_text = RULE_TEXT[opts.threshold_rule].replace("margin", str(opts.margin))
    image_cal = threshold_by_rule(scores, opts.threshold_rule, opts.margin)
    px = _image_pixels(fused)
    if opts.pixel_rule == "image-rule":
        pixel_text = "the same of each normal image's maximum"
        pixel_cal = threshold_by_rule(per_image_max, opts.threshold_rule, opts.margin)
    else:  # a quantile of every normal pixel: masks and regions outline more of a defect (study note)
        q = float(opts.pixel_rule.removeprefix("normal-p"))
        pixel_text = f"the {q:g}th percentile of the normal validation images' {px.size} map values"
        pixel_cal = {"threshold": float(np.percentile(px, q)), "stats": value_stats(px), "rule": opts.pixel_rule}
    pixel_cal["low"] = float(np.median(px))  # the median of the float32 map values, as the service's maps are
    description = (f"threshold = {rule_text} of the {len(scores)} normal validation scores (rule {opts.threshold_rule}); "
                   f"pixel threshold: {pixel_text}; low = p50")
    if defective:
        method = "f1-optimal"
        if good:  # the split's good images are normal validation images too
            scores = reduce_score(normal_fused, reduction).numpy()
            fused = normal_fused
        d_fused = fuse(d_real, offsets, scales, weights, fsigma, fk)
        image_cal, image_how = threshold_f1(image_cal, scores, reduce_score(d_fused, reduction).numpy())
        masks = d_real_masks
        d_px = d_fused.numpy()
        if masks.any():
            normal_px = np.concatenate([_image_pixels(fused), d_px[~masks & ~np.isnan(d_px)]])
            pixel_cal, pixel_how = threshold_f1(pixel_cal, normal_px, d_px[masks], binned=True)
        else:
            pixel_how = f"no masks: pixel threshold kept at {pixel_text}"
        description = (f"F1-optimal on {len(val_set) + len(good)} normal validation and {len(defective)} defective images{part}; "
                       f"image: {image_how}; pixel: {pixel_how}; low = normal median")
        log.info("calibration: %s", description)

    def training(d: Path, state: dict) -> dict:
        log_lines = [json.loads(l) for l in (d / "log.jsonl").read_text().splitlines() if l.strip()]
        last = log_lines[-1] if log_lines else {}
        return {"epochs": state.get("epoch"), "config": json.loads((d / "config.json").read_text()),
                "seconds": round(sum(r["seconds"] for r in log_lines), 1),
                "finalValLoss": last.get("val_loss"), "torch": last.get("torch", torch.__version__),
                **({"recoveredFrom": last["recoveredFrom"]} if "recoveredFrom" in last else {})}  # recover.py's runs

    trainings = [training(d, st) for d, st in zip(members.dirs, members.states)]
    teachers = " + ".join(r.cfg.teacher for r in members.runs)
    teacher_outputs = []
    tap_names = members.member_tap_names()
    for run, names in zip(members.runs, tap_names):
        stats = run.teacher.module.stats() if run.cfg.standardize_teacher else [None] * len(run.taps)
        teacher_outputs += [{"name": n, "stride": t.stride, "channels": t.channels, **({"standardize": st} if st else {})}
                            for n, t, st in zip(names, run.taps, stats)]
    student_outputs = [{"name": n, "imitates": tap_names[i][p.teacher_tap], "path": p.kind, "layer": f"stage{p.student_stage + 1}",
                        "stride": run.taps[p.teacher_tap].stride, "channels": run.taps[p.teacher_tap].channels}
                       for n, (i, run, p) in zip(out_names, paths)]
    students = (members.runs[0].student.describe() if not members.ensemble
                else " + ".join(f"{r.student.describe()} (imitating {r.cfg.teacher})" for r in members.runs))
    manifest = {
        "schemaVersion": 1,
        "name": name,
        "version": opts.version,
        "description": opts.description or f"Mixed-distillation student on {cfg.category or Path(cfg.data).name}, teacher {teachers}",
        "card": "MODEL_CARD.md",
        "input": {"name": INPUT, "width": cfg.width, "height": cfg.height, "channelOrder": "RGB",
                  "scaling": {k: members.runs[0].teacher.scaling[k] for k in ("scale", "mean", "std")}, "fit": cfg.fit,
                  **({"tile": cfg.tile} if cfg.tile else {}),
                  **({"normalizeIntensity": cfg.normalize_intensity} if cfg.normalize_intensity else {})},
        "teacher": {"file": "teacher.onnx", "architecture": teachers, "outputs": teacher_outputs},
        "student": {"file": "student.onnx", "architecture": students, "outputs": student_outputs},
        "fusion": {"paths": [{"student": n, "weight": w, "offset": o, "scale": s} for n, w, (o, s) in zip(out_names, weights, norms)],
                   "sigma": opts.sigma, "kernelSize": ksize, "reduction": reduction},
        "calibration": {"method": method, "description": description, "image": image_cal, "pixel": pixel_cal,
                        "validation": {"normalImages": len(val_set) + len(good), "defectiveImages": len(defective),
                                       **({"split": {"file": opts.defects_split.name, "sha256": hashlib.sha256(opts.defects_split.read_bytes()).hexdigest(), "part": "validation"}}
                                          if opts.defects_split else {})}},
        "provenance": {
            "createdAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **({"teacher": members.runs[0].teacher.source, "training": trainings[0]} if not members.ensemble else
               {"members": [{"run": d.name, "teacher": r.teacher.source, "taps": r.teacher.taps, "training": t,
                             **({"inputScaling": {k: r.teacher.scaling[k] for k in ("scale", "mean", "std")}} if again else {})}
                            for d, r, t, again in zip(members.dirs, members.runs, trainings, members.rescaled())]}),
            "data": {"root": Path(cfg.data).name, "category": cfg.category, "trainImages": len(fit_set),
                     "validationImages": len(val_set), "validationFraction": cfg.val_fraction, "seed": cfg.val_seed},
            "code": {"pipeline": __version__, "commit": _git_commit()},
            **({"fusionSelection": selection} if selection else {}),
        },
    }
    validate_manifest(manifest)
    (opts.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_card(opts.out, manifest, opts.card_notes)
    log.info("bundle written to %s: image threshold %.4f (normal p50 %.4f)", opts.out, image_cal["threshold"], image_cal["low"])
    return opts.out
