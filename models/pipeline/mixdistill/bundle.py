"""The bundle contract (models/bundle.schema.json) and the model card."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from .synthetic_defects import KINDS
from .teachers.nsfwjs import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "models" / "bundle.schema.json"


FIT_LIMITS = {
    "stretch": "non-square images are stretched to the square input, so each part's texture scale changes with its aspect ratio",
    "center-crop": "the borders outside the centred square are not inspected",
    "letterbox": "a non-square image fills only part of the input (its longer side), so elongated parts are seen at a smaller scale and with fewer map pixels",
    "tile": "each tile is scored with the context of that tile only, so a defect larger than a tile is seen piecewise, and an image costs one inference per tile",
}


def validate_manifest(manifest: dict) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10]]
        raise ValueError("manifest does not match bundle.schema.json:\n  " + "\n  ".join(lines))
    teacher = {o["name"]: o for o in manifest["teacher"]["outputs"]}
    for o in manifest["student"]["outputs"]:
        t = teacher.get(o["imitates"])
        if t is None:
            raise ValueError(f"student output {o['name']} imitates unknown teacher output {o['imitates']}")
        if (t["stride"], t["channels"]) != (o["stride"], o["channels"]):
            raise ValueError(f"student output {o['name']} does not match the shape of {o['imitates']}")
    inp = manifest["input"]
    if (inp["fit"] == "tile") != ("tile" in inp):
        raise ValueError("input.tile is required with input.fit tile and refused with any other fit")
    if "tile" in inp and inp["tile"]["overlap"] >= min(inp["width"], inp["height"]):
        raise ValueError(f"input.tile.overlap {inp['tile']['overlap']} must be below the tile's width and height")


def _tile_text(inp: dict) -> str:
    t = inp.get("tile")
    if not t:
        return ""
    return (f" (tiles of the input's size at scale {t['scale']:g}{' (native pixels)' if t['scale'] == 1 else ''}, neighbours sharing at "
            f"least {t['overlap']} pixels, {t['blend']} blend; the score and maps come from the blended map at each image's size)")


METRICS_START = "<!-- metrics:start -->"
METRICS_END = "<!-- metrics:end -->"


def _selection_text(sel: dict | None, denoised_these_kinds: bool = False) -> str:
    if not sel:
        return "Weights were set at export (default 1 each), not chosen on data.\n"
    rows = "\n".join(f"| {'**' + r['name'] + '**' if r['chosen'] else r['name']} | {r['imageAUROC']:.3f} | {r['pixelAUROC']:.3f} | {r['mean']:.3f} | "
                     + (f"{r['AUPRO']:.3f} |" if "AUPRO" in r else "– |") for r in sel["candidates"])
    aupro = "AUPRO (in the criterion)" if sel.get("real") else "AUPRO (not in the criterion)"
    guards = [r for r in sel["candidates"] if "guard" in r]
    guard = "".join(
        f"\nThe best candidate{' of ' + r['name'].split(': ')[0] if ': ' in r['name'] else ''}, {r['name'].split(': ')[-1]}, beat all paths by "
        f"{r['guard']['advantage']:.3f} and in {r['guard']['bootstrapWins']:.0%} of {r['guard']['resamples']} paired bootstrap resamples: "
        + ("it replaces them" if r["guard"]["passed"] else
           f"all paths are kept, a candidate needing at least {r['guard']['margin']} and {r['guard']['level']:.0%} (the guard against a choice that a few defects flatter)")
        + ".\n" for r in guards)
    head = (f"Weights chosen on validation data ({sel['data']}), by the {sel['criterion']}; the test set played no part:\n\n"
            if sel.get("choice") != "all-paths" else
            f"All paths kept, each with weight 1: the candidates were scored on validation data ({sel['data']}), by the "
            f"{sel['criterion']}, for this table only, since on the development suite painted defects ranked the candidates "
            "too poorly to choose by (models/studies/new-category-defaults.md); the test set played no part:\n\n")
    return (head +
            f"| candidate | image AUROC | pixel AUROC | mean | {aupro} |\n|---|---|---|---|---|\n{rows}\n{guard}"
            + ("\nThe student was trained to denoise synthetic defects of kinds that this selection paints too (other draws), so these figures are "
               "optimistic for every candidate; they rank the candidates, they do not predict real defects.\n" if denoised_these_kinds else ""))


def _teacher_text(teacher: dict) -> str:
    return (f"`{teacher.get('spec')}` — {teacher.get('note', '')}.\n"
            + ("Weights: the npm package nsfwjs " + teacher['version'] + " (MIT), read from node_modules at training time; ported to PyTorch "
               "and checked against the original tfjs network (test/teacher-parity.test.ts).\n" if teacher.get('package') == 'nsfwjs' else '')
            + (f"Weights: {teacher['name']} (`{teacher['weights']}`, sha256 {teacher['weightsSha256'][:16]}…), from {teacher['origin']}. "
               f"Licence: {teacher['license']}.\n" if teacher.get('origin') else ''))


def _training_text(training: dict) -> str:
    cfg = training["config"]
    drawn = cfg.get("denoise_kinds") or list(KINDS)  # runs from before the option drew the validation kinds
    regimen = (f"denoising: {cfg['denoise']:.0%} of training images shown to the student with a synthetic defect ({', '.join(drawn)}; teacher sees them clean), "
               if cfg.get("denoise") else "")
    hard = cfg.get("hard_fraction", 1.0)
    if hard < 1:
        regimen += f"loss per path over the worst-fitted {hard:.0%} of locations (hard feature loss), "
    val_loss = training.get("finalValLoss")
    return (f"{cfg['epochs']} epochs, batch {cfg['batch']}, Adam with one-cycle learning rate up to {cfg['lr']}, weight decay {cfg['weight_decay']},\n"
            f"random flips: {cfg['augment']}, {regimen}seed {cfg['seed']}. Training time on this machine (2 CPU cores, torch {training['torch']}):\n"
            f"{training['seconds'] / 60:.1f} min. Final validation loss {val_loss if val_loss is not None else float('nan'):.4f}; checkpoint of epoch {training['epochs']}.\n"
            + (f"Weights recovered from bundle {training['recoveredFrom']} (`pipeline recover`), not retrained.\n" if training.get("recoveredFrom") else ""))


def _metrics_sections(manifest: dict) -> str:
    """The blocks `npm run eval --update-card` fills: with a declared split (calibration.validation.split), the test
    part is the headline, the validation part and the whole split beside it, marked; without one, the whole split."""
    name, split = manifest["name"], manifest["calibration"]["validation"].get("split")
    if not split:
        return (f"{METRICS_START}\nNot evaluated yet: run `npm run eval -- --model {name} --data <category folder> --update-card`.\n{METRICS_END}")
    run = f"npm run eval -- --model {name} --data <category folder> --split <{split['file']}>"
    return (f"Headline: the **test part** of `{split['file']}` (the test split without the validation images that chose the fusion and the thresholds).\n\n"
            f"{METRICS_START}\nNot evaluated yet: run `{run} --part test --update-card`.\n{METRICS_END}\n\n"
            f"### Validation part (it made the choices, so these figures are optimistic)\n"
            f"<!-- metrics-validation:start -->\nNot evaluated yet: run `{run} --part validation --update-card`.\n<!-- metrics-validation:end -->\n\n"
            f"### Whole test split (for comparison with earlier versions and papers only: it includes the validation part)\n"
            f"<!-- metrics-whole:start -->\nNot evaluated yet: run `npm run eval -- --model {name} --data <category folder> --update-card`.\n<!-- metrics-whole:end -->")


def write_card(folder: Path, manifest: dict, notes: str = "") -> None:
    p = manifest["provenance"]
    # An ensemble's provenance lists its members (members.py); a single run's has one teacher and one training.
    members = p.get("members") or [{"teacher": p["teacher"], "training": p["training"]}]
    ensemble = len(members) > 1
    configs = [m["training"]["config"] for m in members]
    paths = "\n".join(f"| `{o['name']}` | {o['path']} | {o['layer']} | `{o['imitates']}` (stride {o['stride']}, {o['channels']} ch) |"
                      for o in manifest["student"]["outputs"])
    fusion = "\n".join(f"| `{f['student']}` | {f['weight']:g} | {f['offset']:.5f} | {f['scale']:.5f} |" for f in manifest["fusion"]["paths"])
    cal = manifest["calibration"]
    denoised_these_kinds = any(c.get("denoise") and set(c.get("denoise_kinds") or KINDS) & set(KINDS) for c in configs)
    if ensemble:
        teacher_text = ("An ensemble: each member is a teacher and the student trained on it; all see the same input, and their maps are "
                        "fused like the paths of one model.\n\n" + "\n".join(
                            f"- Member `{m['run']}` (taps {', '.join(f'`{t}`' for t in m['taps'])}): " + _teacher_text(m["teacher"]).replace("\n", " ").strip()
                            + (f" Its teacher expects scaling x = pixel * {m['inputScaling']['scale']:.6g} - mean {m['inputScaling']['mean']}, / std "
                               f"{m['inputScaling']['std']}: the graphs re-scale the input for it (one multiply-add per channel)." if m.get("inputScaling") else "")
                            for m in members))
        training_text = "\n".join(f"Member `{m['run']}`: " + _training_text(m["training"]) for m in members)
    else:
        teacher_text, training_text = _teacher_text(members[0]["teacher"]), _training_text(members[0]["training"])
    teacher_text, training_text = teacher_text.rstrip("\n"), training_text.rstrip("\n")
    text = f"""# {manifest['name']} {manifest['version']}

{manifest['description']}

## Data
- Training data: `{p['data']['root']}` category `{p['data']['category']}`, normal images only:
  {p['data']['trainImages']} for training, {p['data']['validationImages']} held out (seed {p['data']['seed']}) for
  validation and calibration.
- Input: {manifest['input']['width']}x{manifest['input']['height']} RGB, fit `{manifest['input']['fit']}`{_tile_text(manifest['input'])}, scaling x = pixel * {manifest['input']['scaling']['scale']:.6g} - mean, / std
  (mean {manifest['input']['scaling']['mean']}, std {manifest['input']['scaling']['std']}). Grey images are copied to three channels.
{"- Exposure: each image's pixels are remapped to mean " + str(manifest['input']['normalizeIntensity']['mean']) + " and std " + str(manifest['input']['normalizeIntensity']['std']) + " before scaling." if manifest['input'].get('normalizeIntensity') else "- Exposure: not normalised."}

## Teacher
{teacher_text}
The {"teachers are" if ensemble else "teacher is"} frozen (eval mode) and exported unchanged as `teacher.onnx`.

## Student and paths
{manifest['student']['architecture']}; {'each student has its' if ensemble else 'its'} trainable layers randomly initialised and trained to reproduce {'its' if ensemble else 'the'} teacher through these paths:

| output | path | student layer | imitates |
|---|---|---|---|
{paths}

## Training
{training_text}

## Fusion and calibration
Maps: 1 - cos per path, bilinear to the input size, (d - offset) / scale * weight summed, Gaussian sigma
{manifest['fusion']['sigma']} (kernel {manifest['fusion']['kernelSize']}), image score `{manifest['fusion']['reduction']['kind']}`.
Offsets and scales put each path's normal validation values at mean 0 and 99.9th percentile 1.
{_selection_text(p.get('fusionSelection'), denoised_these_kinds and not (p.get('fusionSelection') or {}).get('real'))}
| output | weight | offset | scale |
|---|---|---|---|
{fusion}

Thresholds ({cal['method']}): {cal.get('description', '')}. Image threshold {cal['image']['threshold']:.4f}
(normal p50 {cal['image']['low']:.4f}), pixel threshold {cal['pixel']['threshold']:.4f}; from {cal['validation']['normalImages']} normal images, {cal['validation']['defectiveImages'] or 'no'} defective ones.

## Test metrics
{_metrics_sections(manifest)}

## Limitations
{"- Thresholds come from normal images only (" + cal['description'].split(';')[0] + "). Compare image F1 at the" + chr(10) + "  threshold with F1-max above, and the share of good parts flagged, and use the API's `sensitivity` to trade" + chr(10) + "  one for the other on your line; with a few defective parts at hand, export with `--defects` instead." if cal['method'] == 'normal-quantile' else "- Thresholds maximise F1 on the defective validation images given at export: they are as representative as those images are of your line's defects."}
- Fit `{manifest['input']['fit']}`: {FIT_LIMITS[manifest['input']['fit']]}.
{"- The teacher's weights are what the card says they are, not a pristine ImageNet backbone." if any(not m["teacher"].get("origin") for m in members) else "- The teachers' ImageNet weights come from the public repositories named above, not from torchvision's own download; the card states what is known of their licences."}
- Training time was measured on a shared 2-core machine while other work ran; it is an upper bound.
""" + (f"\n## Notes\n{notes.strip()}\n" if notes.strip() else "")
    (folder / "MODEL_CARD.md").write_text(text)
