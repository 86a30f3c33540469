import dataclasses

import pytest

torch = pytest.importorskip("torch")

from mixdistill.members import Concat, Rescaled, check_compatible  # noqa: E402
from mixdistill.train import TrainConfig  # noqa: E402

X255 = {"scale": 1 / 255, "mean": [0.0] * 3, "std": [1.0] * 3}


def test_members_must_share_input_and_split():
    a = TrainConfig(data="d", category="c", out="runs/a", normalize_intensity={"mean": 109.0, "std": 29.0})
    b = dataclasses.replace(a, out="runs/b", teacher="nsfwjs:inception_v3", widths=[64, 128, 256], epochs=70)
    check_compatible([a, b], [["block_12_add"], ["mixed5"]])  # teacher, student and training may differ
    for change, key in (({"width": 320}, "width"), ({"fit": "center-crop"}, "fit"), ({"normalize_intensity": None}, "normalize_intensity"),
                        ({"seed": 1}, "val_seed"), ({"split_seed": 1}, "val_seed"), ({"val_fraction": 0.2}, "val_fraction")):
        with pytest.raises(ValueError, match=f"run 2 differs from run 1 in {key}"):
            check_compatible([a, dataclasses.replace(b, **change)], [["block_12_add"], ["mixed5"]])
    # another seed of a recipe holds out the same images when its split keeps the first run's seed
    check_compatible([a, dataclasses.replace(a, out="runs/a1", seed=1, split_seed=0)], [["block_12_add"], ["block_12_add@a1"]])
    with pytest.raises(ValueError, match=r"\['block_12_add'\] appear in more than one run"):
        check_compatible([a, b], [["block_9_add", "block_12_add"], ["block_12_add"]])


def test_concat_runs_every_part_on_the_same_input():
    x = torch.randn(2, 3, 8, 8)
    m = Concat([lambda_module(lambda v: [v + 1, v * 2]), lambda_module(lambda v: [v.mean(1, keepdim=True)])])
    out = m(x)
    assert len(out) == 3
    assert torch.equal(out[0], x + 1) and torch.equal(out[1], x * 2) and torch.equal(out[2], x.mean(1, keepdim=True))


def lambda_module(fn):
    class F(torch.nn.Module):
        def forward(self, v):
            return fn(v)
    return F()


def test_a_member_with_another_input_scaling_sees_its_own_scaling_of_the_same_pixels():
    imagenet = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    pixels = torch.rand(2, 3, 5, 7) * 255
    as_nsfwjs = pixels * X255["scale"]  # the bundle's input: member 1 (nsfwjs) takes x / 255
    mean, std = torch.tensor(imagenet["mean"]).view(1, 3, 1, 1), torch.tensor(imagenet["std"]).view(1, 3, 1, 1)
    as_imagenet = (pixels / 255 - mean) / std
    seen = Rescaled(lambda_module(lambda v: [v]), X255, imagenet)(as_nsfwjs)[0]
    assert torch.allclose(seen, as_imagenet, atol=1e-5)
    back = Rescaled(lambda_module(lambda v: [v]), imagenet, X255)(as_imagenet)[0]
    assert torch.allclose(back, as_nsfwjs, atol=1e-6)
