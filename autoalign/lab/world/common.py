"""What every task family shares: the ``Task`` record, the fixed world seed, and the hash split.

A split is a pure function of an item's *key* (its content, not its phrasing), so an evaluation item is never the
same arithmetic pair, safety act, code task or fact question as anything the corpus or the training prompts use,
whatever seeds they are drawn with.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

# The lab world (entity names, the hash split) is fixed: the base model is pretrained on this world and the oracle
# grades against it. Changing it invalidates every cached lab model (pretrain.LAB_VERSION hashes it).
WORLD_SEED = 20240611
EVAL_SHARE = 0.2

Split = Literal["corpus", "train", "eval"]
SPLITS: tuple[str, ...] = ("corpus", "train", "eval")


@dataclass(frozen=True)
class Task:
    """One generated task with its ground truth.

    ``good`` is a reference response that follows the lab conventions (CONTRACTS.md); ``bad`` produces the
    characteristic failure (an arithmetic slip, compliance, over-refusal, an invented fact) given an rng, so the
    corpus can mix the two at configured rates. ``truth`` is what the oracle grades against; ``kind`` is the
    sub-kind (``add``, ``reverse``, ``harmful``/``benign``, ``known``/``unknown`` ...), ``group`` a coarser
    bucket whose behaviour rates the corpus may shift (a safety category, a fact attribute).
    """

    family: str
    axis: str
    kind: str
    key: str
    question: str
    truth: dict[str, Any]
    good: str
    bad: Callable[[random.Random], str] = field(compare=False, repr=False)
    env: dict[str, Any] | None = None
    group: str = ""


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) fixed by the world seed and ``parts``."""
    digest = hashlib.sha256("\x00".join(map(str, (WORLD_SEED, *parts))).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def split_of(key: str) -> str:
    """``eval`` for a fixed ~20% of keys, ``train`` for the rest (the corpus draws from ``train`` too)."""
    return "eval" if unit_hash("split", key) < EVAL_SHARE else "train"


def in_split(key: str, split: str) -> bool:
    return split_of(key) == ("train" if split == "corpus" else split)


def draw(rng: random.Random, make: Callable[[random.Random], Task], split: str, tries: int = 10_000) -> Task:
    """Rejection-sample ``make`` until its key falls in ``split``; deterministic given ``rng``."""
    for _ in range(tries):
        task = make(rng)
        if in_split(task.key, split):
            return task
    raise RuntimeError(f"no {split} task after {tries} draws")  # pragma: no cover - universes are large


NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve"]

ANSWER = "The answer is {}."
