"""Typed records that flow between stages, and the TRL dataset views built from them.

Records are pydantic models stored as JSON lines. A ``Prompt`` carries what a policy may see (and, for
verifiable tasks, the *environment* a signal may execute: a calculator expression, unit tests): never the lab's
ground-truth answer, which only ``autoalign.evaluate`` reads through the oracle.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Axis = Literal["helpful", "harmless", "honest"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompt(Record):
    """A task for the policy. ``env`` describes a tool the environment exposes for this task, for example
    ``{"kind": "calc", "expr": "23 + 58"}`` or ``{"kind": "python_tests", "entry_point": "f", "tests": [...]}``."""

    id: str  # unique within the file (a prompt file row without one gets an id derived from its content)
    messages: list[dict[str, str]]  # the chat so far, ``[{role, content}, ...]``; the last is the user's turn
    source: str = "lab"  # where the prompt came from (a free label, kept in the records)
    axis: Axis | None = None  # helpful, harmless or honest: picks the judge's principle (null: any principle)
    family: str | None = None  # a task family name, for per-family figures (free text)
    env: dict[str, Any] | None = None  # a tool the environment exposes (calc, python_expr, python_tests; see above)

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]


class Sample(Record):
    """One response of a policy to a prompt."""

    prompt_id: str
    index: int
    text: str
    model: str
    finish_reason: str = "stop"
    logprob: float | None = None


ScoreKind = Literal["unit", "reward", "pairwise", "none"]


class Label(Record):
    """Feedback on one sample from one signal. ``verdict`` is a word for people (``correct``, ``majority``,
    ``kept`` ...): nothing measures it. What evaluation measures is structured:

    - ``kind`` says how ``score`` reads: ``unit`` = P(the sample is good) in [0, 1] (a judge's verdict, a test, a
      vote share), ``reward`` = a real that ranks a prompt's samples, ``pairwise`` = P(this sample beats sample
      ``detail["versus"]``), ``none`` = not a judgement of the sample (an unreadable verdict);
    - ``selected``: whether the signal's selection rule kept this sample (or its ``detail["revision"]``, when it
      proposes one) as a training target; None when the signal does not select per sample.
    """

    prompt_id: str
    sample_index: int
    signal: str
    verdict: str
    score: float
    kind: ScoreKind = "none"
    selected: bool | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class SFTExample(Record):
    """A conversation to imitate; TRL's ``messages`` format."""

    prompt_id: str
    messages: list[dict[str, str]]
    signal: str
    weight: float = 1.0
    # the slice of the round's data this example belongs to (``knowledge/<leaf>``), which a training phase's
    # ``data`` selects (``autoalign.train.run.select_rows``); None: no slice
    subset: str | None = None


class Preference(Record):
    """A preference pair; TRL's conversational ``prompt/chosen/rejected`` format."""

    prompt_id: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    signal: str
    margin: float = 1.0


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def sft_rows(examples: list[SFTExample]) -> list[dict]:
    """TRL SFT view: ``{"messages": [...], "weight": w}`` rows. The sft phase weights each example's loss by
    ``weight`` when some weight is not 1 (``autoalign.train.sft``); TRL's own SFTTrainer otherwise."""
    return [{"messages": e.messages, "weight": e.weight, **({"subset": e.subset} if e.subset else {})}
            for e in examples]


def preference_rows(prefs: list[Preference]) -> list[dict]:
    """TRL DPO view, conversational: ``{"prompt": [msgs], "chosen": [assistant], "rejected": [assistant],
    "margin": m}``. ``margin`` is used only where asked for: a dpo phase's ``margin: offset`` (ODPO) or a reward
    model's ``train_reward_model(margin=True)`` (Llama 2's margin); every other trainer drops the column."""
    return [
        {
            "prompt": p.prompt,
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
            "margin": p.margin,
        }
        for p in prefs
    ]
