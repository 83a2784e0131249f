"""Self-Refine at inference (Madaan et al. 2023): every answer of the policy is critiqued by the policy itself and
rewritten until its critique says no change is needed, a rewrite repeats the answer, or ``max_iterations``
rewrites are made (``autoalign.signals.inductive.self_refine``: the loop and its stopping rule). The prompt's
axis is unknown at inference, so the critique asks every principle of the constitution and the rewrite follows
the one that scored lowest. Measured beside the plain policy as ``lab@self-refine``."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.models.base import LM, Completion, Prompt, Sampling
from autoalign.signals.inductive.self_refine import request_text, self_refine
from autoalign.signals.model_feedback.constitution import load_constitution


class SelfRefineLM:
    """The policy followed by its own critique-and-rewrite loop. ``Completion.logprob`` of a rewritten answer is
    None (the suite then scores it with ``logprobs``, the policy's own); ``stats`` counts stops and rewrites."""

    def __init__(self, policy: LM, constitution: str | None = None, critique: Literal["judge", "generate"] = "judge",
                 threshold: float = 0.5, max_iterations: int = 2, max_new_tokens: int = 64, seed: int = 0):
        self.policy, self.constitution_path = policy, constitution
        self.constitution = load_constitution(constitution)
        self.options: dict[str, Any] = dict(critique=critique, threshold=threshold, max_iterations=max_iterations,
                                            max_new_tokens=max_new_tokens, seed=seed)
        self.uri = f"self-refine:{policy.uri}"
        self.stats: dict[str, int] = {"answers": 0, "changed": 0, "revisions": 0}

    def fingerprint(self) -> str:
        key = json.dumps([self.policy.fingerprint(), self.constitution.model_dump(), self.options], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        drafts = self.policy.generate(list(prompts), sampling)
        items = [(request_text(p), c.text, list(self.constitution.principles)) for p, cs in zip(prompts, drafts)
                 for c in cs]
        refs = iter(self_refine(self.policy, items, self.constitution, **self.options))
        out = []
        for cs in drafts:
            row = []
            for c in cs:
                r = next(refs)
                self.stats["answers"] += 1
                self.stats["revisions"] += r.revisions
                if r.changed:
                    self.stats["changed"] += 1
                    c = Completion(text=r.final, finish_reason="stop", logprob=None)
                row.append(c)
            out.append(row)
        return out

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        return self.policy.logprobs(prompts, continuations)


class SelfRefineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["self_refine"] = "self_refine"
    # ``judge``: the policy's P(Yes) under the principles decides; ``generate``: a written critique asking no change stops
    critique: Literal["judge", "generate"] = "judge"
    threshold: float = Field(0.5, ge=0.0, le=1.0)  # with the judge critique, an answer below this is rewritten
    max_iterations: int = Field(2, ge=1)  # rewrites per answer at most
    max_new_tokens: int = Field(64, ge=1)
    constitution: str | None = None
    tag: str = "self-refine"  # the variant suite's suffix (``lab@self-refine``)
    suites: list[str] = Field(default_factory=lambda: ["lab"])  # the suites the variant is evaluated on


class SelfRefine:
    role = "variant"

    def __init__(self, cfg: SelfRefineConfig, where: str, sampling_temperature: float = 0.8):
        self.cfg, self.where, self.tag, self.suites = cfg, where, cfg.tag, cfg.suites

    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return policy_uri

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        c = self.cfg
        return SelfRefineLM(policy_lm, c.constitution, c.critique, c.threshold, c.max_iterations, c.max_new_tokens)
