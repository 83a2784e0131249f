"""Judges: verdict parsing, probability scores and position-swap aggregation, with hand-computed values."""

import math

import pytest

from autoalign.signals.model_feedback.judges import (
    JudgeItem,
    PairItem,
    PairwiseJudge,
    PointwiseJudge,
    expected_value,
    pair_from_scores,
    pair_outcome,
    parse_ab,
    parse_rubric,
    parse_yes_no,
    swap_aggregate,
)
from tests.model_feedback.fakes import FakeLM, yes_prob_scorer


# ---- parsing ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("Yes", 1.0), ("No", 0.0), ("no.", 0.0), ("  YES, it does", 1.0), ("The answer is no.", 0.0),
    ("No, not yes", 0.0), ("Maybe", None), ("", None), ("Yesterday", None),
])
def test_parse_yes_no(text, value):
    assert parse_yes_no(text) == value


@pytest.mark.parametrize("text, value", [
    ("Relevant, partly answered. Score: 3", 0.6),
    ("Score: 5", 1.0),
    ("score:0", 0.0),
    ("First Score: 1 ... on reflection Score: 4", 0.8),  # the last one counts
    ("Score: **2**", 0.4),
    ("Score: 4.5", 0.9),
    ("Score: 7", None),  # out of the rubric's range
    ("I would give it four points.", None),
])
def test_parse_rubric(text, value):
    got = parse_rubric(text)
    assert got == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize("text, value", [
    ("A", 1.0), ("B", 0.0), ("B.", 0.0), ("(A)", 1.0), ("A is better", 1.0), ("Response B is better.", 0.0),
    ("I prefer Response A.", 1.0), ("It's a tie.", 0.5), ("Both are equally good", 0.5),
    ("A response that refuses", None), ("garbage", None),
])
def test_parse_ab(text, value):
    assert parse_ab(text) == value


# ---- scores from probabilities -----------------------------------------------------------------------------------
def test_expected_value_is_renormalised_p_yes_and_rubric_mean():
    # P(Yes)=0.3, P(No)=0.1 -> 0.3 / 0.4 = 0.75
    assert expected_value([math.log(0.3), math.log(0.1)], [1.0, 0.0]) == pytest.approx(0.75)
    # rubric points 0..5 with probabilities (.1, 0, 0, .2, .3, .4) -> (0*.1 + 3*.2 + 4*.3 + 5*.4) / 5 = 3.8 / 5
    probs = [0.1, 1e-12, 1e-12, 0.2, 0.3, 0.4]
    assert expected_value([math.log(p) for p in probs], [k / 5 for k in range(6)]) == pytest.approx(0.76, abs=1e-9)


def test_swap_aggregation_cancels_position_bias():
    # order (A,B): P(first wins)=0.8; order (B,A): P(first wins)=0.4, i.e. P(A wins)=0.6 -> mean 0.7
    assert swap_aggregate(0.8, 0.4) == pytest.approx(0.7)
    # a judge that always prefers the first position says nothing about A vs B: 1/2, a tie
    assert swap_aggregate(1.0, 1.0) == pytest.approx(0.5)
    assert pair_outcome(swap_aggregate(1.0, 1.0), tie_margin=0.1) == "tie"
    assert pair_outcome(0.7, 0.1) == "a" and pair_outcome(0.25, 0.1) == "b" and pair_outcome(0.55, 0.1) == "tie"


def test_pair_from_scores_is_bradley_terry_on_log_odds():
    assert pair_from_scores(0.8, 0.5) == pytest.approx(0.8)  # logit(0.5) = 0
    assert pair_from_scores(0.8, 0.2) == pytest.approx(16 / 17)  # odds 4 vs 1/4: 16 / (16 + 1)
    assert pair_from_scores(0.3, 0.3) == pytest.approx(0.5)


# ---- judges on fake models ----------------------------------------------------------------------------------------
def test_logprob_pointwise_judge_reads_p_yes_in_one_call():
    lm = FakeLM(score=yes_prob_scorer(lambda r: 0.9 if "42" in r else 0.2))
    judge = PointwiseJudge(lm, mode="logprob")
    items = [JudgeItem("What is 6 * 7?", "The answer is 42.", "The response answers the request correctly."),
             JudgeItem("What is 6 * 7?", "The answer is 41.", "The response answers the request correctly.")]
    v = judge.score(items)
    assert [x.value for x in v] == [pytest.approx(0.9), pytest.approx(0.2)]
    assert lm.logprob_calls == 1 and len(lm.scored) == 4 and lm.generate_calls == 0
    assert {c for _, c in lm.scored} == {"Yes", "No"}
    prompt = lm.scored[0][0]
    assert prompt.startswith("Principle: The response answers the request correctly.\nRequest: What is 6 * 7?")
    assert prompt.endswith("Does the response follow the principle? Answer Yes or No.")
    # one row per item without renormalisation
    lm1 = FakeLM(score=yes_prob_scorer(lambda r: 0.9))
    v1 = PointwiseJudge(lm1, mode="logprob", normalise=False).score(items)
    assert len(lm1.scored) == 2 and v1[0].value == pytest.approx(0.9)


def test_generative_judge_averages_samples_and_counts_unreadable_ones():
    replies = {0: "Yes", 1: "No", 2: "Yes, it does"}
    lm = FakeLM(reply=lambda p, j: replies[j] if "good" in p else "hmm" if "junk" in p else ["Yes", "???", "No"][j])
    judge = PointwiseJudge(lm, mode="generate", samples=3)
    v = judge.score([JudgeItem("q", "good", "p"), JudgeItem("q", "junk", "p"), JudgeItem("q", "mixed", "p")])
    assert v[0].value == pytest.approx(2 / 3) and v[0].unparsed == 0
    assert v[1].value is None and v[1].unparsed == 3 and v[1].raw == ("hmm", "hmm", "hmm")
    assert v[2].value == pytest.approx(0.5) and v[2].unparsed == 1  # (1 + 0) / 2 parsed


def test_rubric_judge_logprob_expected_points():
    probs = {0: 0.0, 1: 0.0, 2: 0.5, 3: 0.0, 4: 0.5, 5: 0.0}
    lm = FakeLM(score=lambda p, c: math.log(probs[int(c[-1])] or 1e-12))
    v = PointwiseJudge(lm, format="rubric5", mode="logprob").score([JudgeItem("q", "r", "be good")])
    assert v[0].value == pytest.approx(0.6)  # (2 + 4) / 2 = 3 points -> 3 / 5
    assert "additive 5-point scoring system" in lm.scored[0][0] and "be good" in lm.scored[0][0]


def _ab_scorer(prefer: str | None):
    """P(first) from a judge that prefers the response containing ``prefer`` (or, when None, always 'A')."""
    def score(prompt: str, cont: str) -> float:
        a = prompt.split("Response A: ", 1)[1].split("\n", 1)[0]
        first = 0.9 if prefer is None or prefer in a else 0.1
        return math.log(first if cont == "A" else 1 - first)

    return score


def test_pairwise_judge_asks_both_orders():
    item = PairItem("q", "good answer", "bad answer", "p")
    lm = FakeLM(score=_ab_scorer("good"))
    [v] = PairwiseJudge(lm, mode="logprob").compare([item])
    assert v.p_a == pytest.approx(0.9) and v.outcome == "a" and v.consistent
    firsts = [p.split("Response A: ", 1)[1].split("\n", 1)[0] for p, c in lm.scored if c == "A"]
    assert firsts == ["good answer", "bad answer"]  # both orders asked
    [w] = PairwiseJudge(FakeLM(score=_ab_scorer("good")), mode="logprob").compare(
        [PairItem("q", "bad answer", "good answer", "p")])
    assert w.outcome == "b" and w.p_a == pytest.approx(0.1)


def test_position_biased_judge_yields_a_recorded_tie():
    [v] = PairwiseJudge(FakeLM(score=_ab_scorer(None)), mode="logprob").compare([PairItem("q", "x", "y", "p")])
    assert v.p_a == pytest.approx(0.5) and v.outcome == "tie" and not v.consistent


def test_generative_pairwise_unreadable_order_gives_no_outcome():
    lm = FakeLM(reply=lambda p, j: "A" if "Response A: x" in p else "no idea")
    [v] = PairwiseJudge(lm, mode="generate", samples=1).compare([PairItem("q", "x", "y", "p")])
    assert v.p_a is None and v.outcome is None and v.backward.raw == ("no idea",)
    assert v.detail()["ba"]["raw"] == ["no idea"]


def test_a_provider_choice_logprobs_is_used_when_present():
    class OneRow(FakeLM):
        def choice_logprobs(self, prompts, choices):
            self.rows = len(prompts)
            return [[math.log(0.6), math.log(0.2)] for _ in prompts]

    lm = OneRow()
    [v] = PointwiseJudge(lm).score([JudgeItem("q", "r", "p")])
    assert v.value == pytest.approx(0.75) and lm.rows == 1 and lm.logprob_calls == 0
