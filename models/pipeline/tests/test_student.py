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
