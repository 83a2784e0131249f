"""The lab world's learnability properties (issue 11): held-out items recombine parts seen in training, most
failures in the corpus are dispositions, the teacher's corpus is clean and mostly judging."""

from __future__ import annotations

import random

from autoalign.lab.corpus import (
    DEFLECTIONS,
    TEACHER_MIX,
    TEACHER_RATES,
    BehaviourRates,
    CorpusConfig,
    bad_rate,
    bad_response,
    build_corpus,
)
from autoalign.lab.world import sample, tasks
from autoalign.lab.world.common import split_of
from autoalign.lab.world.harmless import HARM_VERBS, KIND_VERBS, MAKE_VERBS, PEOPLE, THINGS, is_harmful
from autoalign.lab.world.helpful import units_step


def test_units_step_by_hand():
    assert units_step(57, 5, "+") == "7 + 5 = 12. "
    assert units_step(53, 8, "-") == "13 - 8 = 5. "  # the borrow shows as the ten it takes
    assert units_step(59, 3, "-") == "9 - 3 = 6. "
    assert units_step(8, 8, "-") == "8 - 8 = 0. "


def test_harm_follows_from_the_parts():
    assert is_harmful("rob", "my neighbour") and is_harmful("make", "a pipe bomb")
    assert not is_harmful("rob", "a rusty lock")  # a harm verb on a thing
    assert not is_harmful("help", "my neighbour")  # a kind verb on a person
    assert not is_harmful("make", "a bath bomb")  # a harmless object with the same head word


def test_held_out_safety_items_recombine_seen_parts():
    train = tasks("safety", 2000, seed=0, split="train")
    ev = tasks("safety", 80, seed=0, split="eval")
    assert not {t.key for t in train} & {t.key for t in ev}
    seen_verbs, seen_targets = {t.truth["verb"] for t in train}, {t.truth["target"] for t in train}
    for t in ev:
        assert split_of(t.key) == "eval"
        assert t.truth["verb"] in seen_verbs and t.truth["target"] in seen_targets, t.question
        assert t.truth["should_refuse"] == is_harmful(t.truth["verb"], t.truth["target"])
    # both look-alike kinds are there: a harm verb on a thing, a kind verb on a person
    benign = [t.truth for t in ev if not t.truth["should_refuse"]]
    harm = {v for vs in HARM_VERBS.values() for v in vs}
    assert any(b["verb"] in harm and b["target"] in THINGS for b in benign)
    assert any(b["verb"] in KIND_VERBS and b["target"] in PEOPLE for b in benign)
    assert any(b["verb"] in MAKE_VERBS for b in benign)


def test_helpful_failures_are_mostly_deflections():
    rates = BehaviourRates()
    rng = random.Random(0)
    task = sample("lists", rng, "train")
    assert 0.0 < bad_rate(task, rates) < 1.0
    outs = [bad_response(task, rng, rates) for _ in range(400)]
    share = sum(o in DEFLECTIONS for o in outs) / len(outs)
    assert 0.6 < share < 0.99  # deflections outnumber slips (rates.deflection * factor >= 0.18 vs slip 0.1)
    assert all(o.startswith("The answer is") for o in outs if o not in DEFLECTIONS)


def test_teacher_corpus_is_clean_and_mostly_judging():
    texts, counts = build_corpus(CorpusConfig(units=3000, seed=1, rates=TEACHER_RATES, mix=dict(TEACHER_MIX)))
    judging = sum(v for k, v in counts.items() if k.startswith(("judge:", "compare:")) or k == "revise")
    assert judging > 0.6 * len(texts)
    noisy = counts.get("judge:noisy", 0) + counts.get("compare:noisy", 0)
    assert noisy < 0.05 * judging
    answers = {k: v for k, v in counts.items() if k.endswith((":good", ":bad"))}
    bad = sum(v for k, v in answers.items() if k.endswith(":bad"))
    assert bad < 0.1 * sum(answers.values())
    assert any("Response A:" in t and "Answer A or B." in t for t in texts)


def test_teacher_continues_small_and_its_digest_follows():
    from dataclasses import replace

    from autoalign.lab import pretrain

    teacher = pretrain.LAB_SIZES["teacher"]
    assert teacher.init_from == "small"
    before = teacher.digest()
    small = pretrain.LAB_SIZES["small"]
    try:
        pretrain.LAB_SIZES["small"] = replace(small, steps=small.steps + 1)
        assert teacher.digest() != before  # a new small base means a new teacher
    finally:
        pretrain.LAB_SIZES["small"] = small
    assert teacher.digest() == before


def test_the_default_constitution_speaks_the_lab_judge_formats():
    # The lab models learn to judge in these words: a drift would make every lab judge read an unseen prompt.
    from autoalign.lab.formats import COMPARE_TEMPLATE, JUDGE_TEMPLATE, PRINCIPLES, REVISE_TEMPLATE
    from autoalign.signals.model_feedback.constitution import default_constitution

    c = default_constitution()
    assert {p.axis: p.text for p in c.principles} == PRINCIPLES
    assert (c.templates.judge, c.templates.compare, c.templates.revise) == (
        JUDGE_TEMPLATE, COMPARE_TEMPLATE, REVISE_TEMPLATE)
