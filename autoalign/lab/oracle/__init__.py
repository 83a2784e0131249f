"""The lab oracle: evaluation-split tasks with their ground truth, and grading. Only ``autoalign.evaluate`` may
import it (import-linter contract in pyproject.toml): signals see prompts and environment tools, never answers."""

from __future__ import annotations

from autoalign.lab.oracle.grading import Grade, grade, grade_many
from autoalign.lab.oracle.items import eval_items, item_id
from autoalign.lab.world import FAMILIES, FAMILY_AXIS, KINDS, Task

__all__ = ["FAMILIES", "FAMILY_AXIS", "KINDS", "Grade", "Task", "eval_items", "grade", "grade_many", "item_id"]
