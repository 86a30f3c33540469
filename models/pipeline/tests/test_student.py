import pytest

torch = pytest.importorskip("torch")

from mixdistill.student import Student, Tap, plan_paths, taps_of  # noqa: E402


def taps_mnv2():
    return taps_of({"block_2_add": (24, 64, 64), "block_5_add": (32, 32, 32), "block_9_add": (64, 16, 16)}, 256)


def test_nominal_strides_of_valid_padded_taps():
    taps = taps_of({"activation_5": (192, 60, 60), "mixed2": (288, 29, 29), "mixed5": (768, 14, 14)}, 256)
    assert [t.stride for t in taps] == [4, 8, 16]


@pytest.mark.parametrize("kinds,expected", [
    (["direct"], [("direct", 0, 0), ("direct", 1, 1), ("direct", 2, 2)]),
    (["direct", "skip"], [("direct", 0, 0), ("direct", 1, 1), ("direct", 2, 2), ("skip", 2, 0)]),
    (["direct", "skip", "symmetric"], [("direct", 0, 0), ("direct", 1, 1), ("direct", 2, 2), ("skip", 2, 0), ("symmetric", 0, 2)]),
    (["skip"], [("skip", 2, 0)]),
])
def test_path_plan(kinds, expected):
    assert [(p.kind, p.student_stage, p.teacher_tap) for p in plan_paths(3, kinds)] == expected


def test_unknown_path_kind_is_refused():
    with pytest.raises(ValueError):
        plan_paths(3, ["diagonal"])


@pytest.mark.parametrize("taps", [
    taps_mnv2(),
    taps_of({"activation_5": (192, 60, 60), "mixed2": (288, 29, 29), "mixed5": (768, 14, 14)}, 256),
])
def test_every_path_output_matches_its_teacher_tap(taps):
    paths = plan_paths(len(taps), ["direct", "skip", "symmetric"])
    student = Student(taps, paths, [32, 32, 64], blocks=1)
    outs = student(torch.zeros(2, 3, 256, 256))
    assert len(outs) == len(paths)
    for out, p in zip(outs, paths):
        t = taps[p.teacher_tap]
        assert tuple(out.shape) == (2, t.channels, t.height, t.width), p


def test_cross_layer_heads_resample():
    taps = taps_mnv2()
    paths = plan_paths(3, ["skip", "symmetric"])
    student = Student(taps, paths, [32, 32, 64])
    skip, sym = student.heads
    assert any(type(m).__name__ == "Upsample" for m in skip.modules())
    assert sum(1 for m in sym.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)) == 2


class FakeEncoder(torch.nn.Module):
    """Stands in for a teacher in shape tests: strided convs reaching each tap's size, frozen like a teacher."""

    def __init__(self, taps):
        super().__init__()
        self.taps = taps
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(3, t.channels, 3, padding=1) for t in taps])
        self.bn = torch.nn.BatchNorm2d(3)
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode=True):
        return super().train(False)

    def forward(self, x):
        x = self.bn(x)
        return [torch.nn.functional.adaptive_avg_pool2d(c(x), (t.height, t.width)) for c, t in zip(self.convs, self.taps)]


@pytest.mark.parametrize("taps", [
    taps_mnv2(),
    taps_of({"activation_5": (192, 60, 60), "mixed2": (288, 29, 29), "mixed5": (768, 14, 14)}, 256),
])
def test_reverse_student_outputs_match_every_tap(taps):
    paths = plan_paths(len(taps), ["direct", "skip", "symmetric"])
    student = Student(taps, paths, [32, 32, 64], blocks=2, kind="reverse", encoder=FakeEncoder(taps))
    outs = student(torch.rand(2, 3, 256, 256))
    for out, p in zip(outs, paths):
        t = taps[p.teacher_tap]
        assert tuple(out.shape) == (2, t.channels, t.height, t.width), p
    assert student.describe().startswith("reverse-distillation decoder")


def test_reverse_student_keeps_its_encoder_frozen_and_can_reuse_the_teachers_features():
    taps = taps_mnv2()
    enc = FakeEncoder(taps)
    student = Student(taps, plan_paths(3, ["direct"]), [32, 32, 64], kind="reverse", encoder=enc)
    student.train()
    assert not enc.training and not enc.bn.training
    trainable = {id(p) for p in student.parameters() if p.requires_grad}
    assert trainable and not trainable & {id(p) for p in enc.parameters()}
    student.eval()
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        own = student(x)
        given = student(x, enc(x))
    for a, b in zip(own, given):
        assert torch.equal(a, b)
    # the decoder never sees the image except through the encoder: a different image with the same
    # teacher features gives the same output
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(given, student(torch.zeros_like(x), enc(x))))


def test_student_kind_is_checked():
    with pytest.raises(ValueError):
        Student(taps_mnv2(), plan_paths(3, ["direct"]), [32, 32, 64], kind="sideways")
    with pytest.raises(ValueError):
        Student(taps_mnv2(), plan_paths(3, ["direct"]), [32, 32, 64], kind="reverse")


def test_hard_feature_loss_averages_only_the_worst_fitted_locations():
    from mixdistill.loss import hardest_mean

    d = torch.tensor([[[0.1, 0.4], [0.2, 0.3]]])
    assert float(hardest_mean(d, 1.0)) == pytest.approx(0.25)
    assert float(hardest_mean(d, 0.5)) == pytest.approx(0.35)
    assert float(hardest_mean(d, 0.01)) == pytest.approx(0.4)  # at least one location
