import pytest

torch = pytest.importorskip("torch")

from mixdistill.teachers import build_teacher  # noqa: E402
from mixdistill.teachers.keras_graph import tf_same_pads  # noqa: E402


def test_tensorflow_same_padding_is_asymmetric_for_stride_2_on_even_sizes():
    assert tf_same_pads(256, 3, 2) == (0, 1, 128)
    assert tf_same_pads(255, 3, 2) == (1, 1, 128)
    assert tf_same_pads(64, 3, 1) == (1, 1, 64)
    assert tf_same_pads(17, 7, 1) == (3, 3, 17)


@pytest.mark.parametrize("spec,size,shapes", [
    ("nsfwjs:mobilenet_v2", 256, {"block_2_add": (24, 64, 64), "block_5_add": (32, 32, 32), "block_9_add": (64, 16, 16)}),
    ("nsfwjs:inception_v3", 256, {"activation_5": (192, 60, 60), "mixed2": (288, 29, 29), "mixed5": (768, 14, 14)}),
])
def test_teacher_taps(spec, size, shapes):
    t = build_teacher(spec, None, size, size)
    assert t.shapes == shapes
    feats = t.module(torch.zeros(1, 3, size, size))
    assert [tuple(f.shape[1:]) for f in feats] == list(shapes.values())


def test_teacher_is_frozen_and_stays_in_eval_mode():
    t = build_teacher("nsfwjs:mobilenet_v2", ["block_2_add"], 64, 64)
    t.module.train()
    assert not t.module.training
    assert all(not m.training for m in t.module.modules())
    assert all(not p.requires_grad for p in t.module.parameters())
    x = torch.rand(2, 3, 64, 64)
    a = t.module(x)[0]
    b = t.module(x)[0]
    assert torch.equal(a, b)


def test_nsfwjs_teacher_expects_x_over_255():
    assert build_teacher("nsfwjs:mobilenet_v2", ["block_2_add"], 64, 64).scaling == {"scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}


def test_torchvision_teacher_needs_a_local_weights_file():
    with pytest.raises(ValueError, match="local weights file"):
        build_teacher("torchvision:resnet18", None, 64, 64)


def test_torchvision_teacher_from_a_local_weights_file(tmp_path):
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)  # stands in for ImageNet weights
    t = build_teacher(f"torchvision:resnet18@{weights}", None, 128, 128)
    assert t.taps == ["layer1", "layer2", "layer3"]
    assert t.shapes == {"layer1": (64, 32, 32), "layer2": (128, 16, 16), "layer3": (256, 8, 8)}
    assert t.scaling["mean"] == [0.485, 0.456, 0.406]
    t.module.train()
    assert not t.module.training


def test_standardized_teacher_has_zero_mean_unit_std_on_its_fitting_images():
    from mixdistill.teachers import Standardized

    class Taps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.b = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)

        def forward(self, x):
            return [self.a(x) + 5.0, self.b(x) * 3.0]

    wrapped = Standardized(Taps(), [4, 6])
    xs = [torch.rand(4, 3, 16, 16) for _ in range(3)]
    wrapped.fit(iter(xs))
    feats = wrapped(torch.cat(xs))
    for f in feats:
        assert torch.allclose(f.mean(dim=(0, 2, 3)), torch.zeros(f.shape[1]), atol=1e-4)
        assert torch.allclose(f.std(dim=(0, 2, 3), unbiased=False), torch.ones(f.shape[1]), atol=1e-3)
    again = Standardized(Taps(), [4, 6])
    again.inner.load_state_dict(wrapped.inner.state_dict())
    again.set_stats(wrapped.stats())
    assert all(torch.equal(a, b) for a, b in zip(again(xs[0]), wrapped(xs[0])))
    wrapped.train()
    assert not wrapped.training
