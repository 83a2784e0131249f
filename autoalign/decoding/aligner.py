"""An Aligner-style corrector after an upstream model (Ji et al. 2024): evaluation measures the upstream model
alone in round 0 and followed by each round's trained policy, the corrector, in rounds >= 1. The corrector is
trained by the ``aligner`` signal on correction triples in the same ``template``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from autoalign.signals.model_feedback.aligner import ALIGNER_TEMPLATE


class AlignerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["aligner"] = "aligner"
    upstream: str  # the URI of the model whose answers the trained corrector rewrites (round 0 evaluates it alone)
    template: str = ALIGNER_TEMPLATE  # must be the template the corrector was trained in


class Aligner:
    role = "replace"
    suites = None  # the recipe's evaluation suites

    def __init__(self, cfg: AlignerConfig, where: str, sampling_temperature: float = 0.8):
        self.cfg, self.where, self.tag = cfg, where, "aligner"

    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return self.cfg.upstream if k == 0 else f"aligned:{self.cfg.upstream}+{policy_uri}"

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        upstream = env.load_aux(self.cfg.upstream)
        if k == 0:
            return upstream
        from autoalign.signals.model_feedback.aligner import AlignedLM

        return AlignedLM(upstream, policy_lm, template=self.cfg.template, draft_tokens=env.eval.max_new_tokens)
