"""The one scoring shape: ``(prompts, responses) -> list[Score]``, its pairwise variant, the selection rules that
turn scores into training data, and the adapter that turns any scorer into a TRL reward function.

Why one shape: a judge, a reward model, the execution check, the refusal and toxicity graders and (inside
``autoalign.evaluate`` only) the lab oracle all answer the same question, "how good is this response to this
prompt", so the same object serves as an evaluation metric, as a signal's judge (plus a selection rule) and, through
``reward_function``, as an online-RL reward. A scorer that cannot score an item says so (``value=None`` and a
``reason``) instead of inventing a number; every consumer decides what a missing score means.

``Scorer.scale`` says how a value reads:

- ``unit``: a probability that the response is good, in [0, 1] (a yes/no judge, a test verdict, a vote share):
  thresholds at 1/2 and comparisons both mean something;
- ``reward``: an unbounded real (a Bradley-Terry reward): only comparisons between responses to one prompt mean
  something.

A ``PairwiseScorer`` returns P(response a is better than response b) per item (``scale`` is ``unit``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Literal, Protocol, Sequence, runtime_checkable

from autoalign.models.base import Message
from autoalign.records import Prompt

Scale = Literal["unit", "reward"]
PromptLike = Prompt | list[Message] | str


@dataclass(frozen=True)
class Score:
    """One scored item: ``value`` (None when it could not be scored, then ``reason`` says why) and ``detail``
    (whatever the scorer wants kept: the judge's probabilities, a test's output, the grader's verdict word)."""

    value: float | None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.value is not None and not math.isnan(self.value)

    @staticmethod
    def missing(reason: str, **detail: Any) -> "Score":
        return Score(None, reason, dict(detail))


@runtime_checkable
class Scorer(Protocol):
    """``name`` identifies the scorer in records and reports; ``scale`` is ``unit`` or ``reward`` (module
    docstring). Calls must be deterministic given their inputs (seeded) and batched (one call, many items)."""

    name: str
    scale: Scale

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Score]: ...


@runtime_checkable
class PairwiseScorer(Protocol):
    """``(prompts, responses_a, responses_b) -> list[Score]``: value = P(a is better than b) in [0, 1]."""

    name: str

    def __call__(self, prompts: Sequence[Prompt], responses_a: Sequence[str],
                 responses_b: Sequence[str]) -> list[Score]: ...


# ---- inputs ---------------------------------------------------------------------------------------------------
def as_prompt(p: PromptLike, index: int = 0) -> Prompt:
    """A ``Prompt`` record from a record, a chat (list of messages) or a plain string: what a scorer sees when it
    is called from an evaluation suite or from TRL rather than from the loop."""
    if isinstance(p, Prompt):
        return p
    messages = [{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p]
    return Prompt(id=f"item-{index}", messages=messages, source="external")


def as_prompts(prompts: Sequence[PromptLike]) -> list[Prompt]:
    return [as_prompt(p, i) for i, p in enumerate(prompts)]


def completion_text(completion: str | list[Message]) -> str:
    """TRL hands a reward function plain strings or, for conversational data, ``[{"role": "assistant", ...}]``."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


# ---- the TRL reward adapter -----------------------------------------------------------------------------------
def reward_function(scorer: Scorer, missing: float = 0.0, columns: Sequence[str] = ("axis", "family", "env"),
                    name: str | None = None) -> Callable[..., list[float]]:
    """``scorer`` as a TRL reward function ``(prompts, completions, **kwargs) -> list[float]`` (the shape
    GRPOTrainer and RLOOTrainer call). Dataset columns named in ``columns`` that TRL passes as keyword lists
    (``axis``, ``env`` ...) are put back on the ``Prompt`` records, so a scorer that needs a prompt's environment
    (the execution check) gets it. An item the scorer cannot score gets ``missing``."""

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        records = []
        for i, p in enumerate(prompts):
            rec = as_prompt(p, i)
            extra = {c: kwargs[c][i] for c in columns if c in kwargs and kwargs[c] is not None
                     and i < len(kwargs[c]) and kwargs[c][i] is not None}
            if "prompt_id" in kwargs and kwargs["prompt_id"][i] is not None:
                extra["id"] = kwargs["prompt_id"][i]
            records.append(rec.model_copy(update=extra) if extra else rec)
        scores = scorer(records, [completion_text(c) for c in completions])
        return [float(s.value) if s.ok else missing for s in scores]  # type: ignore[arg-type]

    reward.__name__ = name or f"reward_{scorer.name}".replace(":", "_").replace("/", "_")
    return reward


# ---- selection rules (pure): which scored responses become training data --------------------------------------
def values(scores: Sequence[Score]) -> list[float | None]:
    return [s.value if s.ok else None for s in scores]


def best_vs_worst(scores: Sequence[float | None], texts: Sequence[str], min_gap: float = 0.0) -> tuple[int, int] | None:
    """(best, worst) positions among the scored items (None skipped): the highest and the lowest score, the first
    of equals; no pair when the gap is below ``min_gap`` (and never for equal scores) or the two texts are the same
    (Self-Rewarding LMs, Yuan et al. 2024, sec. 2.3: highest vs lowest scoring response, discarded when equal)."""
    valid = [i for i, s in enumerate(scores) if s is not None]
    if len(valid) < 2:
        return None
    best = max(valid, key=lambda i: (scores[i], -i))
    worst = min(valid, key=lambda i: (scores[i], i))
    gap = scores[best] - scores[worst]  # type: ignore[operator]
    if gap < max(min_gap, 1e-12) or texts[best].strip() == texts[worst].strip():
        return None
    return best, worst


def top_k(scores: Sequence[float | None], k: int, texts: Sequence[str] | None = None,
          min_value: float | None = None) -> list[int]:
    """Positions of the ``k`` highest scores, best first (ties: the earlier item), skipping None, scores below
    ``min_value`` and, with ``texts``, a text already kept (RAFT, Dong et al. 2023: the top responses by reward)."""
    order = sorted((i for i, s in enumerate(scores) if s is not None), key=lambda i: (-scores[i], i))  # type: ignore[operator]
    keep: list[int] = []
    seen: set[str] = set()
    for i in order:
        if len(keep) >= k:
            break
        if min_value is not None and scores[i] < min_value:  # type: ignore[operator]
            continue
        if texts is not None:
            t = texts[i].strip()
            if t in seen:
                continue
            seen.add(t)
        keep.append(i)
    return keep


def threshold(scores: Sequence[float | None], at: float) -> list[int]:
    """Positions whose score is at least ``at`` (rejection sampling / ReST's filter, Gulcehre et al. 2023)."""
    return [i for i, s in enumerate(scores) if s is not None and s >= at]


def vote(keys: Sequence[Hashable | None]) -> tuple[Hashable | None, float]:
    """The most common non-None key and its share of all items (ties: the first seen), e.g. the majority answer
    of self-consistency (Wang et al. 2023) and its agreement; (None, 0.0) when nothing is countable."""
    counted = Counter(k for k in keys if k is not None)
    if not counted or not keys:
        return None, 0.0
    top = max(counted.values())
    winner = next(k for k in keys if k is not None and counted[k] == top)
    return winner, top / len(keys)



# ---- a judge's noise is not data --------------------------------------------------------------------------------
CONSTANT_SPREAD = 0.01  # below this standard deviation of a round's scores, a judge looks constant: always warned


def spread_check(values: Sequence[float | None], noise_floor: float) -> dict[str, Any]:
    """How much a round's scores spread (population standard deviation of the valid ones, ``statistics.pstdev``)
    and whether that clears ``noise_floor``: a signal emits no pair or target from scores that do not spread beyond
    the floor the recipe sets, since their differences are the judge's noise, not a preference. A spread below
    ``CONSTANT_SPREAD`` is warned about whatever the floor."""
    import statistics

    valid = [float(v) for v in values if v is not None and not math.isnan(v)]
    sd = statistics.pstdev(valid) if len(valid) >= 2 else 0.0
    out: dict[str, Any] = {"score_spread": round(sd, 6), "noise_floor": noise_floor,
                           "below_noise_floor": sd < noise_floor}
    if sd < CONSTANT_SPREAD:
        out["warning"] = (f"the judge looks constant: its scores spread by {sd:.4f} (sd over {len(valid)} items), "
                          f"below {CONSTANT_SPREAD}; its preferences are noise")
    return out
