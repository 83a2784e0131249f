"""Confidence intervals and calibration, as pure functions."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # numpy is imported lazily, where it is used
    from numpy.typing import NDArray

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); well-behaved at 0, 1 and small n."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At p = 0 (or 1) centre - half is 0 (or centre + half is 1) only up to rounding: clamp so lo <= p <= hi holds.
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


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
    values: Sequence, statistic, resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(values)``; for figures with no closed form (ECE, composites)."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    stats = sorted(statistic([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    return (stats[int(alpha / 2 * resamples)], stats[min(resamples - 1, int((1 - alpha / 2) * resamples))])


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)| over equal-width confidence bins (Guo et al. 2017, eq. 3)."""
    n = len(confidences)
    if n == 0:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if (lo < c <= hi) or (b == 0 and c == 0.0)]
        if idx:
            acc = sum(bool(correct[i]) for i in idx) / len(idx)
            conf = sum(confidences[i] for i in idx) / len(idx)
            total += len(idx) / n * abs(acc - conf)
    return total


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
    """Weights w maximising sum_i [y_i log s(w.x_i) + (1 - y_i) log(1 - s(w.x_i))] - l2/2 |w|^2, by Newton's method.

    ``targets`` may be soft labels in [0, 1] (a judge's tie is 0.5), as AlpacaEval fits its GLM on preferences.
    No intercept is added: pass a column of ones. The small L2 keeps the fit finite when the data are separable.
    """
    import numpy as np

    x = np.asarray(features, dtype=float)
    y = np.asarray(targets, dtype=float)
    w = np.zeros(x.shape[1])
    eye = np.eye(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (y - p) - l2 * w
        hess = (x.T * (p * (1 - p))) @ x + l2 * eye
        step = np.linalg.solve(hess, grad)
        w = w + step
        if float(np.max(np.abs(step))) < tol:
            break
    return [float(v) for v in w]


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
    percentile bootstrap over items (refitting the GLM each time).
    """
    import numpy as np

    n = len(preferences)
    if n == 0:
        return {"value": 0.0, "lo": 0.0, "hi": 1.0, "phi": 0.0, "raw": 0.0}
    theta, phi = _lc_fit(preferences, length_diffs)
    value = 1.0 / (1.0 + math.exp(-theta))
    rng = np.random.default_rng(seed)
    prefs = np.asarray(preferences, dtype=float)
    diffs = np.asarray(length_diffs, dtype=float)
    boots = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        t, _ = _lc_fit(prefs[idx], diffs[idx])
        boots.append(1.0 / (1.0 + math.exp(-t)))
    boots.sort()
    lo = boots[int(0.025 * resamples)]
    hi = boots[min(resamples - 1, int(0.975 * resamples))]
    return {"value": value, "lo": min(lo, value), "hi": max(hi, value), "phi": phi, "raw": float(prefs.mean())}


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e): agreement beyond chance between two labelings (Cohen 1960)."""
    n = len(a)
    if n == 0:
        return 0.0
    labels = set(a) | set(b)
    p_o = sum(x == y for x, y in zip(a, b)) / n
    p_e = sum((sum(x == k for x in a) / n) * (sum(y == k for y in b) / n) for k in labels)
    return 1.0 if p_e == 1 else (p_o - p_e) / (1 - p_e)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n - c, k) / C(n, k) from n samples of which c pass (Chen et al. 2021, eq. 1)."""
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod
