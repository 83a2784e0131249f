"""The one shape of a signal: (prompts, samples, policy) -> feedback records and training data."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from pydantic import BaseModel, Field

from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample


class SignalResult(BaseModel):
    """Feedback on samples (``labels``) and the training data it implies (``sft`` and/or ``preferences``).
    ``stats`` holds counts for the stage manifest (agreement rates, unparseable verdicts, skipped samples ...)."""

    labels: list[Label] = Field(default_factory=list)
    sft: list[SFTExample] = Field(default_factory=list)
    preferences: list[Preference] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)


class Signal(Protocol):
    """``name`` identifies the signal in records. ``__call__`` must be deterministic given its inputs (seeded)."""

    name: str

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM) -> SignalResult: ...


def group_samples(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Samples by prompt id, each list in sample-index order."""
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.prompt_id, []).append(s)
    for g in groups.values():
        g.sort(key=lambda s: s.index)
    return groups
