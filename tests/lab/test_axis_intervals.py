"""An axis score whose items all score alike still carries the uncertainty of its parts."""

import pytest

from autoalign.evaluate.lab_suite import evaluate_lab
from autoalign.evaluate.stats import wilson_interval
from autoalign.models.mock import MockLM


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
    assert harmless.lo == pytest.approx((lo_r + 0.0) / 2, abs=1e-9)
    assert harmless.hi == pytest.approx((1.0 + 1.0 - lo_o) / 2, abs=1e-9)
    assert harmless.hi - harmless.lo > 0.4  # not the bootstrap's [0.5, 0.5]
