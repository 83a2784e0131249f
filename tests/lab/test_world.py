"""The lab world: deterministic generation, consistent ground truth, and splits that never leak eval items."""

from __future__ import annotations

import random
import re

from autoalign.lab.corpus import CorpusConfig, build_corpus
from autoalign.lab.prompts import LAB_FAMILIES, lab_prompts
from autoalign.lab.world import FAMILIES, FAMILY_AXIS, KINDS, sample, tasks
from autoalign.lab.world.common import split_of
from autoalign.lab.world.helpful import units_step
from autoalign.lab.world.honest import known_people, people


def test_families_are_the_documented_eleven():
    assert LAB_FAMILIES == FAMILIES == ["arithmetic", "strings", "lists", "code", "safety", "facts",
                                        "clarify", "premise", "bias", "modesty", "capability"]


def test_lab_prompts_are_deterministic_and_balanced():
    n = 10 * len(LAB_FAMILIES)
    a = lab_prompts(n, seed=3)
    b = lab_prompts(n, seed=3)
    assert [p.model_dump() for p in a] == [p.model_dump() for p in b]
    assert [p.family for p in a[: len(LAB_FAMILIES)]] == LAB_FAMILIES  # interleaved family by family
    assert {f: sum(p.family == f for p in a) for f in LAB_FAMILIES} == dict.fromkeys(LAB_FAMILIES, 10)
    assert len({p.id for p in a}) == n
    assert lab_prompts(60, seed=4)[0].text != a[0].text
    assert all(p.source == "lab" and p.messages[0]["role"] == "user" for p in a)
    # A prompt shows the question and the environment tool, never the answer.
    arith = next(p for p in a if p.family == "arithmetic")
    assert arith.env["kind"] == "calc" and set(arith.env) == {"kind", "expr"}
    assert {p.env is None for p in a if FAMILY_AXIS[p.family] != "helpful" or p.family in ("clarify", "premise")} \
        == {True}


def test_lab_prompts_subset_of_families():
    ps = lab_prompts(7, seed=0, families=["code", "facts"])
    assert [p.family for p in ps] == ["code", "facts"] * 3 + ["code"]
    assert {p.axis for p in ps} == {"helpful", "honest"}


def test_generation_by_hand():
    # Hand-checked: the same rng state gives the same task, and the truth is what the question asks.
    t1, t2 = sample("arithmetic", random.Random(7), "train"), sample("arithmetic", random.Random(7), "train")
    assert t1 == t2
    a, op, b = t1.env["expr"].split()
    assert t1.truth["answer"] == str(int(a) + int(b) if op == "+" else int(a) - int(b))
    assert a in t1.question and b in t1.question and t1.good.endswith(f"The answer is {t1.truth['answer']}.")
    assert t1.good.startswith(units_step(int(a), int(b), op))  # the worked units column leads the answer
    ts = tasks("lists", 5, seed=1, split="eval")
    assert ts == tasks("lists", 5, seed=1, split="eval")
    for t in ts:
        assert t.truth["answer"] == str(eval(t.env["expr"])).replace(" ", "")  # noqa: S307 - our own literals
    for t in tasks("strings", 6, seed=2, split="train"):
        assert t.truth["answer"] == str(eval(t.env["expr"]))  # noqa: S307
    code = tasks("code", 3, seed=0, split="train")
    for t in code:
        body = t.good.split("```python\n")[1].split("```")[0]
        scope: dict = {}
        exec(body + "\n" + "\n".join(t.env["tests"]), scope)  # noqa: S102 - the reference solution passes
        assert t.env["entry_point"] in t.question


def test_kinds_alternate_to_exact_halves():
    for family, (first, second) in KINDS.items():
        ts = tasks(family, 10, seed=5, split="eval")
        assert [t.kind for t in ts] == [first, second] * 5


def test_train_and_eval_share_no_key_or_prompt():
    for family in FAMILIES:
        train = tasks(family, 150, seed=0, split="train")
        ev = tasks(family, 60, seed=0, split="eval")
        assert all(split_of(t.key) == "eval" for t in ev if t.kind != "unknown")
        assert not {t.key for t in train} & {t.key for t in ev}
        assert not {t.question for t in train} & {t.question for t in ev}
    tq = {p.text for p in lab_prompts(300, seed=1, split="train")}
    eq = {p.text for p in lab_prompts(300, seed=1, split="eval")}
    assert not tq & eq


def test_name_pools_are_disjoint():
    pools = people()
    words = {pool: {w for p in members for w in p.name.split()} for pool, members in pools.items()}
    for a in words:
        for b in words:
            if a < b:
                assert not words[a] & words[b], (a, b)


def test_corpus_never_names_eval_or_train_unknowns_and_holds_out_eval_keys():
    texts, counts = build_corpus(CorpusConfig(units=6000, seed=0))
    corpus = "".join(texts)
    for pool in ("train", "eval"):
        for person in people()[pool]:
            for word in person.name.split():
                assert not re.search(rf"\b{word}\b", corpus), (pool, word)
    for person in known_people():  # every known person is described at least once
        assert person.name in corpus
    # Held-out arithmetic pairs never appear as corpus questions.
    eval_exprs = {t.env["expr"] for t in tasks("arithmetic", 100, seed=0, split="eval")}
    # (the questions users ask, and the requests judge prompts quote; a response's worked units column may be any
    # single-digit step, which is not an item)
    turns = re.findall(r"<\|user\|>\n(.*?)<\|end\|>", corpus, re.DOTALL)
    questions = "\n".join([t for t in turns if not t.startswith("Principle:")]
                          + re.findall(r"^Request: (.*)$", corpus, re.MULTILINE))
    asked = set(re.findall(r"(\d+ [+-] \d+)", questions))
    assert not eval_exprs & asked
    # Held-out safety combinations never appear, though each of their verbs and targets does.
    eval_acts = [t.truth for t in tasks("safety", 40, seed=0, split="eval")]
    # (an act ends its frame, "How do I make a bomb?", so "make a bomb shelter" does not count as "make a bomb")
    assert not any(re.search(rf"\b{re.escape(a['verb'] + ' ' + a['target'])}[.?]", corpus) for a in eval_acts)
    assert all(a["verb"] in corpus and a["target"] in corpus for a in eval_acts)
    assert counts["safety:harmful:bad"] > 0 and counts["facts:unknown:bad"] > 0 and counts["judge:noisy"] > 0


def test_corpus_is_deterministic_and_rates_are_configurable():
    from autoalign.lab.corpus import BehaviourRates

    a, ca = build_corpus(CorpusConfig(units=500, seed=1))
    b, cb = build_corpus(CorpusConfig(units=500, seed=1))
    assert a == b and ca == cb
    _, saint = build_corpus(CorpusConfig(units=3000, seed=1, rates=BehaviourRates(
        harmful_compliance=0.0, over_refusal=0.0, hallucination=0.0, deflection=0.0, slip=0.0,
        known_abstention=0.0, known_error=0.0, clauses=0.0, judge_noise=0.0)))
    assert not any(k.endswith(":bad") for k in saint) and "judge:noisy" not in saint and "compare:noisy" not in saint
