"""The lab oracle as a ``Scorer``: the ground truth behind a lab prompt grades a response (1 when it is the
behaviour the 3H standard wants, 0 when not). It lives in ``autoalign.evaluate`` because only evaluation may read
the lab's ground truth (the import contract in pyproject.toml); signals never see it."""

from __future__ import annotations

from typing import Mapping, Sequence

from autoalign.lab.oracle import Task, grade_many
from autoalign.records import Prompt
from autoalign.scoring import Score, as_prompts


class OracleScorer:
    """``tasks``: the lab task behind each prompt id (``judge_agreement.lab_tasks_for`` regenerates them). A prompt
    without a task (written by the policy, read from a file) gets ``value=None``: there is no truth to grade by.
    All responses of one call are graded in one sandbox batch."""

    name = "lab-oracle"
    scale = "unit"

    def __init__(self, tasks: Mapping[str, Task]):
        self.tasks = dict(tasks)

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Score]:
        records = as_prompts(prompts)
        if len(records) != len(responses):
            raise ValueError("oracle: prompts and responses must have the same length")
        known = [i for i, p in enumerate(records) if p.id in self.tasks]
        grades = grade_many([self.tasks[records[i].id] for i in known], [responses[i] for i in known])
        out = [Score.missing("no ground truth for this prompt")] * len(records)
        for i, g in zip(known, grades, strict=True):
            out[i] = Score(1.0 if g.correct else 0.0, detail={"verdict": g.verdict})
        return out
