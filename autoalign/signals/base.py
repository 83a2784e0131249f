"""The one shape of a signal: (prompts, samples, policy) -> feedback records and training data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample


class Artifact(BaseModel):
    """Something a stage produces besides records (a reward model, a corrector, a constitution): its ``kind``
    (what it is, so a later stage can ask for "the latest reward_model") and its ``path`` relative to the stage
    directory (a run directory can be moved). Declared in the stage's result and kept in its manifest: the loop
    finds artifacts there, never in a user cache or an untyped stats key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    path: str


@dataclass(frozen=True)
class StageContext:
    """What the loop tells a stage about where it runs. ``dir``: the stage's own directory, where it saves its
    artifacts (``artifact_dir``); ``artifacts``: what this same stage (this signal, at this position of the recipe)
    declared in earlier rounds, by name, as absolute paths, so a signal that trains a model once (RAFT's reward
    model) finds it again after a resume, when its own memory is gone."""

    dir: Path
    round: int
    seed: int
    artifacts: Mapping[str, Path] = field(default_factory=dict)

    def artifact_dir(self, name: str) -> Path:
        return self.dir / name


class SignalResult(BaseModel):
    """Feedback on samples (``labels``) and the training data it implies (``sft`` and/or ``preferences``).
    ``stats`` holds counts for the stage manifest (agreement rates, unparseable verdicts, skipped samples ...);
    ``artifacts`` declares what the signal saved under its ``StageContext.dir`` (name -> ``Artifact``)."""

    labels: list[Label] = Field(default_factory=list)
    sft: list[SFTExample] = Field(default_factory=list)
    preferences: list[Preference] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    artifacts: dict[str, Artifact] = Field(default_factory=dict)


class Signal(Protocol):
    """``name`` identifies the signal in records. ``__call__`` must be deterministic given its inputs (seeded);
    ``ctx`` is None outside a run (a unit test, a notebook): a signal then keeps what it makes in memory only."""

    name: str

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult: ...


def group_samples(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Samples by prompt id, each list in sample-index order."""
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.prompt_id, []).append(s)
    for g in groups.values():
        g.sort(key=lambda s: s.index)
    return groups
