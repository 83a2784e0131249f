"""Self-Rewarding Language Models (Yuan et al. 2024): the policy judges its own N responses to each prompt, and
the highest-vs-lowest scored pair trains it by DPO; iterating M1 -> M2 -> M3, each round's judge is the newly
trained policy (the loop passes the round's policy to the signal, and the judge is that policy).

Filed under the inductive-bias source (the signal comes from the policy itself). The new prompts of the paper's
AI-feedback data are written by the policy from a seed pool: ``autoalign.signals.imitation.self_instruct``.
The judge's agreement with the lab oracle is measured by evaluation, never read here.
"""

from __future__ import annotations

from typing import Literal

from autoalign.signals.model_feedback.llm_judge import LLMJudge


class SelfRewarding(LLMJudge):
    """``format``: ``yes_no`` (the constitution's judge template: what the lab model was pretrained on) or
    ``rubric5`` (the paper's additive 5-point rubric, for models that can follow it). ``mode``: ``logprob`` (the
    expected verdict from one scoring call) or ``generate`` (``samples`` sampled judgements averaged, as in the
    paper). Pairs: best vs worst per prompt, dropped when the gap is below ``min_gap`` (ties). ``samples``:
    sampled judgements per response when ``mode`` is ``generate``; ``normalise``: a verdict is the expected score
    under the answer choices' renormalised probabilities (false: P(Yes) unrenormalised, yes/no only)."""

    name = "self_rewarding"

    def __init__(
        self,
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
    ):
        super().__init__(judge="policy", format=format, mode=mode, samples=samples, temperature=temperature,
                         max_new_tokens=max_new_tokens, normalise=normalise, principles=principles,
                         constitution=constitution, output=output, min_gap=min_gap, sft_threshold=sft_threshold,
                         noise_floor=noise_floor, seed=seed)
