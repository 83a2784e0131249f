"""The evaluation items: tasks of the eval split, whose keys the corpus and the training prompts never use."""

from __future__ import annotations

from autoalign.lab.world import FAMILIES, KINDS, Task, tasks
from autoalign.records import stable_id


def item_id(task: Task, split: str = "eval") -> str:
    """The id a lab prompt of this task carries (``autoalign.lab.prompts`` uses the same)."""
    return f"lab-{task.family}-{stable_id(split, task.family, task.question)}"


def eval_items(per_family: int, seed: int = 1234, families: list[str] | None = None) -> list[Task]:
    """``per_family`` eval tasks of each family, and ``per_family`` of *each kind* of the ``KINDS`` families
    (safety: harmful / benign, facts: known / unknown, capability: can / cannot), so every reported rate rests on
    ``per_family`` items; a paired family (bias) comes in consecutive pairs. Deterministic in (per_family, seed,
    families)."""
    out: list[Task] = []
    for family in families or FAMILIES:
        if family in KINDS:
            for kind in KINDS[family]:
                out.extend(tasks(family, per_family, seed, "eval", kind))
        else:
            out.extend(tasks(family, per_family, seed, "eval"))
    return out
