import pytest

from mixdistill.recipes import BARE, RECIPES, resolve
from mixdistill.synthetic_defects import TRAINING_KINDS


def test_a_command_value_beats_the_recipe_which_beats_the_bare_default():
    none = {k: None for k in BARE}
    assert resolve("none", none) == BARE
    got = resolve("new-category", {**none, "epochs": 5, "taps": ["layer3"]})
    assert got["epochs"] == 5 and got["taps"] == ["layer3"]  # the command's own
    assert got["teacher"] == RECIPES["new-category"]["teacher"] and got["min_steps"] == RECIPES["new-category"]["min_steps"]
    assert resolve("resnet18", {**none, "denoise": 0.0})["denoise"] == 0.0  # 0 is a value, not "left out"
    with pytest.raises(ValueError, match="unknown recipe"):
        resolve("fast", none)


def test_the_new_category_recipe_is_the_one_the_study_chose():
    r = RECIPES["new-category"]
    # models/studies/new-category-defaults.md: the recipe measured on the development suite
    assert r["denoise"] == 0.5 and r["hard_fraction"] == 0.1 and r["denoise_kinds"] == list(TRAINING_KINDS) and r["min_steps"] == 260


def test_torchvision_weights_are_looked_up_where_the_message_says(tmp_path, monkeypatch):
    from mixdistill.teachers import find_weights, weight_dirs

    monkeypatch.setenv("MIXDISTILL_WEIGHTS", str(tmp_path / "mine"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert weight_dirs()[0] == tmp_path / "mine" and weight_dirs()[-1] == tmp_path / "torch" / "hub" / "checkpoints"
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torch" / "hub" / "checkpoints" / "wide_resnet50_2-95faca4d.pth").write_bytes(b"")
    assert find_weights("wide_resnet50_2") == tmp_path / "torch" / "hub" / "checkpoints" / "wide_resnet50_2-95faca4d.pth"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "wide_resnet50_2-9ba9bcbe.pth").write_bytes(b"")
    assert find_weights("wide_resnet50_2") == tmp_path / "mine" / "wide_resnet50_2-9ba9bcbe.pth"  # MIXDISTILL_WEIGHTS first
    with pytest.raises(ValueError, match="MIXDISTILL_WEIGHTS"):
        find_weights("resnet34")
