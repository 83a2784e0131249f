"""Confidence intervals, calibration and agreement, as pure functions over maintained libraries.

Which library computes what (and where a figure differs from the hand-written code these replaced):

- ``wilson_interval``: statsmodels ``proportion_confint(method="wilson")``; same formula, same figures (to rounding).
- ``bootstrap_interval``: scipy ``stats.bootstrap(method="percentile")`` with a seeded ``numpy`` generator. The
  method is the same (percentile bootstrap over items), the resamples are not: scipy draws them from
  ``numpy.random.default_rng(seed)`` (the hand code used ``random.Random(seed)``) and interpolates between order
  statistics (the hand code took one), so an interval moves by resampling noise, typically < 0.01 at 1000 resamples.
- ``logistic_regression``: scikit-learn ``LogisticRegression`` (Newton-Cholesky solver, no intercept, L2 through C);
  the objective is the same, so the weights agree to the solvers' tolerance.
- ``length_controlled_win_rate``: the fit as above; its interval through ``bootstrap_interval`` (so it too moves by
  resampling noise against the hand code, which drew its own numpy resamples).
- ``cohen_kappa``: scikit-learn ``cohen_kappa_score``; same figures.
- ``expected_calibration_error``: neither scipy, statsmodels nor scikit-learn computes ECE; it stays the definition
  (Guo et al. 2017, eq. 3) in numpy, with the bins of scikit-learn's ``calibration_curve`` (a test checks both agree).
- ``mean_interval`` and ``pass_at_k`` are closed forms of a line each and stay as they were.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # numpy, scipy, statsmodels and scikit-learn are imported lazily, where they are used
    from numpy.typing import NDArray

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); well-behaved at 0, 1 and small n.

    statsmodels' ``proportion_confint(method="wilson")`` at ``alpha = 2 * (1 - Phi(z))``; (0, 1) when n == 0."""
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(successes, n, alpha=float(2 * norm.sf(z)), method="wilson")
    p = successes / n
    # At p = 0 (or 1) the bound is 0 (or 1) only up to rounding: clamp so that 0 <= lo <= p <= hi <= 1 holds.
    return (min(p, max(0.0, float(lo))), max(p, min(1.0, float(hi))))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Mean with a normal-approximation CI (standard error of the mean)."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0, 0.0)
    m = sum(values) / n
    if n == 1:
        return (m, m, m)
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return (m, m - half, m + half)


def bootstrap_interval(
    values: Sequence, statistic: Callable[[list], float], resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(values)``; for figures with no closed form (ECE, composites).

    scipy's ``stats.bootstrap(method="percentile")`` resamples the items' positions (so ``values`` may be any
    objects, and a list of pairs is resampled paired), seeded by ``numpy.random.default_rng(seed)``; ``statistic``
    gets each resample as a list. (0, 0) for no values; one value has no spread: (s, s)."""
    items = list(values)
    if not items:
        return (0.0, 0.0)
    if len(items) == 1:
        s = float(statistic(items))
        return (s, s)
    import numpy as np
    from scipy.stats import bootstrap

    def on_positions(idx: NDArray[Any]) -> float:
        return float(statistic([items[i] for i in idx]))

    res = bootstrap((np.arange(len(items)),), on_positions, n_resamples=resamples, vectorized=False,
                    method="percentile", confidence_level=1 - alpha, rng=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)| over equal-width confidence bins (Guo et al. 2017, eq. 3).

    Bin b holds the confidences in (b/bins, (b+1)/bins], the first bin also 0: the binning of scikit-learn's
    ``calibration_curve(strategy="uniform")``, whose per-bin accuracy and confidence these are."""
    import numpy as np

    c = np.asarray(confidences, dtype=float)
    if c.size == 0:
        return 0.0
    y = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], c)  # as calibration_curve assigns bins
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=y, minlength=bins) - np.bincount(which, weights=c, minlength=bins))
    # |B_b|/n * |acc_b - conf_b| = |sum_{i in b} (y_i - c_i)| / n; empty bins add 0
    return float(gap[count > 0].sum() / c.size)


# ---- added for the public suites (autoalign.evaluate.*) ----------------------------------------------------------
def proportion_metric_args(successes: float, n: int) -> tuple[float, float, float]:
    """(value, lo, hi) of a proportion with its Wilson interval; value 0 with CI (0, 1) when n == 0."""
    lo, hi = wilson_interval(successes, n)
    return (successes / n if n else 0.0, lo, hi)


def logistic_regression(
    features: Sequence[Sequence[float]] | NDArray[Any],
    targets: Sequence[float] | NDArray[Any],
    l2: float = 1e-4,
    iterations: int = 100,
    tol: float = 1e-10,
) -> list[float]:
    """Weights w maximising sum_i [y_i log s(w.x_i) + (1 - y_i) log(1 - s(w.x_i))] - l2/2 |w|^2.

    ``targets`` may be soft labels in [0, 1] (a judge's tie is 0.5), as AlpacaEval fits its GLM on preferences.
    No intercept is added: pass a column of ones. The small L2 keeps the fit finite when the data are separable.
    Fitted by scikit-learn's ``LogisticRegression`` (Newton-Cholesky, ``C = 1 / l2``; no penalty at l2 = 0): a
    soft label y_i becomes the row twice, a win weighted y_i and a loss weighted 1 - y_i, which is the same
    log-likelihood term by term.
    """
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=float)
    y = np.asarray(targets, dtype=float)
    rows, labels = np.vstack([x, x]), np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weights = np.concatenate([y, 1.0 - y])
    model = LogisticRegression(C=1.0 / l2 if l2 > 0 else np.inf, fit_intercept=False, solver="newton-cholesky",
                               max_iter=iterations, tol=tol)
    with warnings.catch_warnings():  # a bootstrap resample can be near-separable; the L2 keeps its fit finite
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(rows, labels, sample_weight=weights)
    return [float(v) for v in model.coef_[0]]


def _lc_fit(preferences: Sequence[float] | NDArray[Any],
            length_diffs: Sequence[float] | NDArray[Any]) -> tuple[float, float]:
    import numpy as np

    d = np.asarray(length_diffs, dtype=float)
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    z = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)  # tanh(std_delta_len), AlpacaEval glm_winrate
    theta, phi = logistic_regression(np.column_stack([np.ones_like(z), z]), preferences)
    return theta, phi


def length_controlled_win_rate(
    preferences: Sequence[float], length_diffs: Sequence[float], resamples: int = 200, seed: int = 0
) -> dict[str, float]:
    """AlpacaEval 2.0's length-controlled win rate (Dubois et al. 2024, arXiv 2404.04475, "length_controlled_minimal").

    ``preferences[i]`` in [0, 1] is how much the judge prefers the model over the reference on item i (1 = model
    wins, 0.5 = tie); ``length_diffs[i]`` = len(model output) - len(reference output). The GLM is
        logit P(model wins) = theta + phi * tanh(delta_len / std(delta_len))           (Dubois et al., eq. 2)
    and the length-controlled win rate is its prediction with the length term at 0: sigmoid(theta). The CI is a
    percentile bootstrap over items (``bootstrap_interval``, refitting the GLM on each resample).
    """
    import numpy as np

    n = len(preferences)
    if n == 0:
        return {"value": 0.0, "lo": 0.0, "hi": 1.0, "phi": 0.0, "raw": 0.0}
    prefs = np.asarray(preferences, dtype=float)
    diffs = np.asarray(length_diffs, dtype=float)
    theta, phi = _lc_fit(prefs, diffs)
    value = 1.0 / (1.0 + math.exp(-theta))

    def lc_rate(idx: list[int]) -> float:
        t, _ = _lc_fit(prefs[idx], diffs[idx])
        return 1.0 / (1.0 + math.exp(-t))

    lo, hi = bootstrap_interval(list(range(n)), lc_rate, resamples=resamples, seed=seed)
    return {"value": value, "lo": min(lo, value), "hi": max(hi, value), "phi": phi, "raw": float(prefs.mean())}


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e): agreement beyond chance between two labelings (Cohen 1960).

    scikit-learn's ``cohen_kappa_score``; 0 for no items, and 1 when both labelings are one and the same label
    (p_e = 1, where the ratio is 0/0)."""
    if len(a) == 0:
        return 0.0
    if len(set(a) | set(b)) == 1:
        return 1.0
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(list(a), list(b)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n - c, k) / C(n, k) from n samples of which c pass (Chen et al. 2021, eq. 1)."""
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mover_interval(parts: Sequence[tuple[float, float, float]],
                   weights: Sequence[float] | None = None) -> tuple[float, float, float]:
    """(value, lo, hi) of ``sum_i w_i * theta_i`` (default: the mean) from each part's (value, lo, hi), by MOVER
    (Zou & Donner 2008, "Construction of confidence limits about effect measures", eq. 6-7; Newcombe's hybrid score
    interval is its two-part case):

        L = T - sqrt(sum_i (w_i t_i - lower_i(w_i theta_i))^2),   U = T + sqrt(sum_i (upper_i(w_i theta_i) - w_i t_i)^2)

    with T = sum_i w_i t_i, where a negative weight swaps a part's bounds. The parts must be estimated on disjoint
    items (independent). With Wilson parts the interval comes from the item counts: it keeps its width when every
    item scores alike, where a bootstrap over items collapses to a point."""
    if not parts:
        return (0.0, 0.0, 0.0)
    w = list(weights) if weights is not None else [1.0 / len(parts)] * len(parts)
    total = sum(wi * v for wi, (v, _, _) in zip(w, parts))
    below = above = 0.0
    for wi, (v, lo, hi) in zip(w, parts):
        low, high = (wi * lo, wi * hi) if wi >= 0 else (wi * hi, wi * lo)
        below += (wi * v - low) ** 2
        above += (high - wi * v) ** 2
    return (total, total - math.sqrt(below), total + math.sqrt(above))
