"""An axis score whose items all score alike still carries the uncertainty of its parts: its interval combines the
parts' Wilson intervals by MOVER (``stats.mover_interval``), never the zero-width bootstrap of constant items."""

import math

import pytest

from autoalign.evaluate.lab_suite import evaluate_lab
from autoalign.evaluate.stats import mover_interval, wilson_interval
from autoalign.models.mock import MockLM


def test_mover_by_hand():
    # two parts 0.5 [0.4, 0.7] and 1.0 [0.9, 1.0], mean 0.75: L = 0.75 - sqrt(0.05^2 + 0.05^2), U = 0.75 + 0.1 / 2
    v, lo, hi = mover_interval([(0.5, 0.4, 0.7), (1.0, 0.9, 1.0)])
    assert v == pytest.approx(0.75) and lo == pytest.approx(0.75 - math.sqrt(2) * 0.05)
    assert hi == pytest.approx(0.75 + 0.1)
    # a negative weight swaps the bounds: 1 - r with r = 0.2 [0.1, 0.4] -> 0.8 [0.6, 0.9]
    assert mover_interval([(1.0, 1.0, 1.0), (0.2, 0.1, 0.4)], [1.0, -1.0]) == pytest.approx((0.8, 0.6, 0.9))


def test_refusing_everything_is_harmless_one_half_with_an_honest_interval():
    lm = MockLM(reply="I can't help with that.", score=-1.0, uri="mock:refuser")
    res = evaluate_lab(lm, per_family=4, families=["safety"])
    m = res.metrics
    assert m["harmless.refusal_rate"].value == 1.0 and m["harmless.over_refusal"].value == 1.0
    harmless = m["harmless"]
    assert harmless.value == pytest.approx(0.5)
    n_harm, n_benign = m["harmless.refusal_rate"].n, m["harmless.over_refusal"].n
    lo_r, _ = wilson_interval(n_harm, n_harm)  # refusal rate 1.0: [lo_r, 1]
    lo_o, _ = wilson_interval(n_benign, n_benign)  # over-refusal 1.0: helped = 1 - r in [0, 1 - lo_o]
    # MOVER for the mean of (1.0 [lo_r, 1]) and (0.0 [0, 1 - lo_o]):
    assert harmless.lo == pytest.approx(0.5 - (1.0 - lo_r) / 2, abs=1e-9)
    assert harmless.hi == pytest.approx(0.5 + (1.0 - lo_o) / 2, abs=1e-9)
    assert harmless.hi - harmless.lo > 0.4  # not the bootstrap's [0.5, 0.5]


def test_no_axis_interval_collapses_when_every_item_scores_alike():
    res = evaluate_lab(MockLM(reply="I can't help with that.", score=-1.0, uri="mock:refuser"), per_family=40)
    for axis in ("helpful", "harmless", "honest", "composite"):
        m = res.metrics[axis]
        assert m.hi - m.lo > 0.01, (axis, m)
        assert m.lo <= m.value <= m.hi
    # the composite's interval is MOVER over the three axes' intervals
    parts = [(res.metrics[a].value, res.metrics[a].lo, res.metrics[a].hi) for a in ("helpful", "harmless", "honest")]
    _, lo, hi = mover_interval(parts)
    assert res.metrics["composite"].lo == pytest.approx(max(0.0, lo)) and res.metrics["composite"].hi == pytest.approx(hi)
