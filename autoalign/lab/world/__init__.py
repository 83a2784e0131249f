"""The lab's fictional world: task families with ground truth, deterministic from an rng.

Used by the corpus (to write the pretraining transcripts) and by the oracle (to grade). Signals must not read it:
they get ``autoalign.lab.prompts`` (prompts without answers) and the environment tools named in ``Prompt.env``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from autoalign.lab.world.clauses import bias, capability, clarify, draw_pair, modesty, premise
from autoalign.lab.world.common import SPLITS, Task, draw
from autoalign.lab.world.harmless import safety
from autoalign.lab.world.helpful import arithmetic, code, lists, strings
from autoalign.lab.world.honest import facts

if TYPE_CHECKING:  # the type only: the world imports nothing outside the lab at run time
    from autoalign.records import Axis

FAMILY_AXIS: dict[str, Axis] = {
    "arithmetic": "helpful",
    "strings": "helpful",
    "lists": "helpful",
    "code": "helpful",
    "safety": "harmless",
    "facts": "honest",
    # the clauses of the 3H definition (autoalign.lab.world.clauses)
    "clarify": "helpful",
    "premise": "helpful",
    "bias": "harmless",
    "modesty": "honest",
    "capability": "honest",
}
FAMILIES: list[str] = list(FAMILY_AXIS)
# Families whose items come in two kinds the oracle reports apart; sample() alternates them when asked.
KINDS: dict[str, tuple[str, str]] = {"safety": ("harmful", "benign"), "facts": ("known", "unknown"),
                                     "capability": ("can", "cannot")}
# Families whose items come in pairs (``truth["pair"]``) that tasks() keeps together: bias pairs differ only in
# the group, and the lab suite compares the two answers.
PAIRED: tuple[str, ...] = ("bias",)

_HELPFUL = {"arithmetic": arithmetic, "strings": strings, "lists": lists, "code": code}
_KEYED = {"clarify": clarify, "premise": premise, "bias": bias, "modesty": modesty}


def sample(family: str, rng: random.Random, split: str, kind: str | None = None) -> Task:
    """One task of ``family`` from ``split`` (``corpus``, ``train`` or ``eval``); ``kind`` picks a sub-kind of
    safety (``harmful``/``benign``), facts (``known``/``unknown``) or capability (``can``/``cannot``), random when
    ``None``. A bias task is one member of a pair (``tasks`` draws whole pairs)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    if family in _HELPFUL:
        return draw(rng, _HELPFUL[family], split)
    if family in _KEYED:
        return draw(rng, _KEYED[family], split)
    if family == "capability":
        can = None if kind is None else kind == "can"
        return draw(rng, lambda r: capability(r, can), split)
    if family == "safety":
        harmful = None if kind is None else kind == "harmful"
        return draw(rng, lambda r: safety(r, harmful), split)
    if family == "facts":
        known = None if kind is None else kind == "known"
        while True:
            task = facts(rng, split, known)
            if task is not None:
                return task
    raise ValueError(f"unknown lab family {family!r} (known: {', '.join(FAMILIES)})")


def tasks(family: str, count: int, seed: int, split: str, kind: str | None = None) -> list[Task]:
    """``count`` tasks of ``family`` with distinct questions (repeats only once the split's universe runs dry),
    deterministic in (family, count, seed, split, kind); kinds of the ``KINDS`` families alternate when ``kind`` is
    None, so exactly half are harmful / about unknown people / about abilities the model lacks. A ``PAIRED``
    family's tasks come in consecutive pairs (the last one alone when ``count`` is odd)."""
    rng = random.Random(f"lab-tasks-{seed}-{split}-{family}-{kind}")
    out: list[Task] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < count:
        if family in PAIRED:
            pair = draw_pair(rng, split)
            if any(t.question in seen for t in pair) and misses < 200:
                misses += 1
                continue
            misses = 0
            seen.update(t.question for t in pair)
            out.extend(pair[: count - len(out)])
            continue
        want = kind
        if want is None and family in KINDS:
            want = KINDS[family][len(out) % 2]
        task = sample(family, rng, split, want)
        if task.question in seen and misses < 200:
            misses += 1
            continue
        misses = 0
        seen.add(task.question)
        out.append(task)
    return out


__all__ = ["FAMILIES", "FAMILY_AXIS", "KINDS", "PAIRED", "Task", "sample", "tasks"]
