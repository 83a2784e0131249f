"""Several runs or models side by side (``autoalign compare``): one console table and one HTML page.

An entry is a run directory (its final policy: the last round the 3H gate kept), an ``autoalign eval`` output
directory (its ``results.json``), or a model the command evaluates. The page reuses the report's own sections
(``report.html``: the 3H overview with its charts, the per-suite tables, the scorers' reliability), one column an
entry, so a figure reads the same here as in a run's report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Sequence

from autoalign.errors import UserError
from autoalign.evaluate.result import SuiteResult
from autoalign.report.summary import AXES, axis_score, headline
from autoalign.runs_index import final_results
from autoalign.store import atomic_write_text


@dataclass
class Entry:
    label: str  # the column's name: the run's name (with its final round) or the model URI
    source: str  # what the user named
    results: list[SuiteResult]


def load_run_entry(path: Path) -> Entry:
    """A finished run's final policy (``metrics.json``), or an eval output directory's ``results.json``."""
    metrics, results_file = path / "metrics.json", path / "results.json"
    try:
        if metrics.is_file():
            data = json.loads(metrics.read_text("utf-8"))
            k, results = final_results(data)
            name = str(data.get("run") or path.name)
            return Entry(f"{name} ({'base' if k == 0 else f'round {k}'})", str(path), results)
        raw = json.loads(results_file.read_text("utf-8"))
        results = [SuiteResult.model_validate(r) for r in raw]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        bad = metrics if metrics.is_file() else results_file
        raise UserError(f"{bad}: malformed ({str(exc).splitlines()[0][:160]})") from None
    models = list(dict.fromkeys(r.model for r in results))
    return Entry(f"{path.name} ({', '.join(models)})" if models else path.name, str(path), results)


def find_entry(arg: str, runs_dir: Path) -> Path | None:
    """The directory ``arg`` names (a path, or a run's name under ``runs_dir``) if it holds a run's metrics or an
    eval's results; None when ``arg`` names no such directory (then it is a model URI)."""
    for candidate in (Path(arg).expanduser(), runs_dir / arg):
        try:
            if candidate.is_dir() and ((candidate / "metrics.json").is_file() or (candidate / "results.json").is_file()):
                return candidate
            if candidate.is_dir() and (candidate / "recipe.yaml").is_file():
                raise UserError(f"run {candidate}: not finished (no metrics.json); rerun its command to resume it, "
                                "or compare finished runs")
        except OSError:
            continue
    return None


def distinct(entries: Sequence[Entry]) -> list[Entry]:
    """The entries with labels made distinct (``#2``, ``#3`` after a repeated one), so no column hides another."""
    out: list[Entry] = []
    for e in entries:
        name, i = e.label, 2
        while any(o.label == name for o in out):
            name, i = f"{e.label} #{i}", i + 1
        out.append(Entry(name, e.source, e.results))
    return out


# ---- the figures ------------------------------------------------------------------------------------------------
Cell = tuple[float, float, float] | None


def rows(entries: Sequence[Entry]) -> list[tuple[str, list[Cell]]]:
    """(figure, one (value, lo, hi) or None per entry): the 3H axis scores and the lab composite first, then every
    suite's headline metrics (with ``↑``/``↓`` for their direction), in the order the entries first show them."""
    out: list[tuple[str, list[Cell]]] = []
    for axis in AXES:
        cells: list[Cell] = []
        for e in entries:
            s = axis_score(e.results, axis)
            cells.append(None if s is None else (s[0], s[1], s[2]))
        if any(c is not None for c in cells):
            out.append((f"3H {axis}", cells))
    labels: list[str] = []
    for e in entries:
        for r in e.results:
            labels += [f.label for f in headline(r) if f.label not in labels]
    for label in labels:
        cells, arrow = [], ""
        for e in entries:
            found = next((f for r in e.results for f in headline(r) if f.label == label), None)
            cells.append(None if found is None else (found.metric.value, found.metric.lo, found.metric.hi))
            if found is not None and not arrow:
                arrow = "→0" if found.two_sided else "↑" if found.metric.higher_is_better else "↓"
        out.append((f"{label} {arrow}", cells))
    return out


def console_table(entries: Sequence[Entry]) -> Any:
    """A rich table: a row a figure, a column an entry (value and 95% CI; from the second entry on, the change
    against the first)."""
    from rich.table import Table

    table = Table(title="autoalign compare")
    table.add_column("figure")
    for e in entries:
        table.add_column(e.label, justify="right")
    for name, cells in rows(entries):
        first = cells[0]
        shown = []
        for i, c in enumerate(cells):
            if c is None:
                shown.append("-")
                continue
            delta = f" ({c[0] - first[0]:+.3f})" if i > 0 and first is not None else ""
            shown.append(f"{c[0]:.3f} [{c[1]:.2f}, {c[2]:.2f}]{delta}")
        table.add_row(name, *shown)
    return table


# ---- the page ---------------------------------------------------------------------------------------------------
def _figures_table(entries: Sequence[Entry]) -> str:
    head = "<tr><th>figure</th>" + "".join(f"<th>{escape(e.label)}</th>" for e in entries) + "</tr>"
    body = []
    for name, cells in rows(entries):
        first = cells[0]
        tds = []
        for i, c in enumerate(cells):
            if c is None:
                tds.append("<td class='num'>-</td>")
                continue
            delta = f" ({c[0] - first[0]:+.3f})" if i > 0 and first is not None else ""
            tds.append(f"<td class='num'>{c[0]:.3f} [{c[1]:.3f}, {c[2]:.3f}]{delta}</td>")
        body.append(f"<tr><td>{escape(name)}</td>{''.join(tds)}</tr>")
    return ("<h2>Side by side</h2><p class='note'>Each figure with its 95% CI; in brackets after it, the change "
            "against the first column. ↑ higher is better, ↓ lower is better, →0 best at zero.</p>"
            f"<table>{head}{''.join(body)}</table>")


def render_compare(entries: Sequence[Entry], title: str) -> str:
    from autoalign.report import html as report

    series, columns = [e.label for e in entries], [e.results for e in entries]
    sources = " · ".join(escape(e.source) for e in entries)
    body = (f"<h1>{escape(title)}</h1><p class='meta'>{sources}</p>" + _figures_table(entries)
            + report.overview(series, columns, "runs and models") + report.suites_section(series, columns)
            + report.reliability_section([r for c in columns for r in c]))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{getattr(report, 'CSS', '')}</style></head><body><main>{body}</main>"
            f"<script>{getattr(report, 'SCRIPT', '')}</script></body></html>\n")


def write_compare_report(entries: Sequence[Entry], out_dir: Path) -> Path:
    """``out_dir/compare.html`` and ``out_dir/compare.json`` (each entry's label, source and results)."""
    entries = distinct(entries)
    title = "autoalign compare: " + " vs ".join(e.label for e in entries)
    atomic_write_text(out_dir / "compare.json", json.dumps(
        [{"label": e.label, "source": e.source, "results": [r.model_dump() for r in e.results]} for e in entries],
        indent=1, ensure_ascii=False) + "\n")
    path = out_dir / "compare.html"
    atomic_write_text(path, render_compare(entries, title))
    return path
