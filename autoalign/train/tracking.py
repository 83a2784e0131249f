"""Experiment tracking: the recipe's ``train.report_to``, handed to TRL (transformers' ``TrainingArguments``).

Off by default (``[]``). A name turns on transformers' integration of that tracker (``tensorboard``, ``wandb``,
``mlflow``, ...), which logs every training phase's losses and learning rate the way it does for any TRL run; the
tracker's own settings come from its usual environment variables (``WANDB_PROJECT``, ``MLFLOW_TRACKING_URI``...),
and TensorBoard writes under each phase's ``trainer/runs/``. A tracker that is not installed is a recipe error,
raised when the recipe is read (before anything loads): ``train.report_to: wandb is not installed (pip install
wandb)``.

Light on purpose: ``autoalign.recipe`` validates with ``parse_report_to``, so this module imports neither torch
nor transformers; it looks the trackers' packages up with ``importlib.util.find_spec``, as transformers does.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Sequence

# tracker name (transformers' INTEGRATION_TO_CALLBACK) -> (modules any of which makes it available, pip package)
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
    "trackio": (("trackio",), "trackio"),
    "comet_ml": (("comet_ml",), "comet-ml"),
    "neptune": (("neptune",), "neptune"),
    "clearml": (("clearml",), "clearml"),
    "dvclive": (("dvclive",), "dvclive"),
    "swanlab": (("swanlab",), "swanlab"),
    "codecarbon": (("codecarbon",), "codecarbon"),
}


def _installed(modules: Sequence[str]) -> bool:
    for m in modules:
        try:
            if importlib.util.find_spec(m) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def parse_report_to(value: Any) -> list[str]:
    """``train.report_to`` as a list of tracker names: a list, one name, or names joined by commas (as a dotted
    override gives them: ``train.report_to=wandb,tensorboard``); ``none``, an empty string or null mean none.
    Raises ValueError (one line) on an unknown tracker or one that is not installed."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in (x.strip() for x in value.split(",")) if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a tracker name or a list of them (tensorboard, wandb, mlflow, ...)")
    names = [v.strip() for v in value if v.strip() and v.strip() != "none"]
    out: list[str] = []
    for name in names:
        if name not in TRACKERS:
            raise ValueError(f"unknown tracker {name!r} (one of: none, {', '.join(TRACKERS)})")
        modules, package = TRACKERS[name]
        if not _installed(modules):
            raise ValueError(f"{name} is not installed (pip install {package})")
        if name not in out:
            out.append(name)
    return out


_REPORT_TO: ContextVar[tuple[str, ...]] = ContextVar("autoalign_report_to", default=())


@contextmanager
def reporting_to(report_to: Sequence[str]) -> Iterator[None]:
    """Within the block, every trainer built by ``autoalign.train.common.common_args`` reports to these trackers
    (the round's phases, ``autoalign.train.run``); outside it, to none. Scoped, not global: a phase does not have
    to carry the recipe's tracking setting through its own signature."""
    token = _REPORT_TO.set(tuple(report_to))
    try:
        yield
    finally:
        _REPORT_TO.reset(token)


def current_report_to() -> list[str]:
    """The trackers of the enclosing ``reporting_to`` block ([] outside one): TrainingArguments' ``report_to``."""
    return list(_REPORT_TO.get())
