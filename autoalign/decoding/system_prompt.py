"""A system prompt in front of every prompt, at inference: the principle-conditioned policy of context distillation
(Askell et al. 2021) and Linear Alignment (Gao et al. 2024), measured beside the plain policy.

Context distillation trains the policy on its own answers under a system prompt, without it; the question it must
answer is how much of the gap between the base with and without the prompt it closes. This wrapper gives the
"with" half of that figure in every round (suite ``lab@<tag>``), so the base's gap (round 0) and what remains of it
after training (round k) are read from one run."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.models.base import LM, Completion, Prompt, Sampling


def with_system(prompt: Prompt, text: str) -> Prompt:
    """``prompt`` with ``text`` as its system message: prepended to a chat (joined in front of a system message the
    chat already has); a raw-text prompt (no template, e.g. a multiple-choice continuation) is left as it is."""
    if isinstance(prompt, str) or not text:
        return prompt
    messages = [dict(m) for m in prompt]
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{text}\n{messages[0]['content']}"
        return messages
    return [{"role": "system", "content": text}, *messages]


class SystemPromptLM:
    """The policy with a fixed system prompt; same protocol (``generate``, ``logprobs``, ``choice_logprobs``)."""

    def __init__(self, policy: LM, text: str, tag: str = "system-prompt"):
        self.policy, self.text = policy, text
        self.uri = f"{tag}:{policy.uri}"

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([self.policy.fingerprint(), self.text]).encode()).hexdigest()[:16]

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        return self.policy.generate([with_system(p, self.text) for p in prompts], sampling)

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        return self.policy.logprobs([with_system(p, self.text) for p in prompts], continuations)

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
        from autoalign.models.base import scored_choice_logprobs

        inner = getattr(self.policy, "choice_logprobs", None)
        framed = [with_system(p, self.text) for p in prompts]
        return inner(framed, choices) if inner is not None else scored_choice_logprobs(self.policy, framed, choices)


class SystemPromptConfig(BaseModel):
    """``text``: the system prompt (for the lab: ``autoalign.lab.formats.SYSTEM_PROMPT``, written out in the
    recipe); ``tag``: the variant suite's suffix (``lab@system-prompt``)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["system_prompt"] = "system_prompt"
    text: str = Field(min_length=1)
    tag: str = "system-prompt"
    suites: list[str] = Field(default_factory=lambda: ["lab"])  # the suites the variant is evaluated on


class SystemPrompt:
    role = "variant"

    def __init__(self, cfg: SystemPromptConfig, where: str, sampling_temperature: float = 0.8):
        self.cfg, self.where, self.tag, self.suites = cfg, where, cfg.tag, cfg.suites

    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return policy_uri

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        return SystemPromptLM(policy_lm, self.cfg.text, self.tag)
