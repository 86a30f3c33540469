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


def test_gumbel_quantile_recovers_a_gumbel_sample_and_matches_scipy_on_its_moments():
    from scipy import stats as st

    from mixdistill.calibrate import gumbel_quantile

    sample = st.gumbel_r.rvs(loc=2.0, scale=0.5, size=20000, random_state=np.random.default_rng(3))
    assert gumbel_quantile(sample, 0.99) == pytest.approx(st.gumbel_r.ppf(0.99, loc=2.0, scale=0.5), rel=0.02)
    # the moment fit itself, against scipy's Gumbel with the same mean and standard deviation
    v = np.array([1.0, 1.3, 0.8, 2.2, 1.1, 0.9, 1.6])
    scale = v.std(ddof=1) * np.sqrt(6) / np.pi
    loc = v.mean() - np.euler_gamma * scale
    assert st.gumbel_r.mean(loc, scale) == pytest.approx(v.mean())
    assert gumbel_quantile(v, 0.9) == pytest.approx(st.gumbel_r.ppf(0.9, loc, scale))


def test_prediction_bound_widens_with_fewer_normals_and_covers_new_ones():
    from mixdistill.calibrate import prediction_bound

    rng = np.random.default_rng(4)
    # coverage: a new normal score falls below the 0.95 bound of 8 others about 95 % of the time
    hits = [rng.normal(size=9) for _ in range(4000)]
    assert np.mean([h[8] <= prediction_bound(h[:8], 0.95) for h in hits]) == pytest.approx(0.95, abs=0.015)
    v = rng.normal(size=1000)
    few, many = v[:8], v
    z_few = (prediction_bound(few, 0.95) - few.mean()) / few.std(ddof=1)
    z_many = (prediction_bound(many, 0.95) - many.mean()) / many.std(ddof=1)
    assert z_few == pytest.approx(1.895 * np.sqrt(1 + 1 / 8), abs=1e-3)  # t(7) at 0.95
    assert z_many == pytest.approx(1.6464 * np.sqrt(1 + 1 / 1000), abs=1e-3)


def test_threshold_by_rule():
    from mixdistill.calibrate import RULES, threshold_by_rule

    v = np.linspace(0, 1, 101)
    assert threshold_by_rule(v, "p90")["threshold"] == pytest.approx(0.9)
    assert threshold_by_rule(v, "tukey")["threshold"] == pytest.approx(0.75 + 1.5 * 0.5)
    assert threshold_by_rule(v, "p99+margin", margin=0.2) == {**threshold_from_normal(v, 0.2), "rule": "p99+margin"}
    for rule in RULES:
        cal = threshold_by_rule(v, rule)
        assert cal["low"] == pytest.approx(0.5) and cal["threshold"] > cal["low"] and cal["rule"] == rule
    with pytest.raises(ValueError, match="unknown threshold rule"):
        threshold_by_rule(v, "p97")
