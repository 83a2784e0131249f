"""LLM-as-a-judge as a signal: a judge model scores every sample pointwise under a principle of the constitution;
the best-vs-worst response of each prompt becomes a DPO pair, and (optionally) the best one an SFT target.

Why best-vs-worst: it is the pair construction of Self-Rewarding LMs (Yuan et al. 2024, sec. 2.3), and the one
with the largest judged margin, which a noisy judge gets right most often.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

from autoalign.models.base import LM
from autoalign.records import Prompt, Sample
from autoalign.scoring import spread_check
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    best_vs_worst,
    check_choice,
    constitution_from,
    judge_label,
    score_samples,
    sft_example,
    tally,
)
from autoalign.signals.model_feedback.judges import PointwiseJudge


class LLMJudge:
    """Pointwise judging of the round's samples. ``judge``: ``policy`` or a model URI. ``format``: ``yes_no`` (the
    constitution's judge template) or ``rubric5`` (Self-Rewarding's additive rubric). ``mode``: ``logprob`` (one
    scoring call) or ``generate`` (``samples`` sampled verdicts, averaged; unreadable ones tallied, never fatal).
    ``output``: ``dpo`` (best-vs-worst pairs with a score gap of at least ``min_gap``), ``sft`` (each prompt's best
    response when it scores at least ``sft_threshold``) or ``both``. ``samples``: sampled verdicts per response
    when ``mode`` is ``generate``; ``normalise``: a verdict is the expected score under the answer choices'
    renormalised probabilities (false: P(Yes) unrenormalised, yes/no only)."""

    name = "llm_judge"

    def __init__(
        self,
        judge: str = "policy",
        format: Literal["yes_no", "rubric5"] = "yes_no",
        mode: Literal["logprob", "generate"] = "logprob",
        samples: int = 3,
        temperature: float = 1.0,
        max_new_tokens: int = 8,
        normalise: bool = True,
        principles: Literal["axis", "any"] = "axis",
        constitution: str | None = None,
        output: Literal["dpo", "sft", "both"] = "dpo",
        min_gap: float = 0.1,
        sft_threshold: float = 0.5,
        noise_floor: float = 0.0,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("principles", principles, ("axis", "any"))
        check_choice("output", output, ("dpo", "sft", "both"))
        check_choice("format", format, ("yes_no", "rubric5"))
        check_choice("mode", mode, ("logprob", "generate"))
        if samples < 1 or max_new_tokens < 1:
            raise ValueError("samples and max_new_tokens must be >= 1")
        self.judge = ModelRef(judge, load_lm, "judge")
        self.constitution = constitution_from(constitution)
        self.judge_options: dict[str, Any] = dict(format=format, mode=mode, samples=samples, temperature=temperature,
                                                  max_new_tokens=max_new_tokens, seed=seed, normalise=normalise)
        self.principles, self.output, self.min_gap, self.sft_threshold = principles, output, min_gap, sft_threshold
        self.seed, self.noise_floor = seed, noise_floor

    def make_judge(self, policy: LM) -> PointwiseJudge:
        return PointwiseJudge(self.judge.get(policy), self.constitution, **self.judge_options)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        judge = self.make_judge(policy)
        scored = score_samples(judge, prompts, samples, self.seed, self.principles)
        labels = [judge_label(x, self.name, judge.lm.uri) for x in scored]
        stats: dict = {**tally([x.verdict for x in scored]), "judge": judge.lm.uri}
        valid = [x.verdict.value for x in scored if x.verdict.value is not None]
        stats["mean_score"] = round(sum(valid) / len(valid), 4) if valid else None
        stats.update(spread_check(valid, self.noise_floor))
        result = SignalResult(labels=labels)
        if stats["below_noise_floor"]:  # the judge's differences are noise: no pair, no target
            result.stats = {**stats, "pairs": 0, "sft": 0}
            return result
        if self.output in ("dpo", "both"):
            prefs, reasons = best_vs_worst(scored, prompts, self.name, self.min_gap)
            result.preferences.extend(prefs)
            stats.update({"pairs": len(prefs), **{f"no_pair_{k}": v for k, v in reasons.items()}})
        if self.output in ("sft", "both"):
            by_id = {p.id: p for p in prompts}
            best: dict[str, tuple[float, int, str]] = {}
            for x in scored:
                v = x.verdict.value
                if v is None or v < self.sft_threshold:
                    continue
                cur = best.get(x.sample.prompt_id)
                if cur is None or (v, -x.sample.index) > (cur[0], -cur[1]):
                    best[x.sample.prompt_id] = (v, x.sample.index, x.sample.text)
            result.sft.extend(sft_example(by_id[pid], text, self.name) for pid, (_, _, text) in sorted(best.items()))
            stats["sft"] = len(result.sft)
        result.stats = stats
        return result
