"""Deterministic stand-ins for the LM protocol, for scorer tests with known answers: thin shapes over the one
scripted test double, ``autoalign.models.mock.MockLM``."""

from __future__ import annotations

from typing import Callable

from autoalign.models.base import Prompt, prompt_key
from autoalign.models.mock import SCRIPTS, MockLM, text_of


def _text(prompt: Prompt) -> str:
    return text_of(prompt)


class FakeLM(MockLM):
    """``reply(prompt_text) -> str`` answers every generation (default: the ``mock:`` default script, which refuses
    a prompt mentioning "bomb" and otherwise says "Sure. The answer is 4."); ``score(prompt_text, continuation)
    -> float`` gives log-likelihoods (default: a hash, so stable but arbitrary). Completions carry no logprob.
    ``generate_calls`` / ``logprob_calls`` count prompt rows (not calls), to check caching."""

    def __init__(self, reply: Callable[[str], str] | None = None,
                 score: Callable[[str, str], float] | None = None, uri: str = "fake:lm"):
        default = SCRIPTS["default"]
        super().__init__(
            reply=default.reply if reply is None else (lambda text, index: reply(text)),
            default=default.default if reply is None else None,
            score=score, uri=uri, sample_logprobs=False,
        )

    @property
    def generate_calls(self) -> int:
        return len(self.generated)

    @property
    def logprob_calls(self) -> int:
        return len(self.scored)


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
