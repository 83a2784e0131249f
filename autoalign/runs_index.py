"""The runs under a directory (``autoalign runs``): each run's status and headline figures.

A run directory (``<run_dir>/<name>/``, see ``autoalign.loop``) is recognised by its ``recipe.yaml`` or
``metrics.json``. Its status, read from the files alone (no process table):

- ``running``: a run holds its lock (``.lock``, an advisory ``flock`` the kernel drops when the run's process ends);
- ``finished``: ``metrics.json`` is written (the loop writes it after the last round);
- ``stopped``: neither: the run was killed or failed; rerunning its command resumes it.

The headline figures are those of the final policy (the last round the 3H gate kept, ``metrics.json``'s
``final``): the lab composite and the 3H score of each axis (``report.summary.axis_score``, the report's 3H bars).
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from autoalign.evaluate.result import SuiteResult
from autoalign.report.summary import AXES, axis_score

HEADLINE = ("composite", *AXES)


@dataclass
class Score:
    value: float
    lo: float
    hi: float


@dataclass
class RunInfo:
    name: str
    path: Path
    status: str  # running | finished | stopped
    rounds_done: int  # trained rounds evaluated (round 0, the base, not counted)
    rounds_planned: int | None  # the recipe's rounds (None: unreadable recipe)
    final_round: int | None = None  # the round of the final policy (finished runs)
    kept: list[int] = field(default_factory=list)
    policy: str | None = None
    figures: dict[str, Score] = field(default_factory=dict)  # composite, helpful, harmless, honest
    note: str = ""  # why figures are missing (a malformed metrics file)


def headline_figures(results: Sequence[SuiteResult]) -> dict[str, Score]:
    """The lab composite (a suite's ``composite`` metric) and each axis's 3H score, for one policy's results."""
    out: dict[str, Score] = {}
    for r in results:
        m = r.metrics.get("composite")
        if m is not None and m.axis == "composite":
            out["composite"] = Score(m.value, m.lo, m.hi)
            break
    for axis in AXES:
        s = axis_score(results, axis)
        if s is not None:
            out[axis] = Score(s[0], s[1], s[2])
    return out


def is_locked(run_dir: Path) -> bool:
    """Whether a run holds ``run_dir/.lock`` now. Opens it read-only and asks for a shared lock without waiting
    (released at once), so it never creates or writes the file."""
    path = Path(run_dir) / ".lock"
    try:
        fh = open(path, "rb")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def _planned_rounds(run_dir: Path) -> tuple[int | None, str | None]:
    try:
        data = yaml.safe_load((run_dir / "recipe.yaml").read_text("utf-8"))
        return int(data["rounds"]), data.get("policy")
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None, None


def _evaluated_rounds(run_dir: Path) -> int:
    return max(sum(1 for p in run_dir.glob("round-*/eval/manifest.json")) - 1, 0)


def final_results(data: dict) -> tuple[int, list[SuiteResult]]:
    """(round, results) of the final policy of a run's metrics (``final``; else the last round)."""
    rounds = sorted(data["rounds"], key=lambda r: int(r["round"]))
    final = int((data.get("final") or {}).get("round", rounds[-1]["round"]))
    chosen = next((r for r in rounds if int(r["round"]) == final), rounds[-1])
    results = [r if isinstance(r, SuiteResult) else SuiteResult.model_validate(r) for r in chosen["results"]]
    return int(chosen["round"]), results


def read_run(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    planned, policy = _planned_rounds(run_dir)
    metrics = run_dir / "metrics.json"
    status = "running" if is_locked(run_dir) else "finished" if metrics.is_file() else "stopped"
    info = RunInfo(name=run_dir.name, path=run_dir, status=status, rounds_done=_evaluated_rounds(run_dir),
                   rounds_planned=planned, policy=policy)
    if metrics.is_file():
        try:
            data: dict[str, Any] = json.loads(metrics.read_text("utf-8"))
            info.final_round, results = final_results(data)
            info.figures = headline_figures(results)
            info.kept = [int(r["round"]) for r in data["rounds"] if r.get("kept", True)]
            info.rounds_done = max(info.rounds_done, len(data["rounds"]) - 1)
            info.name = str(data.get("run") or info.name)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            info.note = f"malformed metrics.json ({str(exc).splitlines()[0][:80]})"
    return info


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "recipe.yaml").is_file() or (path / "metrics.json").is_file())


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run directly under ``runs_dir``, by name."""
    return [read_run(p) for p in sorted(Path(runs_dir).iterdir()) if is_run_dir(p)]


def runs_table(runs: Sequence[RunInfo], title: str) -> Any:
    """A rich table: one row a run (status, rounds, final round, headline figures with their 95% CIs)."""
    from rich.table import Table

    table = Table(title=title)
    for col, justify in (("run", "left"), ("status", "left"), ("rounds", "right"), ("final", "right"),
                         *((h, "right") for h in HEADLINE)):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in runs:
        planned = f"/{r.rounds_planned}" if r.rounds_planned is not None else ""
        final = "-" if r.final_round is None else ("base" if r.final_round == 0 else f"round {r.final_round}")
        cells = [f"{s.value:.3f} [{s.lo:.2f}, {s.hi:.2f}]" if (s := r.figures.get(h)) else "-" for h in HEADLINE]
        status = r.status + (f" ({r.note})" if r.note else "")
        table.add_row(r.name, status, f"{r.rounds_done}{planned}", final, *cells)
    return table
