"""Deterministic stand-ins for the LM protocol, for judge and signal logic with hand-computed answers."""

from __future__ import annotations

import math
from typing import Callable, Sequence

from autoalign.models.base import Completion, Prompt, Sampling
from autoalign.records import Prompt as PromptRecord
from autoalign.records import Sample


def text_of(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


class FakeLM:
    """``reply(prompt_text, sample_index) -> str`` answers generations; ``score(prompt_text, continuation) ->
    float`` gives log-likelihoods. Records every call (the prompts it saw)."""

    def __init__(self, reply: Callable[[str, int], str] | None = None,
                 score: Callable[[str, str], float] | None = None, uri: str = "fake:judge"):
        self.uri = uri
        self.reply = reply or (lambda p, j: "Yes")
        self.score = score or (lambda p, c: math.log(0.5))
        self.generated: list[str] = []
        self.scored: list[tuple[str, str]] = []
        self.logprob_calls = 0
        self.generate_calls = 0

    def fingerprint(self) -> str:
        return self.uri

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        self.generate_calls += 1
        self.generated.extend(text_of(p) for p in prompts)
        return [[Completion(text=self.reply(text_of(p), j), logprob=-1.0) for j in range(sampling.n)] for p in prompts]

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        self.logprob_calls += 1
        self.scored.extend((text_of(p), c) for p, c in zip(prompts, continuations))
        return [self.score(text_of(p), c) for p, c in zip(prompts, continuations)]


def yes_prob_scorer(p_yes: Callable[[str], float]) -> Callable[[str, str], float]:
    """A logprob function whose judge puts P(Yes) = p_yes(response text) and the rest on No."""
    def score(prompt: str, cont: str) -> float:
        response = prompt.split("Response: ", 1)[1].split("\n", 1)[0] if "Response: " in prompt else prompt
        p = p_yes(response)
        return math.log(p if cont == "Yes" else 1 - p if cont == "No" else 1e-9)

    return score


def lab_prompt(i: int, axis: str = "helpful", text: str | None = None) -> PromptRecord:
    return PromptRecord(id=f"p{i}", messages=[{"role": "user", "content": text or f"What is {i} + {i}?"}],
                        axis=axis, family={"helpful": "arithmetic", "harmless": "safety", "honest": "facts"}[axis])


def samples_for(prompt: PromptRecord, texts: list[str]) -> list[Sample]:
    return [Sample(prompt_id=prompt.id, index=j, text=t, model="fake:policy") for j, t in enumerate(texts)]
