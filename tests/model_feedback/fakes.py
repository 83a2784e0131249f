"""Deterministic stand-ins for the LM protocol, for judge and signal logic with hand-computed answers: thin shapes
over the one scripted test double, ``autoalign.models.mock.MockLM``."""

from __future__ import annotations

import math
from typing import Callable

from autoalign.models.mock import SCRIPTS, MockLM
from autoalign.records import Prompt as PromptRecord
from autoalign.records import Sample


class FakeLM(MockLM):
    """``reply(prompt_text, sample_index) -> str`` answers generations (default: "Yes", the ``mock:yes`` script);
    ``score(prompt_text, continuation) -> float`` gives log-likelihoods (default: log 0.5). Records every call:
    ``generated`` (the prompts it saw), ``scored``, and ``generate_calls`` / ``logprob_calls`` (calls, not rows)."""

    def __init__(self, reply: Callable[[str, int], str] | None = None,
                 score: Callable[[str, str], float] | None = None, uri: str = "fake:judge"):
        yes = SCRIPTS["yes"]
        super().__init__(reply=yes.reply if reply is None else reply, score=yes.score if score is None else score,
                         uri=uri)


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
