"""A tiny run of the whole pipeline on generated images: train -> export -> service parity."""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mixdistill.__main__ import main  # noqa: E402
from mixdistill.bundle import validate_manifest  # noqa: E402
from mixdistill.data import PREPARE_JS  # noqa: E402
from mixdistill.parity import SCORE_JS, parity  # noqa: E402
from mixdistill.synthetic import write  # noqa: E402
from mixdistill.teachers.nsfwjs import REPO_ROOT  # noqa: E402

pytestmark = pytest.mark.skipif(not (PREPARE_JS.exists() and SCORE_JS.exists() and shutil.which("node")),
                                reason="the service is not built (npm run build)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    cat = write(root / "data", size=80, train=16, test_good=3, test_bad=3)
    run = root / "runs" / "tiny"
    assert main(["train", "--recipe", "none", "--data", str(root / "data"), "--category", "synthetic", "--out", str(run), "--size", "64",
                 "--epochs", "2", "--batch", "4", "--widths", "16,16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25",
                 "--normalize-intensity", "110,40", "--denoise", "0.5"]) == 0
    bundle = root / "models" / "tiny-e2e"
    assert main(["export", "--run", str(run), "--checkpoint", "last.pt", "--out", str(bundle), "--sigma", "1", "--reduction", "topk-mean:20"]) == 0
    return cat, run, bundle


def test_training_log_and_resume(trained):
    _, run, _ = trained
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(set(r["val_per_path"]) == {"direct.block_2_add", "direct.block_5_add", "direct.block_9_add", "skip.block_2_add", "symmetric.block_9_add"} for r in log)
    state = torch.load(run / "last.pt", map_location="cpu")
    assert state["epoch"] == 2
    # resuming a finished run trains nothing more and keeps the log
    cfg = json.loads((run / "config.json").read_text())
    assert main(["train", "--recipe", "none", "--data", cfg["data"], "--category", "synthetic", "--out", str(run), "--size", "64", "--epochs", "2",
                 "--batch", "4", "--widths", "16,16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25",
                 "--normalize-intensity", "110,40", "--denoise", "0.5"]) == 0
    assert len((run / "log.jsonl").read_text().splitlines()) == 2


def test_exported_bundle_matches_the_contract(trained):
    _, _, bundle = trained
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    assert {p.name for p in bundle.iterdir()} == {"manifest.json", "teacher.onnx", "student.onnx", "MODEL_CARD.md"}
    cal = manifest["calibration"]
    assert cal["method"] == "normal-quantile"
    assert cal["image"]["low"] < cal["image"]["threshold"]
    assert cal["validation"]["defectiveImages"] == 0
    assert manifest["fusion"]["reduction"] == {"kind": "topk-mean", "k": 20}
    assert manifest["input"]["normalizeIntensity"] == {"mean": 110.0, "std": 40.0}
    assert manifest["provenance"]["training"]["config"]["denoise"] == 0.5
    assert "denoising: 50% of training images" in (bundle / "MODEL_CARD.md").read_text()


def test_service_scoring_matches_pytorch(trained):
    cat, run, bundle = trained
    images = sorted((cat / "test").rglob("*.png"))
    result = parity(bundle, [run], "last.pt", images, tolerance=1e-4)
    assert result["ok"], result


def test_service_loads_the_bundle(trained):
    _, _, bundle = trained
    out = subprocess.run(["node", "-e", "import('./dist/src/bundle/load.js').then(m => m.loadBundle(process.argv[1])).then(b => console.log(b.manifest.name))", str(bundle)],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "tiny-e2e"


@pytest.fixture(scope="module")
def trained_reverse(trained):
    """A reverse (RD4AD-style) student, exported with defective validation images for F1-optimal thresholds;
    trained with the hard feature loss and without the teacher-feature cache (the teacher runs every step)."""
    cat, run, _ = trained
    rev = run.parent / "tiny-reverse"
    assert main(["train", "--recipe", "none", "--data", str(cat.parent), "--category", "synthetic", "--out", str(rev), "--size", "64", "--student", "reverse", "--standardize-teacher", "--denoise", "1", "--denoise-kinds", "line,crack,band",
                 "--hard-fraction", "0.5", "--cache-mib", "0", "--epochs", "1", "--batch", "4", "--widths", "16,16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25"]) == 0
    bundle = run.parent.parent / "models" / "tiny-reverse"
    export_on_declared_split(cat, rev, bundle)
    return cat, rev, bundle


def export_on_declared_split(cat: Path, run: Path, bundle: Path) -> None:
    """Export with the defects of a declared validation part of the test split (split_test.json beside models/, as
    MTD's): F1-optimal thresholds, the fusion chosen on those defects."""
    split = bundle.parent.parent / "split_test.json"
    split.write_text(json.dumps({"validation": {"good": ["000"], "scratch": ["000", "001"]}}))
    assert main(["export", "--run", str(run), "--checkpoint", "last.pt", "--out", str(bundle), "--sigma", "1", "--defects", str(cat),
                 "--defects-split", str(split), "--select-fusion"]) == 0


def test_reverse_student_exports_with_f1_optimal_thresholds(trained_reverse):
    _, _, bundle = trained_reverse
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    assert manifest["student"]["architecture"].startswith("reverse-distillation decoder")
    assert "worst-fitted 50% of locations (hard feature loss)" in (bundle / "MODEL_CARD.md").read_text()
    stats = torch.load(trained_reverse[1] / "last.pt", map_location="cpu")["teacher_stats"]
    for out, st in zip(manifest["teacher"]["outputs"], stats):
        assert out["standardize"] == st and len(st["mean"]) == out["channels"]
    cal = manifest["calibration"]
    # only the split's validation part: 4 held-out normal images + its 1 good test image, 2 of 3 defective ones
    split = bundle.parent.parent / "split_test.json"
    assert cal["validation"] == {"normalImages": 5, "defectiveImages": 2,
                                 "split": {"file": "split_test.json", "sha256": hashlib.sha256(split.read_bytes()).hexdigest(), "part": "validation"}}
    assert cal["method"] == "f1-optimal"
    for level in ("image", "pixel"):
        assert cal[level]["low"] < cal[level]["threshold"]
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "defective ones" in card
    # fusion weights chosen on the real validation defects, AUPRO in the criterion: the chosen candidate's weights are the bundle's
    sel = manifest["provenance"]["fusionSelection"]
    assert sel["real"] and sel["criterion"] == "mean of image AUROC, pixel AUROC and AUPRO"
    chosen = [r for r in sel["candidates"] if r["chosen"]]
    assert len(chosen) == 1 and len(sel["candidates"]) == 1 + 2 * len(manifest["student"]["outputs"])
    assert [p["weight"] for p in manifest["fusion"]["paths"]] == chosen[0]["weights"]
    for r in sel["candidates"]:
        assert r["mean"] == pytest.approx((r["imageAUROC"] + r["pixelAUROC"] + r["AUPRO"]) / 3)
    assert "the test set played no part" in card and "AUPRO (in the criterion)" in card
    assert "optimistic for every candidate" not in card  # real defects, not the painted kinds it was trained on
    assert "synthetic defect (line, crack, band; teacher sees them clean)" in card
    # the card's headline is the test part; the validation part and the whole split have blocks of their own
    assert "Headline: the **test part** of `split_test.json`" in card
    for marker in ("metrics", "metrics-validation", "metrics-whole"):
        assert f"<!-- {marker}:start -->" in card and f"<!-- {marker}:end -->" in card


def test_reverse_student_service_scoring_matches_pytorch(trained_reverse):
    cat, run, bundle = trained_reverse
    result = parity(bundle, [run], "last.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result


@pytest.fixture(scope="module")
def ensemble(trained):
    """A second tiny run on other taps of the same teacher, served with the first as one bundle."""
    cat, run, _ = trained
    deep = run.parent / "tiny-deep"
    assert main(["train", "--recipe", "none", "--data", str(cat.parent), "--category", "synthetic", "--out", str(deep), "--size", "64", "--taps", "block_12_add,block_15_add",
                 "--paths", "direct", "--epochs", "1", "--batch", "4", "--widths", "16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25",
                 "--normalize-intensity", "110,40"]) == 0
    bundle = run.parent.parent / "models" / "tiny-ensemble"
    assert main(["export", "--run", str(run), "--run", str(deep), "--checkpoint", "last.pt", "--out", str(bundle), "--sigma", "1",
                 "--select-fusion"]) == 0
    return cat, [run, deep], bundle


def test_ensemble_bundle_serves_both_members(ensemble):
    _, runs, bundle = ensemble
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    assert [o["name"] for o in manifest["teacher"]["outputs"]] == ["block_2_add", "block_5_add", "block_9_add", "block_12_add", "block_15_add"]
    names = [o["name"] for o in manifest["student"]["outputs"]]
    assert names == ["direct.block_2_add", "direct.block_5_add", "direct.block_9_add", "skip.block_2_add", "symmetric.block_9_add",
                     "direct.block_12_add", "direct.block_15_add"]
    members = manifest["provenance"]["members"]
    assert [m["run"] for m in members] == ["tiny", "tiny-deep"] and members[1]["taps"] == ["block_12_add", "block_15_add"]
    assert "teacher" not in manifest["provenance"] and members[0]["training"]["config"]["denoise"] == 0.5
    # each member's own choice, the members weighted equally: the last row is the bundle's weights
    sel = manifest["provenance"]["fusionSelection"]["candidates"]
    weights = [p["weight"] for p in manifest["fusion"]["paths"]]
    assert sel[-1]["chosen"] and sel[-1]["weights"] == weights
    assert sum(weights[:5]) == pytest.approx(1) and sum(weights[5:]) == pytest.approx(1)
    for member, sl in (("tiny", slice(0, 5)), ("tiny-deep", slice(5, 7))):
        rows = [r for r in sel if r["name"].startswith(member + ": ")]
        mine = [r for r in rows if r["chosen"]]
        assert len(mine) == 1 and len(rows) == (1 + 2 * 5 if member == "tiny" else 3)
        chosen = mine[0]["weights"][sl]
        assert [w / sum(chosen) for w in chosen] == pytest.approx(weights[sl])
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "An ensemble" in card and "Member `tiny-deep` (taps `block_12_add`, `block_15_add`)" in card
    assert "The teachers are frozen" in card and "Member `tiny`: 2 epochs" in card
    assert "optimistic for every candidate" in card  # member tiny was trained to denoise the kinds the selection paints


def test_ensemble_service_scoring_matches_pytorch(ensemble):
    cat, runs, bundle = ensemble
    result = parity(bundle, runs, "last.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result
    with pytest.raises(ValueError, match="given more than once"):
        parity(bundle, [runs[0], runs[0]], "last.pt", [], tolerance=1e-4)


@pytest.fixture(scope="module")
def seeds(trained):
    """The first tiny run's recipe trained again with another seed, holding out the same images (--split-seed), and
    served with it as one member: the two runs share the member's weight."""
    cat, run, _ = trained
    again = run.parent / "tiny-s1"
    assert main(["train", "--recipe", "none", "--data", str(cat.parent), "--category", "synthetic", "--out", str(again), "--size", "64",
                 "--epochs", "2", "--batch", "4", "--widths", "16,16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25",
                 "--normalize-intensity", "110,40", "--denoise", "0.5", "--seed", "1", "--split-seed", "0"]) == 0
    bundle = run.parent.parent / "models" / "tiny-seeds"
    assert main(["export", "--run", str(run), "--run", str(again), "--checkpoint", "last.pt", "--out", str(bundle), "--sigma", "1",
                 "--select-fusion", "--member-weights", "2,1"]) == 0
    return cat, [run, again], bundle


def test_two_seeds_of_one_recipe_serve_as_one_bundle(seeds):
    cat, runs, bundle = seeds
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    # the second run taps the same layers: its outputs carry its run's name
    taps = ["block_2_add", "block_5_add", "block_9_add"]
    assert [o["name"] for o in manifest["teacher"]["outputs"]] == taps + [t + "@tiny-s1" for t in taps]
    second = manifest["student"]["outputs"][5:]
    assert [o["name"] for o in second] == [n + "@tiny-s1" for n in ("direct.block_2_add", "direct.block_5_add", "direct.block_9_add",
                                                                    "skip.block_2_add", "symmetric.block_9_add")]
    assert [o["imitates"] for o in second] == [t + "@tiny-s1" for t in taps + ["block_2_add", "block_9_add"]]
    assert [m["training"]["config"]["seed"] for m in manifest["provenance"]["members"]] == [0, 1]
    weights = [p["weight"] for p in manifest["fusion"]["paths"]]
    assert sum(weights[:5]) == pytest.approx(2) and sum(weights[5:]) == pytest.approx(1)
    assert manifest["provenance"]["fusionSelection"]["candidates"][-1]["name"] == "members' choices together, members weighted 2 : 1"
    result = parity(bundle, runs, "last.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result

    from mixdistill.recover import recover
    recovered = [recover(bundle, r.name, runs[0].parent / "recovered-seeds" / r.name) for r in runs]
    assert json.loads((recovered[1] / "config.json").read_text())["split_seed"] == 0
    result = parity(bundle, recovered, "best.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result

    with pytest.raises(ValueError, match="one positive weight per run"):
        main(["export", "--run", str(runs[0]), "--run", str(runs[1]), "--checkpoint", "last.pt", "--out", str(bundle.parent / "x"),
              "--member-weights", "1"])


def test_recovered_run_reproduces_a_one_run_bundle(trained):
    from mixdistill.recover import recover

    cat, run, bundle = trained
    recovered = recover(bundle, None, run.parent / "recovered-tiny")
    assert torch.load(recovered / "best.pt")["epoch"] == torch.load(run / "last.pt")["epoch"]
    result = parity(bundle, [recovered], "best.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result


def test_recovered_members_reproduce_the_bundle(ensemble, trained_reverse):
    """A bundle's members rebuilt as run folders compute the bundle's maps and export to the same calibration."""
    from mixdistill.recover import recover

    cat, runs, bundle = ensemble
    root = runs[0].parent / "recovered"
    recovered = [recover(bundle, r.name, root / r.name) for r in runs]
    for old, new in zip(runs, recovered):
        assert json.loads((new / "config.json").read_text()) == {**json.loads((old / "config.json").read_text()), "out": str(new)}
    result = parity(bundle, recovered, "best.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result
    again = root.parent.parent / "models" / "tiny-ensemble-again"
    assert main(["export", "--run", str(recovered[0]), "--run", str(recovered[1]), "--out", str(again), "--sigma", "1", "--select-fusion"]) == 0
    before, after = (json.loads((b / "manifest.json").read_text()) for b in (bundle, again))
    assert [p["weight"] for p in after["fusion"]["paths"]] == [p["weight"] for p in before["fusion"]["paths"]]
    for p, q in zip(after["fusion"]["paths"], before["fusion"]["paths"]):
        assert p["offset"] == pytest.approx(q["offset"], abs=1e-5) and p["scale"] == pytest.approx(q["scale"], abs=1e-5)
    assert after["calibration"]["image"]["threshold"] == pytest.approx(before["calibration"]["image"]["threshold"], abs=1e-4)
    assert [m["training"]["config"] for m in after["provenance"]["members"]] == [json.loads((r / "config.json").read_text()) for r in recovered]
    assert [m["training"]["recoveredFrom"] for m in after["provenance"]["members"]] == ["tiny-ensemble 1.0.0"] * 2
    assert "Weights recovered from bundle tiny-ensemble 1.0.0 (`pipeline recover`), not retrained." in (again / "MODEL_CARD.md").read_text()

    with pytest.raises(ValueError, match="name the member"):
        recover(bundle, None, root / "x")
    with pytest.raises(ValueError, match="no member 'nope'"):
        recover(bundle, "nope", root / "x")
    with pytest.raises(ValueError, match="only forward students"):
        recover(trained_reverse[2], None, root / "x")


@pytest.fixture(scope="module")
def mixed_scaling(trained):
    """An nsfwjs member (x / 255) and a torchvision one (ImageNet mean and std) in one bundle."""
    import torchvision

    cat, run, _ = trained
    weights = run.parent / "resnet18-random.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)  # stands in for ImageNet weights
    imagenet = run.parent / "tiny-resnet"
    assert main(["train", "--recipe", "none", "--data", str(cat.parent), "--category", "synthetic", "--out", str(imagenet), "--size", "64",
                 "--teacher", f"torchvision:resnet18@{weights}", "--taps", "layer2,layer3", "--paths", "direct",
                 "--epochs", "1", "--batch", "4", "--widths", "16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25",
                 "--normalize-intensity", "110,40"]) == 0
    bundle = run.parent.parent / "models" / "tiny-mixed-scaling"
    assert main(["export", "--run", str(run), "--run", str(imagenet), "--checkpoint", "last.pt", "--out", str(bundle), "--sigma", "1"]) == 0
    return cat, [run, imagenet], bundle


def test_members_with_other_input_scalings_share_one_input(mixed_scaling):
    cat, runs, bundle = mixed_scaling
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    assert manifest["input"]["scaling"]["mean"] == [0.0, 0.0, 0.0]  # member 1's
    first, second = manifest["provenance"]["members"]
    assert "inputScaling" not in first and second["inputScaling"]["mean"] == [0.485, 0.456, 0.406]
    assert "the graphs re-scale the input for it" in (bundle / "MODEL_CARD.md").read_text()
    result = parity(bundle, runs, "last.pt", sorted((cat / "test").rglob("*.png")), tolerance=1e-4)
    assert result["ok"], result


def test_min_steps_adds_epochs_where_there_are_few_images_and_resumes(trained, tmp_path):
    cat, _, _ = trained
    run = tmp_path / "few"
    # 16 training images, a quarter held out: 12 to train on, 3 steps an epoch at batch 4; 7 steps need 3 epochs
    args = ["train", "--recipe", "none", "--data", str(cat.parent), "--category", "synthetic", "--out", str(run), "--size", "48", "--epochs", "1",
            "--min-steps", "7", "--batch", "4", "--widths", "8,8,16", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25"]
    assert main(args) == 0
    assert [json.loads(l)["epoch"] for l in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["epochs"] == 3 and cfg["min_steps"] == 7
    assert main(args) == 0  # the same command again resumes the finished run: nothing more, no config clash
    assert len((run / "log.jsonl").read_text().splitlines()) == 3


@pytest.fixture(scope="module")
def tiled(trained):
    """A tiled run (fit tile): 80² images at scale 0.75 are 60², two 48² tiles a side sharing at least 8 pixels;
    exported with a declared validation part of the test split, so calibration and the fusion choice run on
    blended maps of real (synthetic) defects."""
    cat, run, _ = trained
    t = run.parent / "tiny-tiled"
    assert main(["train", "--recipe", "none", "--data", str(cat.parent), "--category", "synthetic", "--out", str(t), "--size", "48",
                 "--fit", "tile", "--tile-scale", "0.75", "--tile-overlap", "8", "--tile-blend", "feather",
                 "--epochs", "1", "--batch", "4", "--widths", "16,16,32", "--blocks", "1", "--threads", "2", "--val-fraction", "0.25"]) == 0
    bundle = run.parent.parent / "models" / "tiny-tiled"
    export_on_declared_split(cat, t, bundle)
    return cat, t, bundle


def test_tiled_run_trains_on_crops_and_exports_its_fit(tiled):
    _, run, bundle = tiled
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1
    manifest = json.loads((bundle / "manifest.json").read_text())
    validate_manifest(manifest)
    assert manifest["input"]["fit"] == "tile" and manifest["input"]["tile"] == {"scale": 0.75, "overlap": 8, "blend": "feather"}
    assert (manifest["input"]["width"], manifest["input"]["height"]) == (48, 48)
    cal = manifest["calibration"]
    assert cal["method"] == "f1-optimal" and cal["validation"]["defectiveImages"] == 2
    for level in ("image", "pixel"):
        assert cal[level]["low"] < cal[level]["threshold"]
    assert manifest["provenance"]["fusionSelection"]["real"]
    assert "Fit `tile`" in (bundle / "MODEL_CARD.md").read_text()


def test_tiled_service_scoring_matches_pytorch_on_blended_maps(tiled):
    cat, run, bundle = tiled
    images = sorted((cat / "test").rglob("*.png"))
    result = parity(bundle, [run], "last.pt", images, tolerance=1e-4)
    assert result["ok"], result
    assert result["tiles"] == 4 * len(images)
