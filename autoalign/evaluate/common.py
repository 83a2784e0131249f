"""What every public suite shares: its run context, how it asks the model, and how it turns counts into Metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from autoalign.evaluate.result import Metric, MetricAxis, Transcript
from autoalign.evaluate.stats import mean_interval, wilson_interval
from autoalign.models.base import Prompt, Sampling


@dataclass
class SuiteContext:
    """Plain arguments a suite needs; built once by the runner.

    ``limit`` caps the items of each suite (stratified, seeded); ``max_new_tokens`` overrides each suite's own
    generation budget when set; ``max_transcripts`` caps the transcripts a suite keeps for the report.
    """

    lm: Any
    data_dir: Path
    limit: int | None = None
    seed: int = 0
    judge: Any = None
    reference: Any = None
    reward_model: Any = None
    max_new_tokens: int | None = None
    max_transcripts: int = 12
    options: dict[str, Any] = field(default_factory=dict)

    def tokens(self, default: int) -> int:
        return self.max_new_tokens if self.max_new_tokens is not None else default

    def greedy(self, default_tokens: int, stop: Sequence[str] = ()) -> Sampling:
        """Evaluation decodes greedily: the figure then depends on the model, not on sampling luck."""
        return Sampling(n=1, temperature=0.0, max_new_tokens=self.tokens(default_tokens), seed=self.seed,
                        stop=tuple(stop))


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def generate_texts(lm, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
    """One completion text per prompt, batched through the LM protocol in a single call."""
    if not prompts:
        return []
    return [c[0].text for c in lm.generate(list(prompts), sampling)]


def rate(successes: float, n: int, axis: MetricAxis, scorer: str, higher_is_better: bool = True, description: str = "") -> Metric:
    """A proportion with its Wilson 95% interval."""
    lo, hi = wilson_interval(successes, n)
    return Metric(value=successes / n if n else 0.0, lo=lo, hi=hi, n=n, axis=axis, scorer=scorer,
                  higher_is_better=higher_is_better, description=description)


def mean_metric(values: Sequence[float], axis: MetricAxis, scorer: str, higher_is_better: bool = True,
                description: str = "", clip: tuple[float, float] | None = (0.0, 1.0)) -> Metric:
    """A mean with its normal-approximation 95% interval (clipped to the metric's range)."""
    m, lo, hi = mean_interval(list(values))
    if clip is not None:
        lo, hi = max(clip[0], lo), min(clip[1], hi)
    return Metric(value=m, lo=lo, hi=hi, n=len(values), axis=axis, scorer=scorer,
                  higher_is_better=higher_is_better, description=description)


def keep_transcripts(ctx: SuiteContext, rows: Sequence[Transcript]) -> list[Transcript]:
    """``max_transcripts`` rows evenly spaced through the (dataset-ordered) sample: a spread over its strata that
    is the same on every rerun, so a run report can show the same items before and after training."""
    k, n = ctx.max_transcripts, len(rows)
    if n <= k:
        return list(rows)
    return [rows[(i * n) // k] for i in range(k)]


def verdict_counts(verdicts: Sequence[str], classes: Sequence[str]) -> dict[str, int]:
    return {c: sum(v == c for v in verdicts) for c in classes}


def suite_config(ctx: SuiteContext, **extra) -> dict[str, Any]:
    """What a SuiteResult records about how it was produced (enough to rerun it)."""
    return {"limit": ctx.limit, "seed": ctx.seed, "max_new_tokens": ctx.max_new_tokens, **extra}
