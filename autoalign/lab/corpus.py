"""The lab pretraining corpus: chat transcripts that mix good and bad behaviour at configured rates, plain
knowledge-base documents, and self-judging / revision examples with label noise.

Why mixed: a base model that always behaved would leave alignment nothing to fix. The corpus has it comply with
some harmful requests, refuse some benign look-alikes, invent facts about people it cannot know, and slip on
verifiable tasks, while staying right more often than wrong on those (so majority voting has a signal). Rates
vary by group (safety category, fact attribute) by factors around their configured means, so a greedy model's behaviour is
graded rather than all-or-nothing. Under the lab system prompt (``formats.SYSTEM_PROMPT``) the bad rates shrink,
which gives context distillation something real to distil.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field

from autoalign.lab.formats import (
    ABSTENTIONS,
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
from autoalign.lab.world.honest import document, known_people


@dataclass(frozen=True)
class BehaviourRates:
    """Mean rates of bad behaviour in the corpus's transcripts (per transcript, drawn independently)."""

    harmful_compliance: float = 0.5  # complies with a harmful request
    over_refusal: float = 0.15  # refuses a benign look-alike
    hallucination: float = 0.65  # invents a fact about an unknown person instead of "I don't know."
    slip: float = 0.2  # wrong answer on a verifiable helpful task
    known_abstention: float = 0.05  # says "I don't know." about a known fact
    known_error: float = 0.05  # states a wrong fact about a known person
    judge_noise: float = 0.15  # flipped Yes/No labels in judge examples
    system_share: float = 0.15  # share of transcripts under the lab system prompt
    system_scale: float = 0.25  # bad rates are multiplied by this under the system prompt


# Per-group factors on the mean rates (each averages 1 over its groups, so a zero rate stays zero).
COMPLIANCE_FACTOR = {"violence": 0.6, "weapons": 0.8, "hacking": 1.4, "drugs": 1.0, "fraud": 1.3, "self_harm": 0.9}
OVER_REFUSAL_FACTOR = {"violence": 2.0, "weapons": 4 / 3, "hacking": 1 / 3, "drugs": 1.0, "fraud": 1 / 3,
                       "self_harm": 1.0}
HALLUCINATION_FACTOR = {"profession": 1.15, "country": 1.0, "colour": 0.85}


@dataclass(frozen=True)
class CorpusConfig:
    """How many units (transcripts or documents) and of which kinds (relative weights)."""

    units: int = 40_000
    seed: int = 0
    rates: BehaviourRates = field(default_factory=BehaviourRates)
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "arithmetic": 4.0, "strings": 2.5, "lists": 2.0, "code": 1.0, "safety": 3.0, "facts": 2.5,
            "document": 1.0, "judge": 2.0, "revise": 0.5,
        }
    )

    def to_dict(self) -> dict:
        return asdict(self)


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def bad_rate(task: Task, rates: BehaviourRates) -> float:
    """The probability that the corpus shows the bad response to ``task`` (before any system-prompt scaling)."""
    if task.family == "safety":
        if task.kind == "harmful":
            return _clip(rates.harmful_compliance * COMPLIANCE_FACTOR.get(task.group, 1.0))
        return _clip(rates.over_refusal * OVER_REFUSAL_FACTOR.get(task.group, 1.0))
    if task.family == "facts":
        if task.kind == "unknown":
            return _clip(rates.hallucination * HALLUCINATION_FACTOR.get(task.group, 1.0))
        return _clip(rates.known_abstention + rates.known_error)
    return rates.slip


def respond(task: Task, rng: random.Random, rates: BehaviourRates, system: bool = False) -> tuple[str, bool]:
    """(response, is_good) for one transcript: bad with ``bad_rate`` (scaled down under the system prompt)."""
    p = bad_rate(task, rates) * (rates.system_scale if system else 1.0)
    if rng.random() >= p:
        return task.good, True
    if task.family == "facts" and task.kind == "known":
        # Split a known-fact failure between abstaining and stating a wrong fact.
        total = rates.known_abstention + rates.known_error
        if total > 0 and rng.random() < rates.known_abstention / total:
            return ABSTENTIONS[0], False
    return task.bad(rng), False


def _transcript(family: str, rng: random.Random, rates: BehaviourRates, counts: Counter) -> str:
    task = sample(family, rng, "corpus")
    system = rng.random() < rates.system_share
    response, good = respond(task, rng, rates, system)
    counts[f"{family}:{task.kind}:{'good' if good else 'bad'}"] += 1
    messages = [{"role": "system", "content": SYSTEM_PROMPT}] if system else []
    messages += [{"role": "user", "content": task.question}, {"role": "assistant", "content": response}]
    return render_chat(messages)


def _judged(rng: random.Random) -> tuple[Task, str, bool]:
    """A task with its good or its bad response (half each) and whether that follows the axis's principle."""
    task = sample(rng.choice(FAMILIES), rng, "corpus")
    if rng.random() < 0.5:
        return task, task.good, True
    return task, task.bad(rng), False


def _judge(rng: random.Random, rates: BehaviourRates, counts: Counter) -> str:
    task, response, follows = _judged(rng)
    label = follows if rng.random() >= rates.judge_noise else not follows
    counts[f"judge:{'noisy' if label != follows else 'clean'}"] += 1
    prompt = JUDGE_TEMPLATE.format(principle=PRINCIPLES[task.axis], request=task.question, response=response)
    return render_chat([{"role": "user", "content": prompt},
                        {"role": "assistant", "content": JUDGE_YES if label else JUDGE_NO}])


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
        elif kind == "revise":
            texts.append(_revise(rng, config.rates, counts))
        else:
            texts.append(_transcript(kind, rng, config.rates, counts))
    rng.shuffle(texts)
    return texts, dict(sorted(counts.items()))
