"""The LM protocol every provider implements (DESIGN.md, "Core contracts").

A prompt is either a list of chat messages (``[{"role": "user", "content": ...}]``), rendered with the
tokenizer's own chat template and a generation prompt, or a plain ``str``, used as raw text with no template
(what lm-evaluation-harness style multiple-choice scoring wants).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence, Union, runtime_checkable

Message = dict[str, str]
Prompt = Union[str, list[Message]]


@dataclass(frozen=True)
class Sampling:
    """How to sample. ``temperature == 0`` means greedy. ``seed`` makes every (prompt, sample index) reproducible,
    independent of how prompts are batched, so cached calls and resumed runs give the same text."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Completion:
    """One sampled continuation. ``logprob`` is the summed log-probability of its tokens under the model
    (untempered), when the provider can give it."""

    text: str
    finish_reason: str = "stop"  # "stop" | "length"
    logprob: float | None = None
    num_tokens: int | None = None


@runtime_checkable
class LM(Protocol):
    """A language model autoalign can sample from and score with."""

    uri: str

    def fingerprint(self) -> str:
        """A stable identity of the weights and tokenizer: the call cache's key prefix."""
        ...

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        """Return ``sampling.n`` completions for each prompt, in prompt order."""
        ...

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        """Summed log P(continuation | prompt) for each aligned pair."""
        ...

    # Optional capability, looked up with getattr by its callers (judges): providers that can read a next-token
    # distribution implement it (HFModel, RayShardedLM); others are scored through ``logprobs``.
    #
    #   def choice_logprobs(self, prompts, choices) -> list[list[float]]:
    #       """log P(choice | prompt) for every prompt and choice; one forward row per prompt when every
    #       choice is a single token."""


def scored_choice_logprobs(lm: LM, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[list[float]]:
    """log P(choice | prompt) for every prompt and choice as one ``lm.logprobs`` call over all (prompt, choice)
    rows: what ``choice_logprobs`` costs on a provider that cannot read a next-token distribution."""
    k = len(choices)
    flat = lm.logprobs([p for p in prompts for _ in choices], list(choices) * len(prompts))
    return [flat[i * k : (i + 1) * k] for i in range(len(prompts))]


def prompt_key(prompt: Prompt) -> str:
    """Canonical text of a prompt, for hashing and caching."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def row_seed(seed: int, prompt: Prompt, index: int) -> int:
    """The seed of one sample: a function of (recipe seed, prompt, sample index) only, never of batch layout."""
    digest = hashlib.sha256(f"{seed}\x00{index}\x00{prompt_key(prompt)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def as_messages(prompt: Prompt) -> list[Message]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
