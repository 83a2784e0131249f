"""Model-feedback signals on fake models: pair construction, tallies of unreadable verdicts, critique-revise
flows, RLAIF modes, Aligner data and the inference-time wrapper."""

import math

import pytest

from autoalign.models.base import Sampling
from autoalign.signals.inductive.self_rewarding import SelfRewarding
from autoalign.signals.model_feedback.aligner import AlignedLM, AlignerData
from autoalign.signals.model_feedback.common import best_worst
from autoalign.signals.model_feedback.critique_revise import ConstitutionalAI
from autoalign.signals.model_feedback.llm_judge import LLMJudge
from autoalign.signals.model_feedback.rlaif import RLAIF, choose_pairs
from tests.model_feedback.fakes import FakeLM, lab_prompt, samples_for, yes_prob_scorer

GOOD = "The answer is 2."


def _data():
    p1, p2 = lab_prompt(1), lab_prompt(2, axis="harmless", text="How do I pick a lock?")
    s = samples_for(p1, [GOOD, "The answer is 3.", GOOD, "The answer is 5."])
    s += samples_for(p2, ["Sure, first...", "Sure, then..."])
    return [p1, p2], s


def _judge_lm():
    return FakeLM(score=yes_prob_scorer(lambda r: 0.9 if r == GOOD else 0.3 if r.startswith("The answer") else 0.5))


def test_best_worst_hand_values():
    assert best_worst([0.2, None, 0.9, 0.9, 0.2], ["a", "b", "c", "d", "e"], 0.1) == (2, 0)  # first of equals
    assert best_worst([0.2, 0.9], ["a", "b"], 0.8) is None  # gap 0.7 < 0.8
    assert best_worst([0.2, 0.9], ["same", "same "], 0.1) is None  # identical texts
    assert best_worst([0.5, None], ["a", "b"], 0.0) is None  # one scored sample
    assert best_worst([0.5, 0.5], ["a", "b"], 0.0) is None  # equal scores: discarded (Yuan et al.)


def test_self_rewarding_uses_the_policy_as_judge_and_pairs_best_vs_worst():
    prompts, samples = _data()
    policy = _judge_lm()
    out = SelfRewarding(min_gap=0.1)(prompts, samples, policy)
    assert policy.logprob_calls == 1  # the round's policy judged, in one scoring call
    assert len(out.labels) == 6 and {lab.verdict for lab in out.labels} == {"scored"}
    [pref] = out.preferences
    assert (pref.prompt_id, pref.chosen, pref.rejected) == ("p1", GOOD, "The answer is 3.")
    assert pref.margin == pytest.approx(0.6)
    assert out.stats["pairs"] == 1 and out.stats["no_pair_no_gap"] == 1  # p2: both 0.5
    assert out.labels[0].detail["principle"] == "helpful" and out.labels[4].detail["principle"] == "harmless"


def test_unparseable_verdicts_are_tallied_kept_and_skipped():
    prompts, samples = _data()
    replies = {GOOD: "Yes", "The answer is 3.": "I cannot judge this", "The answer is 5.": "No"}

    def reply(prompt, j):
        response = prompt.split("Response: ", 1)[1].split("\n", 1)[0]
        return replies.get(response, "Yes")

    out = SelfRewarding(mode="generate", samples=2, min_gap=0.1)(prompts, samples, FakeLM(reply=reply))
    bad = [lab for lab in out.labels if lab.verdict == "unparseable"]
    assert len(bad) == 1 and bad[0].sample_index == 1 and bad[0].detail["raw"] == ["I cannot judge this"] * 2
    assert out.stats["unparseable"] == 1 and out.stats["unparsed_samples"] == 2 and out.stats["judged"] == 6
    [pref] = out.preferences  # the unreadable sample is skipped: worst is "5" (No), not "3"
    assert pref.rejected == "The answer is 5."


def test_llm_judge_loads_a_named_judge_once_and_can_emit_sft():
    prompts, samples = _data()
    loaded = []

    def load_lm(uri):
        loaded.append(uri)
        return _judge_lm()

    sig = LLMJudge(judge="hf:/some/judge", output="both", sft_threshold=0.8, load_lm=load_lm)
    policy = FakeLM()
    out = sig(prompts, samples, policy)
    sig(prompts, samples, policy)
    assert loaded == ["hf:/some/judge"] and policy.logprob_calls == 0
    assert [e.messages[-1]["content"] for e in out.sft] == [GOOD]  # p2's best (0.5) is under the threshold
    assert out.stats["sft"] == 1 and out.stats["pairs"] == 1


def test_rlaif_pairwise_both_orders_and_ties():
    prompts, samples = _data()

    def ab(prompt, cont):  # prefers the response that is GOOD; indifferent otherwise
        a = prompt.split("Response A: ", 1)[1].split("\n", 1)[0]
        b = prompt.split("Response B: ", 1)[1].split("\n", 1)[0]
        first = 0.9 if a == GOOD and b != GOOD else 0.1 if b == GOOD and a != GOOD else 0.5
        return math.log(first if cont == "A" else 1 - first)

    out = RLAIF(compare="ab", pairs_per_prompt=6, tie_margin=0.1)(prompts, samples, FakeLM(score=ab))
    # p1 has 3 distinct texts -> 3 pairs, two involve GOOD; p2 -> 1 pair, a tie
    assert out.stats["pairs_judged"] == 4 and out.stats["pairs"] == 2 and out.stats["ties"] == 2
    assert all(p.chosen == GOOD for p in out.preferences)
    assert all(p.margin == pytest.approx(0.8) for p in out.preferences)
    assert {lab.verdict for lab in out.labels} >= {"tie"}


def test_rlaif_pointwise_compare_and_direct_mode():
    prompts, samples = _data()
    out = RLAIF(compare="pointwise", pairs_per_prompt=6, tie_margin=0.1)(prompts, samples, _judge_lm())
    # GOOD (0.9) vs a 0.3 answer: sigma(logit .9 - logit .3) = 21/22; "3" vs "5" both 0.3: a tie
    assert out.stats["pairs"] == 2 and out.stats["ties"] == 2
    assert out.preferences[0].margin == pytest.approx(2 * 21 / 22 - 1)
    direct = RLAIF(mode="direct", min_gap=0.1)(prompts, samples, _judge_lm())
    [pref] = direct.preferences
    assert pref.chosen == GOOD and pref.margin == pytest.approx(0.6)


def test_choose_pairs_is_seeded_and_skips_duplicates():
    p, _ = lab_prompt(1), None
    s = samples_for(p, ["a", "b", "a", "c"])
    pairs = choose_pairs(s, 10, seed=0, prompt_id="p1")
    assert len(pairs) == 3 and all(a.text != b.text for a, b in pairs)
    assert choose_pairs(s, 2, seed=0, prompt_id="p1") == choose_pairs(s, 2, seed=0, prompt_id="p1")


def _reviser(prompt, j):
    if prompt.startswith("Principle:") and "Rewrite" in prompt:
        return "Revised: " + ("I can't help with that." if "lock" in prompt else GOOD)
    if "Identify specific ways" in prompt:
        return "It is wrong."
    return "Yes"


def test_constitutional_ai_revises_every_draft_by_default():
    prompts, samples = _data()
    lm = FakeLM(reply=_reviser)
    out = ConstitutionalAI(max_per_prompt=1)(prompts, samples, lm)
    assert out.stats["revised"] == 2 and out.stats["sft"] == 2
    assert [e.messages for e in out.sft][0] == [*prompts[0].messages, {"role": "assistant", "content": "Revised: " + GOOD}]
    assert all("Rewrite the response so that it follows the principle." in g for g in lm.generated)
    assert out.labels[0].detail["draft"] == GOOD


def test_constitutional_ai_with_generated_critique():
    prompts, samples = _data()
    lm = FakeLM(reply=_reviser)
    out = ConstitutionalAI(critique="generate")(prompts, samples, lm)
    revise_asks = [g for g in lm.generated if "Critique: It is wrong." in g]
    assert len(revise_asks) == 2 and out.labels[0].detail["critique"] == "It is wrong."


def test_constitutional_ai_judge_gate_and_improvement_check():
    prompts, samples = _data()
    # drafts: GOOD passes (0.9); "Sure, first..." fails (0.5 < 0.6) and is revised to a refusal judged 0.95
    score = yes_prob_scorer(lambda r: {GOOD: 0.9, "Revised: I can't help with that.": 0.95}.get(r, 0.5))
    lm = FakeLM(reply=_reviser, score=score)
    out = ConstitutionalAI(critique="judge", keep="improved", pass_threshold=0.6)(prompts, samples, lm)
    assert out.stats["passed"] == 1 and out.stats["revised"] == 1 and out.stats["sft"] == 2
    texts = sorted(e.messages[-1]["content"] for e in out.sft)
    assert texts == sorted([GOOD, "Revised: I can't help with that."])
    # a revision judged no better than its draft is dropped
    worse = FakeLM(reply=_reviser, score=yes_prob_scorer(lambda r: 0.4 if r.startswith("Revised") else 0.5))
    out2 = ConstitutionalAI(critique="judge", keep="improved", pass_threshold=0.6)(prompts, samples, worse)
    assert out2.stats["not_improved"] == 2 and out2.stats["sft"] == 0


def test_aligner_data_and_aligned_lm():
    prompts, samples = _data()
    data = AlignerData(max_per_prompt=1)(prompts, samples, FakeLM(reply=_reviser))
    user = data.sft[0].messages[0]["content"]
    assert user.startswith("Edit the following Question-Answer pair") and f"Answer: {GOOD}" in user
    assert data.sft[0].messages[1]["content"] == "Revised: " + GOOD and data.stats["triples"] == 2

    policy = FakeLM(reply=lambda p, j: f"draft {j}", uri="fake:policy")
    corrector = FakeLM(reply=lambda p, j: "fixed " + p.rsplit("Answer: ", 1)[1], uri="fake:corrector",
                       score=lambda p, c: -float(len(p)))
    aligned = AlignedLM(policy, corrector)
    out = aligned.generate([[{"role": "user", "content": "q?"}]], Sampling(n=2, temperature=0.7))
    assert [c.text for c in out[0]] == ["fixed draft 0", "fixed draft 1"]
    assert "Question: q?\nAnswer: draft 0" in corrector.generated[0]
    lp = aligned.logprobs(["q?", "q?"], ["x", "y"])
    assert policy.generate_calls == 2 and len(lp) == 2  # one greedy draft for the repeated prompt
    assert aligned.uri == "aligned:fake:policy+fake:corrector" and aligned.fingerprint() == AlignedLM(policy, corrector).fingerprint()


def test_bad_params_are_rejected():
    with pytest.raises(ValueError, match="critique"):
        ConstitutionalAI(critique="shout")
    with pytest.raises(ValueError, match="tie_margin"):
        RLAIF(tie_margin=0.7)
    with pytest.raises(ValueError, match="mode"):
        SelfRewarding(mode="vibes")
