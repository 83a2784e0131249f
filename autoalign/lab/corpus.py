"""The lab pretraining corpus: chat transcripts that mix good and bad behaviour at configured rates, plain
knowledge-base documents, and judging (pointwise and pairwise) / revision examples with label noise.

Why mixed: a base model that always behaved would leave alignment nothing to fix. The corpus has it comply with
some harmful requests, refuse some benign look-alikes, invent facts about people it cannot know, deflect verifiable
tasks with a non-answer and slip on some, while the right behaviour stays common enough that the model can
produce it (so sampling, voting and judging have something to find). Rates vary by group (safety category, task
kind, fact attribute) by factors around their configured means, so a greedy model's behaviour is graded rather
than all-or-nothing, and most of its failures are *dispositions* (what it chooses to do) that a signal can fix,
not missing capability. Under the lab system prompt (``formats.SYSTEM_PROMPT``) the bad rates shrink, which gives
context distillation something real to distil.

The same builder writes the teacher's corpus (``TEACHER_RATES``, ``TEACHER_MIX``): mostly verdicts, comparisons
and revisions with clean labels, and good answers.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field

from autoalign.lab.formats import (
    ABSTENTIONS,
    COMPARE_A,
    COMPARE_B,
    COMPARE_TEMPLATE,
    END,
    JUDGE_NO,
    JUDGE_TEMPLATE,
    JUDGE_YES,
    PRINCIPLES,
    REVISE_TEMPLATE,
    SYSTEM_PROMPT,
    render_chat,
)
from autoalign.lab.world import FAMILIES, Task, sample
from autoalign.lab.world.clauses import BAD_RATE as CLAUSE_BAD_RATE
from autoalign.lab.world.common import unit_hash
from autoalign.lab.world.harmless import knowledge as harm_knowledge
from autoalign.lab.world.honest import document, known_people


@dataclass(frozen=True)
class BehaviourRates:
    """Mean rates of bad behaviour in the corpus's transcripts (per transcript, drawn independently)."""

    harmful_compliance: float = 0.5  # complies with a harmful request
    over_refusal: float = 0.15  # refuses a benign look-alike
    hallucination: float = 0.65  # invents a fact about an unknown person instead of "I don't know."
    deflection: float = 0.5  # answers a verifiable helpful task with a non-answer (DEFLECTIONS)
    slip: float = 0.1  # wrong answer on a verifiable helpful task
    known_abstention: float = 0.05  # says "I don't know." about a known fact
    known_error: float = 0.05  # states a wrong fact about a known person
    clauses: float = 1.0  # multiplies each 3H-clause family's bad rate (world.clauses.BAD_RATE)
    judge_noise: float = 0.15  # flipped labels in judge and comparison examples
    system_share: float = 0.15  # share of transcripts under the lab system prompt
    system_scale: float = 0.25  # bad rates are multiplied by this under the system prompt


# Per-group factors on the mean rates (each averages about 1 over its groups, so a zero rate stays zero).
COMPLIANCE_FACTOR = {"violence": 0.5, "crime": 1.5, "weapons": 0.7, "drugs": 1.2, "fraud": 1.1}
OVER_REFUSAL_FACTOR = {"violence": 1.5, "crime": 1.0, "kindness": 0.3, "objects": 1.2}
# Per-kind factors of the 3H-clause families: models overclaim what they cannot do more than they deny what they can.
CLAUSE_KIND_FACTOR = {("capability", "cannot"): 1.4, ("capability", "can"): 0.6}
HALLUCINATION_FACTOR = {"profession": 1.15, "country": 1.0, "colour": 0.85}
# Non-answers to a verifiable task: unhelpful without being wrong (graded "unparsed": no final answer).
DEFLECTIONS = ["You can work that out yourself.", "That is a good question. Try it step by step.",
               "Let me know if you need anything else."]


def deflection_factor(task: Task) -> float:
    """A fixed factor in [0.4, 1.6) per (family, kind) of helpful task (mean 1), so the base model deflects on
    some kinds of task and answers others: a disposition a signal can change kind by kind."""
    return 0.4 + 1.2 * unit_hash("deflect", task.family, task.kind)


# The teacher's corpus (``lab:teacher``): the same world, good behaviour almost always, clean verdicts, and mostly
# judging, comparison and revision: the role a stronger model plays in RLAIF and distillation.
TEACHER_RATES = BehaviourRates(
    harmful_compliance=0.03, over_refusal=0.03, hallucination=0.03, deflection=0.02, slip=0.02,
    known_abstention=0.01, known_error=0.01, clauses=0.05, judge_noise=0.02,
)
TEACHER_MIX = {
    "arithmetic": 1.0, "strings": 0.6, "lists": 0.5, "code": 0.3, "safety": 1.0, "facts": 0.8,
    "clarify": 0.2, "premise": 0.2, "bias": 0.2, "modesty": 0.15, "capability": 0.15, "document": 0.4,
    "harm_document": 0.2,
    "judge": 6.0, "compare": 3.0, "revise": 1.0,
}
POLICY_MIX = {
    "arithmetic": 4.0, "strings": 2.5, "lists": 2.0, "code": 1.0, "safety": 3.0, "facts": 2.5,
    "clarify": 0.8, "premise": 0.8, "bias": 0.8, "modesty": 0.6, "capability": 0.6,
    "document": 1.0, "harm_document": 0.6, "judge": 2.0, "compare": 0.5, "revise": 0.5,
}


@dataclass(frozen=True)
class CorpusConfig:
    """How many units (transcripts or documents) and of which kinds (relative weights)."""

    units: int = 40_000
    seed: int = 0
    rates: BehaviourRates = field(default_factory=BehaviourRates)
    mix: dict[str, float] = field(default_factory=lambda: dict(POLICY_MIX))

    def to_dict(self) -> dict:
        return asdict(self)


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def bad_rate(task: Task, rates: BehaviourRates) -> float:
    """The probability that the corpus shows a bad response to ``task`` (before any system-prompt scaling)."""
    if task.family == "safety":
        if task.kind == "harmful":
            return _clip(rates.harmful_compliance * COMPLIANCE_FACTOR.get(task.group, 1.0))
        return _clip(rates.over_refusal * OVER_REFUSAL_FACTOR.get(task.group, 1.0))
    if task.family == "facts":
        if task.kind == "unknown":
            return _clip(rates.hallucination * HALLUCINATION_FACTOR.get(task.group, 1.0))
        return _clip(rates.known_abstention + rates.known_error)
    if task.family in CLAUSE_BAD_RATE:
        factor = CLAUSE_KIND_FACTOR.get((task.family, task.kind), 1.0)
        return _clip(rates.clauses * CLAUSE_BAD_RATE[task.family] * factor)
    return _clip(rates.slip + rates.deflection * deflection_factor(task))


def bad_response(task: Task, rng: random.Random, rates: BehaviourRates) -> str:
    """One bad response to ``task``: for a known fact an abstention or a wrong fact, for a helpful task a
    deflection or a slip (in proportion to their rates), else the task's characteristic failure."""
    if task.family == "facts" and task.kind == "known":
        total = rates.known_abstention + rates.known_error
        if total > 0 and rng.random() < rates.known_abstention / total:
            return ABSTENTIONS[0]
    elif task.axis == "helpful" and task.family not in CLAUSE_BAD_RATE:
        deflect = rates.deflection * deflection_factor(task)
        if deflect + rates.slip > 0 and rng.random() < deflect / (deflect + rates.slip):
            return rng.choices(DEFLECTIONS, [0.8, 0.1, 0.1])[0]
    return task.bad(rng)


def respond(task: Task, rng: random.Random, rates: BehaviourRates, system: bool = False) -> tuple[str, bool]:
    """(response, is_good) for one transcript: bad with ``bad_rate`` (scaled down under the system prompt)."""
    p = bad_rate(task, rates) * (rates.system_scale if system else 1.0)
    if rng.random() >= p:
        return task.good, True
    return bad_response(task, rng, rates), False


def _transcript(family: str, rng: random.Random, rates: BehaviourRates, counts: Counter) -> str:
    task = sample(family, rng, "corpus")
    system = rng.random() < rates.system_share
    response, good = respond(task, rng, rates, system)
    counts[f"{family}:{task.kind}:{'good' if good else 'bad'}"] += 1
    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if system else []
    messages += [{"role": "user", "content": task.question}, {"role": "assistant", "content": response}]
    return render_chat(messages)


# The failures judge, comparison and revision examples show are the base policy's (default rates), whichever
# corpus they are written into: a teacher learns to judge the responses it will be asked about.
_POLICY_RATES = BehaviourRates()


def _judged(rng: random.Random) -> tuple[Task, str, bool]:
    """A task with its good or a bad response (half each) and whether that follows the axis's principle."""
    task = sample(rng.choice(FAMILIES), rng, "corpus")
    if rng.random() < 0.5:
        return task, task.good, True
    return task, bad_response(task, rng, _POLICY_RATES), False


def _judge(rng: random.Random, rates: BehaviourRates, counts: Counter) -> str:
    task, response, follows = _judged(rng)
    label = follows if rng.random() >= rates.judge_noise else not follows
    counts[f"judge:{'noisy' if label != follows else 'clean'}"] += 1
    prompt = JUDGE_TEMPLATE.format(principle=PRINCIPLES[task.axis], request=task.question, response=response)
    return render_chat([{"role": "user", "content": prompt},
                        {"role": "assistant", "content": JUDGE_YES if label else JUDGE_NO}])


def _compare(rng: random.Random, rates: BehaviourRates, counts: Counter) -> str:
    """A pairwise verdict: the good response and a bad one in a random order, answered with the better one's
    letter (flipped with ``judge_noise``)."""
    task = sample(rng.choice(FAMILIES), rng, "corpus")
    bad = bad_response(task, rng, _POLICY_RATES)
    good_first = rng.random() < 0.5
    a, b = (task.good, bad) if good_first else (bad, task.good)
    label = good_first if rng.random() >= rates.judge_noise else not good_first
    counts[f"compare:{'noisy' if label != good_first else 'clean'}"] += 1
    prompt = COMPARE_TEMPLATE.format(principle=PRINCIPLES[task.axis], request=task.question, response_a=a,
                                     response_b=b)
    return render_chat([{"role": "user", "content": prompt},
                        {"role": "assistant", "content": COMPARE_A if label else COMPARE_B}])


def _revise(rng: random.Random, rates: BehaviourRates, counts: Counter) -> str:
    task, response, _ = _judged(rng)
    counts["revise"] += 1
    prompt = REVISE_TEMPLATE.format(principle=PRINCIPLES[task.axis], request=task.question, response=response)
    return render_chat([{"role": "user", "content": prompt}, {"role": "assistant", "content": task.good}])


def build_corpus(config: CorpusConfig) -> tuple[list[str], dict[str, int]]:
    """The corpus texts (each ends with ``<|end|>\\n``) and counts of what was written, deterministic in
    ``config``. Every known person gets at least one document so no fact is missing by chance."""
    rng = random.Random(f"lab-corpus-{config.seed}")
    kinds = list(config.mix)
    weights = [config.mix[k] for k in kinds]
    counts: Counter = Counter()
    texts = [document(p, rng) + END + "\n" for p in known_people()]
    counts["document"] += len(texts)
    for kind in rng.choices(kinds, weights, k=max(0, config.units - len(texts))):
        if kind == "document":
            texts.append(document(rng.choice(known_people()), rng) + END + "\n")
            counts["document"] += 1
        elif kind == "judge":
            texts.append(_judge(rng, config.rates, counts))
        elif kind == "harm_document":
            texts.append(harm_knowledge(rng) + END + "\n")
            counts["harm_document"] += 1
        elif kind == "compare":
            texts.append(_compare(rng, config.rates, counts))
        elif kind == "revise":
            texts.append(_revise(rng, config.rates, counts))
        else:
            texts.append(_transcript(kind, rng, config.rates, counts))
    rng.shuffle(texts)
    return texts, dict(sorted(counts.items()))
