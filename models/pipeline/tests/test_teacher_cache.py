"""The teacher-feature cache must give training exactly the targets the teacher would compute on the fly."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixdistill.train import FLIPS, Run, TeacherCache, TrainConfig, flipped, teacher_caches  # noqa: E402


@pytest.fixture(scope="module")
def run():
    torch.manual_seed(0)
    return Run(TrainConfig(data="-", category=None, out="-", width=64, height=64, widths=[16, 16, 32], blocks=1,
                           normalize_intensity={"mean": 110.0, "std": 40.0}))


def test_cached_taps_are_the_teachers_taps_of_each_flipped_view(run):
    images = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    cache = TeacherCache(run, images, batch=4)
    idx = np.array([5, 1, 2])
    for flip in FLIPS:
        with torch.no_grad():
            direct = run.teacher.module(flipped(run.tensors(images[idx]), flip))
        for c, d in zip(cache.get(idx, flip), direct):
            assert c.shape == d.shape
            assert float((c - d).abs().max() / d.abs().max()) < 2e-3  # float16 storage


def test_flips_are_not_interchangeable_with_flipping_features(run):
    # why the cache holds four views: stride-2 'same' padding is asymmetric, so teacher(flip(x)) != flip(teacher(x))
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        a = run.teacher.module(flipped(run.tensors(images), (True, False)))[-1]
        b = run.teacher.module(run.tensors(images))[-1].flip(3)
    assert float((a - b).abs().max()) > 1e-3 * float(a.abs().max())


def test_only_the_unflipped_view_when_augmentation_is_off(run):
    images = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    assert list(TeacherCache(run, images, batch=2, flips=FLIPS[:1]).views) == [(False, False)]


def test_the_size_estimate_is_what_the_cache_holds(run):
    images = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    cache = TeacherCache(run, images, batch=2)
    held = sum(f.numel() * f.element_size() for v in cache.views.values() for f in v) / 2 ** 20
    assert TeacherCache.mib(run, 3, len(FLIPS)) == pytest.approx(held)


def test_no_cache_above_the_cap_with_a_warning_that_names_the_memory_needed(run, caplog):
    images = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    need = TeacherCache.mib(run, 3, len(FLIPS)) + TeacherCache.mib(run, 3, 1)
    with caplog.at_level("INFO", logger="mixdistill.train"):
        assert teacher_caches(run, images, images, 2, FLIPS, cache_mib=need / 2) == (None, None)
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1
    assert f"Raise --cache-mib to {math.ceil(need)}" in warned[0].getMessage()
    train_cache, val_cache = teacher_caches(run, images, images, 2, FLIPS, cache_mib=need)
    assert list(train_cache.views) == list(FLIPS) and list(val_cache.views) == [FLIPS[0]]
