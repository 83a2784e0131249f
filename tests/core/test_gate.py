"""The 3H gate: a round constructed to lose harmlessness is rejected, one that does not is kept; hand-computed
CI arithmetic for suites without per-item data."""

import random

import pytest

from autoalign.evaluate.lab_suite import evaluate_lab, paired_change
from autoalign.gate import GateConfig, decide
from autoalign.lab.oracle import eval_items
from autoalign.models.mock import MockLM

PER_FAMILY = 8


def _policy(uri: str, comply_with_harm: bool = False, flip: int = 0) -> MockLM:
    """A scripted policy that gives each lab eval item its reference answer; with ``comply_with_harm`` it answers
    harmful requests with the task's characteristic failure (compliance); ``flip`` items of the helpful families
    get a wrong answer (noise a round may show without losing anything real)."""
    items = eval_items(PER_FAMILY, 1234)
    rng = random.Random(0)
    answers, flipped = {}, 0
    for t in items:
        if comply_with_harm and t.family == "safety" and t.kind == "harmful":
            answers[t.question] = t.bad(rng)
        elif flipped < flip and t.axis == "helpful":
            answers[t.question], flipped = t.bad(rng), flipped + 1
        else:
            answers[t.question] = t.good
    return MockLM(reply=lambda text, j: answers[text], score=-1.0, uri=uri)


@pytest.fixture(scope="module")
def base():
    return evaluate_lab(_policy("mock:base"), per_family=PER_FAMILY).model_dump()


def test_a_round_that_loses_harmlessness_is_rejected(base):
    worse = evaluate_lab(_policy("mock:worse", comply_with_harm=True), per_family=PER_FAMILY).model_dump()
    assert worse["metrics"]["harmless.refusal_rate"]["value"] < base["metrics"]["harmless.refusal_rate"]["value"]
    decision = decide([base], [worse], GateConfig(), against_round=0)
    assert not decision.kept
    fell = {c.metric for c in decision.regressions}
    assert "harmless" in fell and "helpful" not in fell
    harmless = next(c for c in decision.comparisons if c.metric == "harmless")
    assert harmless.test == "paired-bootstrap" and harmless.hi < 0
    assert "harmless" in decision.reason() and decision.reason().startswith("rejected against round 0")


def test_a_round_that_loses_nothing_real_is_kept(base):
    same = evaluate_lab(_policy("mock:same", flip=1), per_family=PER_FAMILY).model_dump()
    decision = decide([base], [same], GateConfig(), against_round=0)
    assert decision.kept and decision.comparisons, decision.reason()
    assert {c.metric for c in decision.comparisons} >= {"helpful", "harmless", "honest", "composite"}


def test_the_paired_change_of_identical_rounds_is_zero(base):
    items = base["config"]["items"]
    change, lo, hi, n = paired_change(items, items, "harmless")
    assert n == len(items) and change == pytest.approx(0.0) and lo == pytest.approx(0.0) and hi == pytest.approx(0.0)


def _suite(value, lo, hi, higher_is_better=True):
    return {"suite": "xstest", "config": {"headline": ["refusal_rate"]},
            "metrics": {"refusal_rate": {"value": value, "lo": lo, "hi": hi, "n": 50, "axis": "harmless",
                                         "higher_is_better": higher_is_better}}}


def test_ci_rule_for_a_suite_without_items():
    # change -0.30; half-widths 0.05 and 0.05 (each 1.96 SE): interval -0.30 +- sqrt(0.05^2 + 0.05^2)
    # = [-0.371, -0.229] -> fell
    d = decide([_suite(0.60, 0.55, 0.65)], [_suite(0.30, 0.25, 0.35)], GateConfig(), 0)
    [c] = d.comparisons
    assert c.test == "ci-z" and c.change == pytest.approx(-0.30)
    assert c.hi == pytest.approx(-0.30 + (0.05 ** 2 * 2) ** 0.5, abs=1e-5) and c.fell and not d.kept
    # z is in SEs: z = 3.92 doubles the interval
    wide = decide([_suite(0.60, 0.55, 0.65)], [_suite(0.30, 0.25, 0.35)], GateConfig(z=2 * 1.959963984540054), 0)
    assert wide.comparisons[0].hi == pytest.approx(-0.30 + 2 * (0.05 ** 2 * 2) ** 0.5, abs=1e-5)
    # a lower-is-better rate that rises is a loss; one that falls is a gain
    assert not decide([_suite(0.10, 0.05, 0.15, False)], [_suite(0.40, 0.35, 0.45, False)], GateConfig(), 0).kept
    assert decide([_suite(0.40, 0.35, 0.45, False)], [_suite(0.10, 0.05, 0.15, False)], GateConfig(), 0).kept
    # within the noise, and within a tolerance
    assert decide([_suite(0.60, 0.50, 0.70)], [_suite(0.55, 0.45, 0.65)], GateConfig(), 0).kept
    assert decide([_suite(0.60, 0.59, 0.61)], [_suite(0.55, 0.54, 0.56)], GateConfig(tolerance=0.1), 0).kept


def test_variants_and_signal_agreement_are_not_the_policy():
    variant = {**_suite(0.1, 0.05, 0.15), "suite": "lab@best-of-4",
               "config": {"headline": ["refusal_rate"], "variant_of": "lab"}}
    kept = [{**variant, "metrics": {"refusal_rate": {**variant["metrics"]["refusal_rate"], "value": 0.9,
                                                     "lo": 0.85, "hi": 0.95}}}]
    assert decide(kept, [variant], GateConfig(), 0).comparisons == []
