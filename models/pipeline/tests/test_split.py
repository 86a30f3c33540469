import json
import random

from mixdistill.split import RULE, SEED, declare, write


def _category(root, folders):
    for name, n in folders.items():
        d = root / "test" / name
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"{i:03d}.png").write_bytes(b"")
        (d / "notes.txt").write_text("not an image")
    return root


def test_split_follows_the_declared_rule(tmp_path):
    cat = _category(tmp_path / "cat", {"good": 10, "crack": 7, "bend": 3})
    doc = declare(cat)
    # The rule as written, independently: one generator through the sorted folders, 30 % of each, rounded.
    rng = random.Random(SEED)
    expected = {}
    for name in sorted(["good", "crack", "bend"]):
        stems = sorted(f"{i:03d}" for i in range({"good": 10, "crack": 7, "bend": 3}[name]))
        expected[name] = sorted(rng.sample(stems, round(0.3 * len(stems))))
    assert doc["validation"] == expected
    assert doc["counts"] == {"bend": 1, "crack": 2, "good": 3}
    assert doc["rule"] == RULE and doc["seed"] == SEED
    out = write(cat, tmp_path / "splits" / "cat.json")
    assert json.loads(out.read_text())["validation"] == expected


def test_split_is_reproducible_and_seeded(tmp_path):
    cat = _category(tmp_path / "cat", {"good": 20})
    assert declare(cat) == declare(cat)
    assert declare(cat, seed=1)["validation"] != declare(cat)["validation"]
    assert "50%" in declare(cat, fraction=0.5)["rule"]


def test_split_reproduces_the_shared_mtd_split():
    import pytest
    from pathlib import Path

    shared = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "mtd"
    if not (shared / "split_test.json").is_file():
        pytest.skip("SKIPPED: ../shared/datasets/mtd not present")
    declared = json.loads((shared / "split_test.json").read_text())
    doc = declare(shared / "magnetic_tile", seed=declared["seed"])
    assert doc["validation"] == declared["validation"] and doc["rule"] == declared["rule"]


def test_the_repo_splits_are_what_the_rule_gives():
    """models/splits/*.json were written by `pipeline split`; they must stay what it writes for their data."""
    import pytest
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    data = {"transistor": "mvtec_transistor/transistor", "metal_plate": "mpdd/metal_plate", "kolektorsdd": "kolektorsdd/kolektorsdd"}
    checked = 0
    for name, rel in data.items():
        cat = repo / ".." / "shared" / "datasets" / rel
        if cat.is_dir():
            assert json.loads((repo / "models" / "splits" / f"{name}.json").read_text()) == declare(cat), name
            checked += 1
    if not checked:
        pytest.skip("SKIPPED: ../shared/datasets not present")
