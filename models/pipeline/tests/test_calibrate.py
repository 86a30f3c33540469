import numpy as np
import pytest

from mixdistill.calibrate import f1_optimal, f1_optimal_binned, threshold_f1, threshold_from_normal


def brute_f1(normal, defective, t):
    tp = sum(v > t for v in defective)
    fp = sum(v > t for v in normal)
    return 2 * tp / (2 * tp + fp + (len(defective) - tp))


def test_f1_optimal_on_a_hand_case():
    # flagging {2.5, 3, 4, 5}: TP 3, FP 1, FN 0 -> 6/7, better than {4, 5} (4/5) or everything (6/10)
    t, f1 = f1_optimal([0, 1, 2, 3], [2.5, 4, 5])
    assert t == pytest.approx(2.25)
    assert f1 == pytest.approx(6 / 7)
    assert brute_f1([0, 1, 2, 3], [2.5, 4, 5], t) == pytest.approx(f1)


def test_f1_optimal_matches_brute_force_on_random_scores():
    rng = np.random.default_rng(1)
    normal, defective = rng.normal(0, 1, 200), rng.normal(1.5, 1, 60)
    t, f1 = f1_optimal(normal, defective)
    cands = np.concatenate([normal, defective, [normal.min() - 1]])
    assert f1 == pytest.approx(max(brute_f1(normal, defective, c - 1e-9) for c in cands))
    assert brute_f1(normal, defective, t) == pytest.approx(f1)
    tb, f1b = f1_optimal_binned(normal, defective, bins=20000)
    assert f1b == pytest.approx(f1, abs=0.01)
    assert abs(tb - t) < 0.2


def test_a_validation_set_that_separates_nothing_keeps_the_normal_quantile_threshold():
    normal = np.linspace(0, 1, 101)
    base = threshold_from_normal(normal, 0.1)
    # defects scoring below most normal parts: the best F1 flags everything (threshold under the median)
    cal, how = threshold_f1(base, normal, np.array([0.01, 0.02, 0.03]))
    assert cal == base and "kept" in how
    cal, how = threshold_f1(base, normal, np.array([5.0, 6.0]))
    assert 1.0 < cal["threshold"] < 5.0 and cal["f1"] == 1.0 and cal["low"] == base["low"]


def test_f1_needs_both_classes():
    with pytest.raises(ValueError):
        f1_optimal([0.1, 0.2], [])
