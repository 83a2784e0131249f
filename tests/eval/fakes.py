"""Deterministic stand-ins for the LM protocol, for scorer tests with known answers."""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

from autoalign.models.base import Completion, Prompt, Sampling, prompt_key


def _text(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


class FakeLM:
    """``reply(prompt_text) -> str`` answers every generation; ``score(prompt_text, continuation) -> float`` gives
    log-likelihoods (default: a hash, so stable but arbitrary). Counts calls, to check caching."""

    def __init__(self, reply: Callable[[str], str] | None = None,
                 score: Callable[[str, str], float] | None = None, uri: str = "fake:lm"):
        self.uri = uri
        self.reply = reply or (lambda p: "I can't help with that." if "bomb" in p else "Sure. The answer is 4.")
        self.score = score or (lambda p, c: -(int(hashlib.sha256((p + c).encode()).hexdigest(), 16) % 997) / 100)
        self.generate_calls = 0
        self.logprob_calls = 0

    def fingerprint(self) -> str:
        return self.uri

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        self.generate_calls += len(prompts)
        return [[Completion(text=self.reply(_text(p))) for _ in range(sampling.n)] for p in prompts]

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        self.logprob_calls += len(prompts)
        return [self.score(_text(p), c) for p, c in zip(prompts, continuations)]


class CountingLM:
    """Delegates to a real LM and counts the calls that reach it."""

    def __init__(self, lm):
        self.lm = lm
        self.uri = lm.uri
        self.calls = 0

    def fingerprint(self) -> str:
        return self.lm.fingerprint()

    def generate(self, prompts, sampling):
        self.calls += len(prompts)
        return self.lm.generate(prompts, sampling)

    def logprobs(self, prompts, continuations):
        self.calls += len(prompts)
        return self.lm.logprobs(prompts, continuations)


def key(prompt: Prompt) -> str:
    return prompt_key(prompt)
