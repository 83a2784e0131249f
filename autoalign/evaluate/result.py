"""What every suite returns: metrics with 95% confidence intervals and counts, plus transcripts to show."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# "signal": how well a training signal (a judge, a reward model, a vote) agrees with the lab oracle; not a 3H axis
MetricAxis = Literal["helpful", "harmless", "honest", "composite", "signal"]


class Metric(BaseModel):
    """One figure. ``lo``/``hi`` bound its 95% CI; ``n`` is the sample count behind it; ``scorer`` names what
    produced it (``oracle``, ``exact-match``, ``refusal-regex``, ``judge:<uri>`` ...)."""

    value: float
    lo: float
    hi: float
    n: int
    axis: MetricAxis  # "signal" is not a 3H axis (see MetricAxis)
    scorer: str
    higher_is_better: bool = True
    description: str = ""


class Transcript(BaseModel):
    """One prompt, the model's response and the verdict on it."""

    suite: str
    item_id: str
    prompt: str
    response: str
    verdict: str
    detail: dict[str, Any] = Field(default_factory=dict)


class SuiteResult(BaseModel):
    suite: str
    model: str
    metrics: dict[str, Metric]
    transcripts: list[Transcript] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
