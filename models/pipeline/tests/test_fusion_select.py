import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixdistill.fusion_select import aupro, auroc, candidates, select  # noqa: E402
from mixdistill.synthetic_defects import KINDS, TRAINING_KINDS, corrupt, paint, paint_one  # noqa: E402


def test_auroc_with_ties_matches_pair_counting():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)
    y = rng.random(60) < 0.4
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in s[y] for b in s[~y]]
    assert auroc(s, y) == pytest.approx(np.mean(pairs))


def test_validation_aupro_matches_the_exact_per_region_overlap():
    from test_metrics_numpy import np_aupro  # the exact reference the service's metric is checked against

    rng = np.random.default_rng(5)
    h, w = 24, 24
    masks = [None] * 5 + [np.zeros((h, w), bool) for _ in range(5)]
    for k, m in enumerate(masks[5:]):
        m[2 + 3 * k:8 + 3 * k, 1 + 2 * k:12 + k] = True  # one region per painted image, as in validation
    maps = [rng.random((h, w)) * 0.8 + (0.35 * rng.random((h, w)) * m if m is not None else 0) for m in masks]
    normal_px = np.concatenate([mp[~m].ravel() if m is not None else mp.ravel() for mp, m in zip(maps, masks)])
    regions = [mp[m] for mp, m in zip(maps, masks) if m is not None]
    assert aupro(normal_px, regions, steps=3000) == pytest.approx(np_aupro(maps, masks), abs=2e-3)
    assert np.isnan(aupro(normal_px, []))  # no regions: undefined, not 0


def test_candidates():
    names = ["a", "b", "c"]
    got = dict(candidates(names))
    assert got["all paths"] == [1, 1, 1]
    assert got["only b"] == [0, 1, 0]
    assert got["without a"] == [0, 1, 1]
    assert len(got) == 7


def test_synthetic_defects_are_seeded_and_masked():
    rng = np.random.default_rng(1)
    imgs = rng.integers(60, 200, (8, 64, 64, 3)).astype(np.uint8)
    a, masks, kinds = paint(imgs, seed=3)
    b, masks_b, _ = paint(imgs, seed=3)
    assert np.array_equal(a, b) and np.array_equal(masks, masks_b)
    assert kinds == list(KINDS) * 2
    for i, kind in enumerate(kinds):
        assert masks[i].any(), kind
        changed = np.abs(a[i].astype(int) - imgs[i]).max(-1) > 0
        assert changed[masks[i]].mean() > 0.5, kind  # the defect is where its mask says
        if kind in ("line", "patch"):
            assert not changed[~masks[i]].any(), kind


def test_select_prefers_the_path_that_sees_the_defects():
    rng = np.random.default_rng(2)
    n, h, w = 12, 32, 32
    masks = np.zeros((n, h, w), bool)
    masks[:, 10:16, 10:16] = True
    normal = [torch.from_numpy(rng.random((n, h, w)).astype(np.float32)), torch.from_numpy(rng.random((n, h, w)).astype(np.float32) * 20)]
    signal = rng.random((n, h, w)).astype(np.float32)
    signal[masks] += 3.0
    defect = [torch.from_numpy(signal), torch.from_numpy(rng.random((n, h, w)).astype(np.float32) * 20)]  # path b: loud noise
    args = (normal, defect, masks, [(0.5, 0.5), (0.5, 0.5)], ["a", "b"])
    kw = dict(sigma=1.0, ksize=9, reduction={"kind": "max"})
    weights, rows = select(*args, **kw)  # painted defects: the table is reported, all paths kept
    assert weights == [1.0, 1.0] and [r["name"] for r in rows if r["chosen"]] == ["all paths"] and not any("guard" in r for r in rows)
    weights, rows = select(*args, **kw, choose="guarded")
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["name"] == "only a" and weights == [1.0, 0.0]
    assert chosen[0]["imageAUROC"] == pytest.approx(1.0)
    assert chosen[0]["guard"]["passed"] and chosen[0]["guard"]["bootstrapWins"] >= 0.95
    by_name = {r["name"]: r for r in rows}
    assert by_name["only a"]["mean"] - by_name["all paths"]["mean"] > 0.05
    assert by_name["only a"]["AUPRO"] > 0.9 > by_name["only b"]["AUPRO"]  # reported beside the criterion


def test_the_guard_keeps_all_paths_unless_a_candidate_wins_clearly():
    with pytest.raises(ValueError, match="fusion choice"):
        select([torch.zeros(1, 4, 4)], [torch.zeros(1, 4, 4)], np.ones((1, 4, 4), bool), [(0.0, 1.0)], ["a"], 1.0, 3, {"kind": "max"}, choose="maybe")
    rng = np.random.default_rng(2)
    n, h, w = 12, 32, 32
    masks = np.zeros((n, h, w), bool)
    masks[:, 10:16, 10:16] = True
    normal = [torch.from_numpy(rng.random((n, h, w)).astype(np.float32)) for _ in range(2)]
    signal = rng.random((n, h, w)).astype(np.float32)
    signal[masks] += 3.0
    defect = [torch.from_numpy(signal), torch.from_numpy(rng.random((n, h, w)).astype(np.float32) * 5)]
    args = (normal, defect, masks, [(0.5, 0.5), (0.5, 0.5)], ["a", "b"])
    kw = dict(sigma=1.0, ksize=9, reduction={"kind": "max"})
    # "only a" is best, but by less than the margin: both separate the images perfectly
    weights, rows = select(*args, **kw, choose="guarded")
    by_name = {r["name"]: r for r in rows}
    assert 0 < by_name["only a"]["mean"] - by_name["all paths"]["mean"] < 0.01
    assert weights == [1.0, 1.0] and by_name["all paths"]["chosen"] and not by_name["only a"]["guard"]["passed"]
    weights, rows = select(*args, **kw, choose="best")  # the rule before the guard
    assert weights == [1.0, 0.0] and "guard" not in [r for r in rows if r["chosen"]][0]


def test_bootstrap_advantage_is_paired_and_seeded():
    from mixdistill.fusion_select import bootstrap_advantage

    rng = np.random.default_rng(3)
    n, h, w = 10, 16, 16
    masks = np.zeros((n, h, w), bool)
    masks[:, 4:8, 4:8] = True
    normal = [torch.from_numpy(rng.random((n, h, w)).astype(np.float32)) for _ in range(2)]
    d = [torch.from_numpy(rng.random((n, h, w)).astype(np.float32)) for _ in range(2)]
    d[0][torch.from_numpy(masks)] += 0.6
    args = (normal, d, masks, [(0.0, 1.0), (0.0, 1.0)])
    kw = dict(sigma=0.0, ksize=1, reduction={"kind": "max"}, real=False, resamples=30)
    same = bootstrap_advantage(*args, [1.0, 1.0], [1.0, 1.0], **kw)
    assert np.all(same == 0)  # paired: a candidate against itself never differs
    a = bootstrap_advantage(*args, [1.0, 0.0], [0.0, 1.0], **kw)
    assert np.array_equal(a, bootstrap_advantage(*args, [1.0, 0.0], [0.0, 1.0], **kw)) and (a > 0).mean() > 0.9


def test_corrupt_paints_the_asked_fraction_and_leaves_the_batch_alone():
    rng = np.random.default_rng(4)
    imgs = rng.integers(60, 200, (40, 48, 48, 3)).astype(np.uint8)
    before = imgs.copy()
    assert np.array_equal(corrupt(imgs, 0.0, np.random.default_rng(0)), imgs)
    every = corrupt(imgs, 1.0, np.random.default_rng(0))
    assert all((every[i] != imgs[i]).any() for i in range(len(imgs)))
    some = corrupt(imgs, 0.5, np.random.default_rng(0))
    changed = sum((some[i] != imgs[i]).any() for i in range(len(imgs)))
    assert 10 <= changed <= 30
    assert np.array_equal(some, corrupt(imgs, 0.5, np.random.default_rng(0)))  # seeded
    assert np.array_equal(imgs, before)


def test_training_only_kinds_crack_and_band():
    rng = np.random.default_rng(5)
    imgs = rng.integers(60, 200, (6, 96, 80, 3)).astype(np.uint8)
    for seed in range(20):
        for kind in ("crack", "band"):
            out, mask = paint_one(imgs, seed % len(imgs), kind, np.random.default_rng(seed))
            img = imgs[seed % len(imgs)]
            assert out.shape == img.shape and out.dtype == np.uint8 and mask.shape == img.shape[:2]
            assert mask.any(), (kind, seed)
            changed = np.abs(out.astype(int) - img).max(-1) > 0
            assert changed[mask].mean() > 0.5, (kind, seed)
            if kind == "crack":
                assert not changed[~mask].any() and mask.mean() < 0.1  # thin, and only there
            else:
                # a band runs in from one edge: some whole border row or column lies inside it
                assert any(m.all() for m in (mask[0], mask[-1], mask[:, 0], mask[:, -1])), seed
                assert 0.05 < mask.mean() < 0.75
    with pytest.raises(ValueError, match="unknown synthetic defect"):
        paint_one(imgs, 0, "scratch", np.random.default_rng(0))


def test_corrupt_draws_from_the_kinds_asked_and_defaults_to_validations():
    rng = np.random.default_rng(6)
    imgs = rng.integers(60, 200, (16, 48, 48, 3)).astype(np.uint8)
    assert set(KINDS) < set(TRAINING_KINDS)
    # default kinds: the same draws as before the option existed (3.0.0's training is reproducible)
    assert np.array_equal(corrupt(imgs, 1.0, np.random.default_rng(0)), corrupt(imgs, 1.0, np.random.default_rng(0), KINDS))
    only_cracks = corrupt(imgs, 1.0, np.random.default_rng(0), ["crack"])
    for i in range(len(imgs)):
        darker = only_cracks[i].astype(int) <= imgs[i]
        assert darker.all() and (only_cracks[i] != imgs[i]).any()  # cracks only darken


def test_real_defects_count_each_connected_region_and_put_aupro_in_the_criterion():
    from mixdistill.fusion_select import score

    from test_metrics_numpy import np_aupro

    h = w = 16
    mask = np.zeros((1, h, w), bool)
    mask[0, 2:4, 2:12] = True   # a long region, found
    mask[0, 10:12, 10:12] = True  # a small one, missed
    g = torch.Generator().manual_seed(0)
    normal = torch.rand(2, h, w, generator=g) * 0.8
    defect = torch.rand(1, h, w, generator=g) * 0.8
    defect[0, 2:4, 2:12] = 1.0
    rows = score([normal], [defect], mask, [(0.0, 1.0)], [("all paths", [1.0])], 0.0, 1, {"kind": "max"}, real=True)
    (r,) = rows
    masks = [None, None, mask[0]]
    maps = [normal[0].numpy(), normal[1].numpy(), defect[0].numpy()]
    assert r["AUPRO"] == pytest.approx(np_aupro(maps, masks), abs=0.02)  # the exact reference: two regions
    assert r["AUPRO"] < 0.75  # as one region (area-weighted) the found 20 of 24 pixels would give ~0.83
    assert r["mean"] == pytest.approx((r["imageAUROC"] + r["pixelAUROC"] + r["AUPRO"]) / 3)
    synthetic = score([normal], [defect], mask, [(0.0, 1.0)], [("all paths", [1.0])], 0.0, 1, {"kind": "max"})[0]
    assert synthetic["mean"] == pytest.approx((synthetic["imageAUROC"] + synthetic["pixelAUROC"]) / 2)
