"""Grading the multi-step lab tasks (``autoalign.lab.world.multistep``) against their ground truth, step by step:
the final answer as the lab grades a helpful answer, and each step's value against the true intermediate value.
Evaluation only (import contract): a process reward model is measured against ``steps_correct`` here, never
trained on it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from autoalign.answers import final_answer, final_number
from autoalign.lab.world.common import Task
from autoalign.lab.world.multistep import MULTISTEP_FAMILIES, multistep_tasks

_ANSWER = re.compile(r"the answer is", re.IGNORECASE)


def response_steps(response: str) -> list[str]:
    """The steps of a response: its sentences before ``The answer is`` (one step per sentence)."""
    body = _ANSWER.split(response, maxsplit=1)[0]
    parts = (s.strip() for s in re.split(r"(?<=[\d\]])\.(?:\s+|$)", body))
    return [s + "." for s in parts if s and s[-1] in "0123456789]"]  # a sentence that states a value


def step_value(family: str, step: str) -> str | None:
    """A step's stated value: the number after ``=`` (chain), the list after ``:`` (pipeline), without spaces."""
    if family == "chain":
        m = re.search(r"=\s*(-?\d+)\s*\.?$", step)
        return m.group(1) if m else None
    m = re.search(r":\s*(\[[^\]]*\])\s*\.?$", step)
    return m.group(1).replace(" ", "") if m else None


@dataclass(frozen=True)
class StepGrade:
    correct: bool  # the final answer
    steps_correct: tuple[bool, ...]  # each written step, against the true value at that position
    first_error: int | None  # index of the first wrong (or missing) step, None when all are right


def grade_multistep(task: Task, response: str) -> StepGrade:
    """Grade ``response`` to a multi-step task: final answer and every step (a step past the true number of
    steps is wrong; fewer steps than the truth has leaves the first missing one as the first error)."""
    truth = task.truth
    if task.family == "chain":
        answer = final_number(response)
        correct = answer is not None and answer == truth["answer"]
    else:
        answer = final_answer(response)
        correct = answer is not None and answer.replace(" ", "") == truth["answer"].replace(" ", "")
    want = [v.replace(" ", "") for v in truth["steps"]]
    steps = response_steps(response)
    ok = tuple(i < len(want) and step_value(task.family, s) == want[i] for i, s in enumerate(steps))
    wrong = [i for i, good in enumerate(ok) if not good]
    first = wrong[0] if wrong else (len(ok) if len(ok) < len(want) else None)
    return StepGrade(correct=correct, steps_correct=ok, first_error=first)


def multistep_eval_items(per_family: int, seed: int = 1234, families: list[str] | None = None) -> list[Task]:
    """``per_family`` eval-split tasks of each multi-step family (the train prompts share no key with them)."""
    return [t for f in families or MULTISTEP_FAMILIES for t in multistep_tasks(f, per_family, seed, "eval")]


__all__ = ["StepGrade", "grade_multistep", "multistep_eval_items", "response_steps", "step_value"]
