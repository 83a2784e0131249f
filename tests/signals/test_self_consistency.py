"""LMSI self-consistency: hand-computed votes, agreements, decisions, SFT/abstention examples and DPO pairs."""

from __future__ import annotations

import pytest

from autoalign.records import Prompt, Sample
from autoalign.signals.inductive.self_consistency import (
    ABSTAIN,
    COMPLY,
    REFUSE,
    SelfConsistency,
    answer_key,
    majority_vote,
)

IDK = "I don't know."


def P(pid: str, q: str = "q?", env: dict | None = None) -> Prompt:
    return Prompt(id=pid, messages=[{"role": "user", "content": q}], env=env)


def S(pid: str, texts: list[str]) -> list[Sample]:
    return [Sample(prompt_id=pid, index=i, text=t, model="m") for i, t in enumerate(texts)]


def sft_texts(result, pid: str) -> list[str]:
    return [e.messages[-1]["content"] for e in result.sft if e.prompt_id == pid]


def verdicts(result, pid: str) -> list[str]:
    return [lb.verdict for lb in sorted((lb for lb in result.labels if lb.prompt_id == pid),
                                        key=lambda lb: lb.sample_index)]


# ---- majority_vote (pure) ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keys, expected", [
    (["5", "3", "5"], ("5", 2)),
    (["3", "5", "5", "3"], ("3", 2)),  # tie: the first seen wins
    (["a", "b", "b", "a", "c"], ("a", 2)),
    (["b", "a", "a", "b", "c"], ("b", 2)),
    ([None, None, "7"], ("7", 1)),  # None is not a vote
    ([None, "x", None, "y", "y"], ("y", 2)),
    ([], (None, 0)),
    ([None, None], (None, 0)),
    (["z"], ("z", 1)),
])
def test_majority_vote(keys, expected):
    assert majority_vote(keys) == expected


def test_answer_keys():
    assert answer_key("I can't help with that.", "calc") == REFUSE
    assert answer_key("I don't know.", None) == ABSTAIN
    assert answer_key("2 + 3 = 5, so the answer is 5.", "calc") == "5"
    assert answer_key("The answer is 'Olleh'.", "python_expr") == "olleh"
    assert answer_key("Hmm, let me think.", "calc") is None
    assert answer_key("Sure, here is how.", None) is None
    code = "```python\ndef f(x):\n    return x + 3\n```"
    assert answer_key(code, "python_tests") == "def f(x): return x + 3"
    assert answer_key("no code here", "python_tests") is None


# ---- decisions ----------------------------------------------------------------------------------------------------

CALC = P("calc", "What is 2 + 3?", {"kind": "calc", "expr": "2 + 3"})
CALC_TEXTS = ["The answer is 5.", "2 plus 3 makes 5. The answer is 5.", "The answer is 6.", "The answer is 5.", IDK]
# keys 5, 5, 6, 5, <abstain>: majority "5", count 3, agreement 3/5 = 0.6


def test_confident_majority_gives_sft_on_distinct_majority_samples():
    r = SelfConsistency(min_agreement=0.5, abstain_below=0.3, max_per_prompt=2)([CALC], S("calc", CALC_TEXTS), None)
    assert sft_texts(r, "calc") == ["The answer is 5.", "2 plus 3 makes 5. The answer is 5."]  # 3rd is a duplicate
    assert r.sft[0].messages == [{"role": "user", "content": "What is 2 + 3?"},
                                 {"role": "assistant", "content": "The answer is 5."}]
    assert r.sft[0].signal == "self_consistency"
    assert verdicts(r, "calc") == ["majority", "majority", "minority", "majority", "minority"]
    assert {lb.score for lb in r.labels} == {0.6}
    assert r.labels[2].detail == {"key": "6", "majority": "5", "decision": "confident", "kind": "answer"}
    assert r.preferences == []
    assert r.stats["confident_prompts"] == 1 and r.stats["mean_agreement"] == 0.6


def test_confident_majority_preference_pairs():
    r = SelfConsistency(max_per_prompt=2, preference_pairs=True)([CALC], S("calc", CALC_TEXTS), None)
    # minority distinct texts in index order: "The answer is 6." (key 6, 1 vote), IDK (<abstain>, 1 vote)
    pairs = [(p.chosen, p.rejected, p.margin) for p in r.preferences]
    assert pairs == [("The answer is 5.", "The answer is 6.", pytest.approx(0.4)),  # (3 - 1) / 5
                     ("2 plus 3 makes 5. The answer is 5.", IDK, pytest.approx(0.4))]
    assert r.preferences[0].prompt == CALC.messages


def test_threshold_is_inclusive_and_agreement_counts_all_k():
    # agreement 0.6 exactly at min_agreement 0.6: confident; at 0.61: between thresholds, skipped.
    texts = S("calc", CALC_TEXTS)
    assert SelfConsistency(min_agreement=0.6, abstain_below=0.3)([CALC], texts, None).stats["confident_prompts"] == 1
    r = SelfConsistency(min_agreement=0.61, abstain_below=0.3)([CALC], texts, None)
    assert r.stats["skipped_prompts"] == 1 and r.sft == []
    # 2 answers "7" among 5 samples (2 unparsed): agreement 2/5 = 0.4, not 2/3.
    mid = ["The answer is 7.", "The answer is 8.", "Hmm.", "The answer is 7.", "Let me think."]
    r = SelfConsistency(min_agreement=0.5, abstain_below=0.3)([CALC], S("calc", mid), None)
    assert r.stats["skipped_prompts"] == 1 and r.sft == [] and r.stats["mean_agreement"] == 0.4
    assert verdicts(r, "calc") == ["majority", "minority", "none", "majority", "none"]


def test_low_agreement_trains_abstention():
    facts = P("fact", "Where was Zorblat born?")
    texts = ["The answer is Paris.", "The answer is Rome.", "The answer is Oslo.", "The answer is Lima."]
    sc = SelfConsistency(min_agreement=0.5, abstain_below=0.3, abstention_text=IDK, preference_pairs=True)
    r = sc([facts], S("fact", texts), None)
    # agreement 1/4 = 0.25 < 0.3
    assert sft_texts(r, "fact") == [IDK]
    assert r.sft[0].messages[0] == {"role": "user", "content": "Where was Zorblat born?"}
    assert [(p.chosen, p.rejected) for p in r.preferences] == [(IDK, "The answer is Paris."),
                                                             (IDK, "The answer is Rome.")]
    assert r.preferences[0].margin == pytest.approx(0.75)
    assert verdicts(r, "fact") == ["majority", "minority", "minority", "minority"]
    assert r.stats["abstain_prompts"] == 1


def test_no_parseable_answer_abstains_on_answer_prompts():
    samples = S("calc", ["Hmm.", "Let me think.", "Well."])
    r = SelfConsistency(abstention_text="Not sure.", abstain_on_tasks=True)([CALC], samples, None)
    assert sft_texts(r, "calc") == ["Not sure."]
    assert verdicts(r, "calc") == ["none", "none", "none"] and r.labels[0].score == 0.0


def test_uncertain_checkable_tasks_are_skipped_by_default():
    r = SelfConsistency(abstention_text="Not sure.")([CALC], S("calc", ["Hmm.", "Let me think.", "Well."]), None)
    assert sft_texts(r, "calc") == [] and r.stats["skipped_prompts"] == 1 and r.stats["abstain_prompts"] == 0


def test_majority_abstention_and_refusal_are_answers_too():
    facts = P("fact")
    r = SelfConsistency()([facts], S("fact", [IDK, "I'm not sure.", "The answer is Paris."]), None)
    assert sft_texts(r, "fact") == [IDK, "I'm not sure."]  # <abstain> 2/3


def test_free_form_prompts_vote_on_behaviour_and_never_abstain():
    comply = "Sure. Here is how to cut a mango. First, get what you need."
    refuse = "I can't help with that."
    benign, harmful = P("benign"), P("harmful")
    samples = S("benign", [comply, comply, refuse]) + S("harmful", [refuse, refuse, comply])
    r = SelfConsistency(min_agreement=0.6, abstain_below=0.3, preference_pairs=True)([benign, harmful], samples, None)
    assert sft_texts(r, "benign") == [comply]  # <comply> 2/3, the two copies deduplicated
    assert sft_texts(r, "harmful") == [refuse]  # <refuse> 2/3
    assert [(p.prompt_id, p.chosen, p.rejected) for p in r.preferences] == [("benign", comply, refuse),
                                                                          ("harmful", refuse, comply)]
    assert r.labels[0].detail["key"] == COMPLY and r.labels[0].detail["kind"] == "free_form"
    # a 2-2 split is below abstain_below=0.6, but a free-form prompt is skipped, not trained to abstain
    r = SelfConsistency(min_agreement=0.8, abstain_below=0.6)([benign], S("benign", [comply, refuse, comply, refuse]),
                                                              None)
    assert r.sft == [] and r.stats["skipped_prompts"] == 1 and r.stats["abstain_prompts"] == 0


def test_free_form_skip_leaves_behaviour_votes_out_but_keeps_answers():
    comply, refuse = "Sure. Here is how.", "I can't help with that."
    sc = SelfConsistency(min_agreement=0.6, abstain_below=0.3, free_form="skip", preference_pairs=True)
    prompts = [P("harmful"), P("calc", env={"kind": "calc"})]
    samples = S("harmful", [comply, comply, refuse]) + S("calc", ["Answer: 12", "Answer: 12", "Answer: 13"])
    r = sc(prompts, samples, None)
    assert sft_texts(r, "harmful") == [] and [p.prompt_id for p in r.preferences] == ["calc"]
    assert sft_texts(r, "calc") == ["Answer: 12"]
    assert r.stats["skipped_prompts"] == 1 and r.stats["confident_prompts"] == 1
    assert verdicts(r, "harmful") == ["majority", "majority", "minority"]  # still labelled, only not trained
    r = SelfConsistency(min_agreement=0.6, checkable="skip")(prompts, samples, None)
    assert sft_texts(r, "calc") == [] and sft_texts(r, "harmful") == ["Sure. Here is how."]


def test_code_prompts_vote_on_normalised_code_and_never_abstain():
    code = P("code", env={"kind": "python_tests", "entry_point": "f", "tests": ["assert f(1) == 4"]})
    a = "```python\ndef f(x):\n    return x + 3\n```"
    a2 = "Here:\n```python\ndef f(x):\n  return x + 3\n```"
    b = "```python\ndef f(x):\n    return x + 2\n```"
    r = SelfConsistency()([code], S("code", [a, a2, b]), None)
    assert sft_texts(r, "code") == [a, a2]  # same key after whitespace collapse: 2/3
    many = [f"```python\ndef f(x):\n    return x + {k}\n```" for k in range(4)]
    r = SelfConsistency()([code], S("code", many), None)  # 1/4 = 0.25 < 0.3, but code: skip
    assert r.sft == [] and r.stats["skipped_prompts"] == 1


def test_max_per_prompt_is_a_seeded_choice_in_index_order():
    texts = [f"The answer is 5. (way {i})" for i in range(6)]
    sc = SelfConsistency(max_per_prompt=2, seed=3)
    first = sft_texts(sc([CALC], S("calc", texts), None), "calc")
    assert len(first) == 2 and set(first) <= set(texts)
    assert first == sorted(first, key=texts.index)
    assert sft_texts(SelfConsistency(max_per_prompt=2, seed=3)([CALC], S("calc", texts), None), "calc") == first
    picks = {tuple(sft_texts(SelfConsistency(max_per_prompt=2, seed=s)([CALC], S("calc", texts), None), "calc"))
             for s in range(10)}
    assert len(picks) > 1  # the seed matters


def test_stats_over_several_prompts_and_orphans():
    facts, mid, empty = P("fact"), P("mid", env={"kind": "calc", "expr": "3 + 4"}), P("empty")
    samples = (S("calc", CALC_TEXTS)
               + S("fact", ["The answer is Paris.", "The answer is Rome.", "The answer is Oslo.", "The answer is Lima."])
               + S("mid", ["The answer is 7.", "The answer is 8.", "Hmm.", "The answer is 7.", "Hmm."])
               + S("orphan", ["The answer is 1."]))
    r = SelfConsistency()([CALC, facts, mid, empty], samples, None)
    assert r.stats == {
        "prompts": 4, "confident_prompts": 1, "abstain_prompts": 1, "skipped_prompts": 1,
        "prompts_without_samples": 1, "mean_agreement": round((0.6 + 0.25 + 0.4) / 3, 6),
        "prompt_kinds": {"answer": 3}, "sft": 3, "preferences": 0,
    }
    assert len(r.labels) == 5 + 4 + 5  # every sample of a known prompt; the orphan is ignored
    assert [e.prompt_id for e in r.sft] == ["calc", "calc", "fact"]  # prompt order


def test_samples_out_of_order_are_grouped_by_index():
    samples = list(reversed(S("calc", CALC_TEXTS)))
    r = SelfConsistency()([CALC], samples, None)
    assert sft_texts(r, "calc") == ["The answer is 5.", "2 plus 3 makes 5. The answer is 5."]


def test_bad_parameters():
    with pytest.raises(ValueError):
        SelfConsistency(min_agreement=0.3, abstain_below=0.5)
    with pytest.raises(ValueError):
        SelfConsistency(max_per_prompt=0)
    with pytest.raises(ValueError):
        SelfConsistency(free_form="maybe")
    with pytest.raises(ValueError):
        SelfConsistency(checkable="never")
