"""autoalign.evaluate.stats: hand-computed values for the library-backed intervals, fits and agreement figures."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from autoalign.evaluate.stats import (
    bootstrap_interval,
    cohen_kappa,
    expected_calibration_error,
    length_controlled_win_rate,
    logistic_regression,
    proportion_metric_args,
    wilson_interval,
)


def _wilson_by_hand(k: float, n: int, z: float) -> tuple[float, float]:
    """Wilson (1927): (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n))


@pytest.mark.parametrize("k,n", [(1, 10), (3, 10), (7, 9), (20, 40), (39, 40), (0.5, 3)])
def test_wilson_matches_the_formula(k, n):
    assert wilson_interval(k, n) == pytest.approx(_wilson_by_hand(k, n, 1.959963984540054), abs=1e-12)
    assert wilson_interval(k, n, z=1.0) == pytest.approx(_wilson_by_hand(k, n, 1.0), abs=1e-12)


def test_wilson_at_the_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 5)
    assert lo == 0.0 and hi == pytest.approx(0.4345, abs=1e-4)  # the refusal rate 0/5 of issue 17
    lo, hi = wilson_interval(5, 5)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.4345, abs=1e-4)
    assert proportion_metric_args(3, 10)[0] == pytest.approx(0.3)


def test_bootstrap_is_seeded_and_covers_the_mean():
    rng = random.Random(3)
    values = [rng.random() for _ in range(120)]

    def mean(s):
        return sum(s) / len(s)

    a = bootstrap_interval(values, mean, resamples=400, seed=5)
    assert a == bootstrap_interval(values, mean, resamples=400, seed=5)
    assert a != bootstrap_interval(values, mean, resamples=400, seed=6)
    m = mean(values)
    se = float(np.std(values, ddof=1)) / math.sqrt(len(values))
    assert a[0] < m < a[1]
    # the percentile interval of a mean is close to the normal one, mean +- 1.96 se
    assert a[0] == pytest.approx(m - 1.96 * se, abs=0.6 * se)
    assert a[1] == pytest.approx(m + 1.96 * se, abs=0.6 * se)


def test_bootstrap_resamples_objects_together_and_handles_tiny_inputs():
    pairs = [(i, -i) for i in range(30)]  # a resample keeps each pair whole: the sums are always 0
    assert bootstrap_interval(pairs, lambda s: sum(a + b for a, b in s), resamples=200) == (0.0, 0.0)
    assert bootstrap_interval([], lambda s: 1.0) == (0.0, 0.0)
    assert bootstrap_interval([0.25], lambda s: s[0]) == (0.25, 0.25)
    assert bootstrap_interval([1.0] * 40, lambda s: sum(s) / len(s)) == (1.0, 1.0)


def test_ece_hand_computed():
    # bins of width 0.5: (0, .5] holds 0.2, 0.4 (acc 1/2, conf .3); (.5, 1] holds 0.9, 0.9 (acc 1, conf .9)
    ece = expected_calibration_error([0.2, 0.4, 0.9, 0.9], [True, False, True, True], bins=2)
    assert ece == pytest.approx(0.5 * abs(0.5 - 0.3) + 0.5 * abs(1.0 - 0.9))
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([0.0, 1.0], [False, True]) == pytest.approx(0.0)


def test_ece_bins_are_scikit_learns_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    conf = np.concatenate([rng.random(200), np.round(rng.random(100), 1), [0.0, 1.0, 0.5, 0.1]])
    correct = rng.random(conf.size) < conf
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    which = np.searchsorted(np.linspace(0, 1, 11)[1:-1], conf)
    counts = np.bincount(which, minlength=10)
    counts = counts[counts > 0]
    by_curve = float(np.sum(counts / conf.size * np.abs(prob_true - prob_pred)))
    assert expected_calibration_error(conf.tolist(), correct.tolist()) == pytest.approx(by_curve, abs=1e-12)


def test_logistic_regression_is_at_the_penalised_optimum():
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(80), rng.normal(size=80), rng.normal(size=80)])
    y = rng.random(80)  # soft labels
    l2 = 0.5
    w = np.asarray(logistic_regression(x, y, l2=l2))
    p = 1 / (1 + np.exp(-(x @ w)))
    gradient = x.T @ (y - p) - l2 * w  # d/dw of sum_i [y log p + (1 - y) log(1 - p)] - l2/2 |w|^2
    assert np.max(np.abs(gradient)) < 1e-6


def test_length_controlled_win_rate_interval_brackets_the_value():
    rng = random.Random(0)
    diffs = [rng.gauss(0.0, 50.0) for _ in range(60)]
    prefs = [1.0 if rng.random() < 0.7 else 0.0 for _ in diffs]
    lc = length_controlled_win_rate(prefs, diffs, resamples=60, seed=1)
    assert lc["lo"] <= lc["value"] <= lc["hi"]
    assert lc == length_controlled_win_rate(prefs, diffs, resamples=60, seed=1)
    assert lc["raw"] == pytest.approx(sum(prefs) / len(prefs))


def test_cohen_kappa_hand_computed():
    # p_o = 4/5; p_e = 3/5 * 2/5 + 2/5 * 3/5 = 12/25; kappa = (4/5 - 12/25) / (1 - 12/25) = 8/13
    assert cohen_kappa([1, 1, 0, 0, 1], [1, 0, 0, 0, 1]) == pytest.approx(8 / 13)
    assert cohen_kappa([], []) == 0.0
    assert cohen_kappa(["a"] * 4, ["a"] * 4) == 1.0  # p_e = 1: full agreement on one label
    assert cohen_kappa([True, False, True, False], [False, True, False, True]) == pytest.approx(-1.0)
