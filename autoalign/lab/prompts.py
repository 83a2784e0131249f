"""Lab prompts for a run: what the policy is asked, without answers.

A ``Prompt`` carries the question and, for verifiable tasks, the environment tool (``env``, CONTRACTS.md) a
signal may execute; never the ground truth (harmful or not, known or not, the right answer). The ``train`` split
shares no task key with the ``eval`` split the lab suite grades (``autoalign.lab.world.common.split_of``).
"""

from __future__ import annotations

import random

from autoalign.lab.world import FAMILIES, FAMILY_AXIS, tasks
from autoalign.records import Prompt, stable_id

LAB_FAMILIES: list[str] = list(FAMILIES)


def lab_prompts(count: int, seed: int, families: list[str] | None = None, split: str = "train") -> list[Prompt]:
    """``count`` prompts balanced over ``families`` (all by default) and interleaved family by family, so any
    prefix stays balanced. Deterministic in (count, seed, families, split)."""
    families = list(families or LAB_FAMILIES)
    unknown = [f for f in families if f not in FAMILY_AXIS]
    if unknown:
        from autoalign.errors import UserError

        raise UserError(f"unknown lab families {unknown} (known: {', '.join(LAB_FAMILIES)})")
    if split not in ("train", "eval"):
        from autoalign.errors import UserError

        raise UserError(f"lab prompts: split must be 'train' or 'eval', not {split!r}")
    per = {f: count // len(families) + (i < count % len(families)) for i, f in enumerate(families)}
    drawn = {f: tasks(f, per[f], seed, split) for f in families}
    for f in families:  # safety/facts kinds alternate in tasks(); shuffle so a position says nothing
        random.Random(f"lab-prompts-order-{seed}-{split}-{f}").shuffle(drawn[f])
    out: list[Prompt] = []
    ids: set[str] = set()
    for j in range(max(per.values(), default=0)):
        for f in families:
            if j < len(drawn[f]):
                t = drawn[f][j]
                pid = f"lab-{f}-{stable_id(split, f, t.question)}"
                pid = pid if pid not in ids else f"{pid}-{j}"  # a repeat once a small universe runs dry
                ids.add(pid)
                out.append(
                    Prompt(
                        id=pid,
                        messages=[{"role": "user", "content": t.question}],
                        source="lab",
                        axis=FAMILY_AXIS[f],
                        family=f,
                        env=t.env,
                    )
                )
    return out
