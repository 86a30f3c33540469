from pathlib import Path

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


def test_torchvision_teacher_needs_a_local_weights_file(tmp_path, monkeypatch):
    import mixdistill.teachers as teachers

    # nowhere to look: no MIXDISTILL_WEIGHTS, an empty torch cache, and no team folder of weights
    monkeypatch.delenv("MIXDISTILL_WEIGHTS", raising=False)
    monkeypatch.setattr(teachers, "weight_dirs", lambda: [tmp_path / "hub" / "checkpoints"])
    with pytest.raises(ValueError, match="needs ImageNet weights.*MIXDISTILL_WEIGHTS"):
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


SHARED_WEIGHTS = Path(__file__).resolve().parents[3].parent / "shared" / "weights"
INT8_MOBILENET = SHARED_WEIGHTS / "torchvision-mobilenet_v2-quantized" / "mobilenet_quantized.pt"
FOLDED_RESNET18 = SHARED_WEIGHTS / "resnet18-imagenet-npy"
needs_int8 = pytest.mark.skipif(not INT8_MOBILENET.exists(), reason=f"SKIPPED: {INT8_MOBILENET} is not here (../shared)")
needs_npy = pytest.mark.skipif(not FOLDED_RESNET18.exists(), reason=f"SKIPPED: {FOLDED_RESNET18} is not here (../shared)")


def _picture(name: str) -> torch.Tensor:
    """One of ../shared's natural pictures at 224x224 (torch's bilinear), scaled as ImageNet weights expect."""
    import numpy as np
    from PIL import Image

    rgb = np.array(Image.open(SHARED_WEIGHTS / "imagenet-test-images" / f"{name}.png").convert("RGB"))
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


@needs_int8
@pytest.mark.parametrize("picture,label", [("cat", 285), ("bird", 19), ("grace_hopper", 652)])
def test_float_port_of_the_int8_mobilenet_classifies_like_it(picture, label):
    from mixdistill.teachers.quantized_torchscript import float_mobilenet_v2, load_int8

    port, int8 = float_mobilenet_v2(INT8_MOBILENET), load_int8(INT8_MOBILENET)
    x = _picture(picture)
    with torch.no_grad():
        a, b = port(x), int8(x)  # the int8 network takes one image at a time (a batch crashed it)
    assert int(b.argmax()) == label
    assert int(a.argmax()) == label
    # int8 activations against float ones: the figures measured are 0.09, 0.11, 0.08 (PIL's antialiased
    # resize instead of torch's gives the bird 0.17, so the resize is part of the test)
    assert float((a - b).norm() / b.norm()) <= 0.15


@needs_int8
def test_torchvision_mobilenet_teacher_taps_and_provenance():
    t = build_teacher(f"torchvision:mobilenet_v2@{INT8_MOBILENET}", None, 256, 256)
    assert t.taps == ["features.3", "features.6", "features.10"]
    assert t.shapes == {"features.3": (24, 64, 64), "features.6": (32, 32, 32), "features.10": (64, 16, 16)}
    assert t.scaling["std"] == [0.229, 0.224, 0.225]
    assert t.source["weightsFormat"] == "int8-torchscript-dequantized"
    assert "b8f52b772b98a48f4d3bb14e8eb977724a66836b" in t.source["origin"]
    assert "BSD-3-Clause" in t.source["license"]
    assert not any(isinstance(m, torch.nn.ReLU6) for m in t.module.modules())


@needs_npy
def test_resnet18_teacher_from_folded_npy():
    t = build_teacher(f"torchvision:resnet18@{FOLDED_RESNET18}", None, 256, 256)
    assert t.shapes == {"layer1": (64, 64, 64), "layer2": (128, 32, 32), "layer3": (256, 16, 16)}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in t.module.modules())
    assert all(m.bias is not None for m in t.module.modules() if isinstance(m, torch.nn.Conv2d))
    assert "85b5947966eba80da43a2341a0968a80797a5019" in t.source["origin"]
    assert "states no license" in t.source["license"]
    # conv1 computes exactly the folded weights: its output at the centre is the filter times the patch plus bias
    import numpy as np

    w, b = np.load(FOLDED_RESNET18 / "conv1.weight.npy"), np.load(FOLDED_RESNET18 / "conv1.bias.npy")
    x = torch.rand(1, 3, 32, 32)
    conv1 = t.module.stages[0][0]
    got = conv1(x)[0, :, 8, 8]
    want = (torch.from_numpy(w) * x[0, :, 13:20, 13:20]).sum(dim=(1, 2, 3)) + torch.from_numpy(b)
    assert torch.allclose(got, want, atol=1e-5)


@needs_npy
def test_resnet18_from_folded_npy_refuses_layer4_and_says_why():
    with pytest.raises(ValueError, match="layer4"):
        build_teacher(f"torchvision:resnet18@{FOLDED_RESNET18}", ["layer3", "layer4"], 128, 128)


def test_folded_npy_folder_must_fit_the_network(tmp_path):
    import numpy as np

    np.save(tmp_path / "conv1.weight.npy", np.zeros((64, 3, 7, 7), np.float32))
    np.save(tmp_path / "conv1.bias.npy", np.zeros(64, np.float32))
    np.save(tmp_path / "layer1.0.conv1.weight.npy", np.zeros((64, 64, 3, 3), np.float32))
    with pytest.raises(ValueError, match="layer1.0.conv1"):
        build_teacher(f"torchvision:resnet18@{tmp_path}", ["layer1"], 64, 64)


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
