"""The HTML report: one self-contained page (inline CSS, inline SVG, a few lines of inline script, no network).

``write_eval_report`` shows one or more models side by side; ``write_run_report`` shows a run's rounds side by
side, each headline metric over rounds, and the same prompts answered before (round 0) and after (last round).
The page's skeleton is a Jinja2 template with autoescaping (``templates/page.html.jinja``, package data); the
sections are markup built here, each value escaped where it is put in.
"""

from __future__ import annotations

import datetime as _dt
import json
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Sequence

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from autoalign.errors import UserError
from autoalign.evaluate.reliability import KIND_NOTES, MEASURED, scorer_kind, summary
from autoalign.evaluate.result import SuiteResult, Transcript
from autoalign.report.summary import (
    AXES,
    PANELS,
    SUITE_NAMES,
    Figure,
    all_figures,
    axis_score,
    by_model,
    headline,
    human_label,
    oriented_name,
    y_range,
)
from autoalign.report.svg import Bar, bar_chart, legend, line_chart
from autoalign.store import atomic_write_text

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}.meta{color:#5b6475;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 12px;overflow-x:auto}
svg.chart{display:block;font-size:11px}svg .chart-title{font-size:12px;font-weight:600;fill:#1d2430}
svg .grid{stroke:#e6e8ec}svg .zero{stroke:#8a93a3}svg .tick,svg .label{fill:#5b6475}
svg .err{stroke:#1d2430;stroke-width:1.2}svg .band{opacity:.16}svg .line{stroke-width:2}
.legend{margin:6px 0 2px;font-size:12px}.key{margin-right:14px;white-space:nowrap}
.key i{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px;border-radius:2px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.up{color:#2f7d4a}.down{color:#b03a48}td.down{background:#fbe9eb;font-weight:600}
p.headline{font-size:16px;font-weight:600;margin:8px 0}ul.regressions{margin:4px 0 10px;padding-left:20px}
details{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:6px 0;padding:6px 10px}
summary{cursor:pointer}pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f7;padding:6px 8px;
margin:4px 0;border-radius:4px;font-size:12.5px;max-height:320px;overflow:auto}
.verdict{display:inline-block;padding:0 6px;border-radius:3px;background:#eef1f5;font-size:12px;font-weight:600}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px}.note{color:#5b6475;font-size:12.5px;max-width:900px}
"""

SCRIPT = """(function(){var c=document.querySelectorAll('svg.chart'),ok=0;
for(var i=0;i<c.length;i++){var b=c[i].getBBox();if(b.width>0&&b.height>0)ok++;}
document.body.setAttribute('data-charts',String(c.length));document.body.setAttribute('data-charts-rendered',String(ok));
var d=document.querySelector('li.down');if(d)document.body.setAttribute('data-regression-colour',getComputedStyle(d).color);
})();"""

ARROW = {True: "↑ higher is better", False: "↓ lower is better"}


def _num(v: float) -> str:
    return f"{v:.3f}"


@lru_cache(maxsize=1)
def _templates() -> Environment:
    """The report's Jinja2 templates (``autoalign/report/templates/``, shipped as package data), autoescaping."""
    return Environment(loader=PackageLoader("autoalign.report", "templates"), autoescape=True,
                       keep_trailing_newline=True, undefined=StrictUndefined)


def page(title: str, body: str) -> str:
    """The whole page (``templates/page.html.jinja``) around ``body``, markup built by the sections below (each
    value escaped where it is put in); ``title`` is text, escaped by the template."""
    return _templates().get_template("page.html.jinja").render(
        title=title, body=Markup(body), css=Markup(CSS), script=Markup(SCRIPT))


def _direction(f: Figure) -> str:
    return "→ 0 is best" if f.two_sided else ARROW[f.metric.higher_is_better]


# ---- overview -----------------------------------------------------------------------------------------------------
def overview(series: Sequence[str], columns: Sequence[list[SuiteResult]], what: str) -> str:
    """The 3H chart (one bar per axis per model/round) and, per axis, its headline metrics side by side."""
    axis_bars, axis_names = [], []
    for axis in AXES:
        row = []
        for results in columns:
            s = axis_score(results, axis)
            row.append(None if s is None else Bar(s[0], s[1], s[2], f"({s[3]} metrics)"))
        if any(b is not None for b in row):
            axis_names.append(axis)
            axis_bars.append(row)
    parts = [f"<h2>3H overview</h2>{legend(series)}<div class='charts'>"]
    if axis_bars:
        parts.append("<div class='card'>" + bar_chart(f"3H score per axis ({what} side by side)", axis_names,
                                                        series, axis_bars, (0.0, 1.0), "chart-3h") + "</div>")
    for axis in PANELS:
        labels: list[str] = []
        for results in columns:
            for r in results:
                for f in headline(r):
                    if f.metric.axis == axis and f.label not in labels:
                        labels.append(f.label)
        if not labels:
            continue
        names = {f.label: oriented_name(f) if axis == "signal" else f"{SUITE_NAMES.get(f.suite, f.suite)}: {oriented_name(f)}"
                 for results in columns for r in results for f in headline(r)}
        grid, metrics, flipped = [], [], False
        for label in labels:
            row = []
            for results in columns:
                found = next((f for r in results for f in headline(r) if f.label == label), None)
                if found is None:
                    row.append(None)
                    continue
                o = found.oriented()  # plotted higher-is-better: a lower-is-better rate r as 1 - r
                tip = f"n={found.metric.n}, {found.metric.scorer}, measured {found.metric.value:.3f}"
                if o is None:
                    row.append(Bar(found.metric.value, found.metric.lo, found.metric.hi, tip))
                    metrics.append(found.metric)
                else:
                    flipped = flipped or o[0] != found.metric.value
                    row.append(Bar(o[0], o[1], o[2], tip))
                    metrics.append(found.metric.model_copy(update={"value": o[0], "lo": o[1], "hi": o[2]}))
            grid.append(row)
        title = ("training signal vs oracle: agreement" if axis == "signal" else
                 f"{axis}: headline metrics (taller is better)")
        parts.append("<div class='card'>" + bar_chart(title, [names[x] for x in labels], series, grid,
                                                        y_range(metrics), f"chart-{axis}") + "</div>")
    parts.append("</div>" + axis_table(series, columns))
    parts.append("<p class='note'>Every bar is plotted so that taller is better: a lower-is-better rate r as "
                 "\"1 − r\", a score best at zero b as \"1 − |b|\" (the tables below give each figure as "
                 "measured). The axis score averages each axis's headline metrics after putting them "
                 "on a 0-1 higher-is-better scale (a lower-is-better rate r counts as 1 - r; a bias score b, best "
                 "at 0, as 1 - |b|). Its error bar averages the metrics' 95% interval bounds the same way, which is "
                 "conservative. Per-metric bars show each figure (flipped as above) with its 95% CI; hover for n, "
                 "scorer and the figure as measured.</p>")
    return "".join(parts)


def _mark(f: Figure) -> str:
    return "→0" if f.two_sided else "↑" if f.metric.higher_is_better else "↓"


def axis_table(series: Sequence[str], columns: Sequence[list[SuiteResult]]) -> str:
    """The 3H chart's numbers in words: per axis and model/round, the score, its interval, and which headline
    metrics and scorers went into it, so every bar can be traced to the figures (and scorers) behind it."""
    rows = []
    for axis in AXES:
        for name, results in zip(series, columns):
            s = axis_score(results, axis)
            if s is None:
                continue
            figs = [f for r in results for f in headline(r) if f.metric.axis == axis and f.oriented() is not None]
            scorers = sorted({f.metric.scorer for f in figs})
            rows.append(f"<tr><td>{axis}</td>" + (f"<td>{escape(name)}</td>" if len(series) > 1 else "")
                        + f"<td class='num'>{_num(s[0])}</td><td class='num'>[{_num(s[1])}, {_num(s[2])}]</td>"
                        f"<td>{escape(', '.join(f'{human_label(f.suite, f.name)} {_mark(f)}' for f in figs))}</td>"
                        f"<td>{escape(', '.join(scorers))}</td></tr>")
    if not rows:
        return ""
    head = ("<tr><th>axis</th>" + ("<th>model / round</th>" if len(series) > 1 else "")
            + "<th>score</th><th>95% CI</th><th>headline metrics averaged</th><th>scorers</th></tr>")
    return f"<table class='axes'>{head}{''.join(rows)}</table>"


# ---- tables -------------------------------------------------------------------------------------------------------
def suite_table(results: Sequence[SuiteResult], series: Sequence[str]) -> str:
    """One table for one suite across models/rounds: value, 95% CI, n, scorer, direction, description."""
    multi = len(results) > 1
    head = ("<tr>" + ("<th>model / round</th>" if multi else "") + "<th>metric</th><th>value</th><th>95% CI</th>"
            "<th>n</th><th>scorer</th><th>direction</th><th>what it measures</th></tr>")
    rows = []
    for name, r in zip(series, results):
        for f in all_figures(r):
            m = f.metric
            rows.append("<tr>" + (f"<td>{escape(name)}</td>" if multi else "") +
                        f"<td>{escape(f.name)}</td><td class='num'>{_num(m.value)}</td>"
                        f"<td class='num'>[{_num(m.lo)}, {_num(m.hi)}]</td><td class='num'>{m.n}</td>"
                        f"<td>{escape(m.scorer)}</td><td>{_direction(f)}</td><td>{escape(m.description)}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _breakdown(result: SuiteResult) -> str:
    data = result.config.get("breakdown")
    if not isinstance(data, dict) or not data:
        return ""
    cols: list[str] = []
    for v in data.values():
        for k in (v if isinstance(v, dict) else {}):
            if k not in cols:
                cols.append(k)
    head = "<tr><th>group</th>" + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{escape(str(g))}</td>" + "".join(
            f"<td class='num'>{escape(_cell(v.get(c)))}</td>" for c in cols) + "</tr>"
        for g, v in data.items() if isinstance(v, dict)
    )
    return f"<details><summary>Breakdown ({len(data)} groups)</summary><table>{head}{body}</table></details>"


def _cell(v) -> str:
    return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _config_line(result: SuiteResult) -> str:
    keep = ("limit", "seed", "seconds", "samples", "prompts", "reference", "judge_rules_agreement",
            "judge_lexicon_agreement", "judge_unparsed", "length_coef", "note")
    items = [f"{k}={result.config[k]}" for k in keep if result.config.get(k) is not None]
    return f"<p class='meta'>{escape(', '.join(items))}</p>" if items else ""


def suites_section(series: Sequence[str], columns: Sequence[list[SuiteResult]]) -> str:
    order: list[str] = []
    for results in columns:
        for r in results:
            if r.suite not in order:
                order.append(r.suite)
    parts = ["<h2>Suites</h2>"]
    for suite in order:
        found = [(name, next((r for r in results if r.suite == suite), None)) for name, results in zip(series, columns)]
        present = [(n, r) for n, r in found if r is not None]
        parts.append(f"<h3 id='suite-{escape(suite)}'>{escape(suite)}</h3>")
        parts.append(suite_table([r for _, r in present], [n for n, _ in present]))
        last = present[-1][1]
        parts.append(_config_line(last) + _breakdown(last))
    return "".join(parts)


# ---- transcripts ----------------------------------------------------------------------------------------------------
def _transcript(t: Transcript) -> str:
    detail = json.dumps(t.detail, ensure_ascii=False, default=str)[:600] if t.detail else ""
    return (f"<div><span class='verdict'>{escape(t.verdict)}</span> <span class='meta'>{escape(t.item_id)}</span>"
            f"<pre>{escape(t.prompt[-2000:])}</pre><pre>{escape(t.response[:2000]) or '<em>(empty)</em>'}</pre>"
            + (f"<p class='meta'>{escape(detail)}</p>" if detail else "") + "</div>")


def transcripts_section(series: Sequence[str], columns: Sequence[list[SuiteResult]], per_suite: int = 4) -> str:
    parts = ["<h2>Sample transcripts</h2>"]
    for name, results in zip(series, columns):
        for r in results:
            if not r.transcripts:
                continue
            shown = r.transcripts[:per_suite]
            label = f"{r.suite} — {name}" if len(series) > 1 else r.suite
            parts.append(f"<details><summary>{escape(label)}: {len(shown)} of {len(r.transcripts)} kept</summary>"
                         + "".join(_transcript(t) for t in shown) + "</details>")
    return "".join(parts)


def before_after_section(first: list[SuiteResult], last: list[SuiteResult], first_name: str, last_name: str,
                         limit: int = 8) -> str:
    """The same items answered by the first and the last policy: one item of every family in turn (lab suite
    first, an item whose verdict changed first within its family), so a regression on any family (a harmful
    request complied with) is shown, not only the families with the most items."""
    before = {(t.suite, t.item_id): t for r in first for t in r.transcripts}
    found = [(before[(t.suite, t.item_id)], t) for r in last for t in r.transcripts if (t.suite, t.item_id) in before]
    groups: dict[tuple[str, str], list] = {}
    for b, a in sorted(found, key=lambda p: (p[0].suite != "lab", p[0].verdict == p[1].verdict)):
        groups.setdefault((b.suite, b.item_id.rsplit("-", 1)[0]), []).append((b, a))
    limit = max(limit, min(len(groups), 2 * limit))
    pairs = [g[i] for i in range(max((len(g) for g in groups.values()), default=0)) for g in groups.values()
             if i < len(g)]
    parts = [f"<h2>Same prompts, before and after</h2><p class='note'>Left: {escape(first_name)}. "
             f"Right: {escape(last_name)}. Items whose verdict changed come first.</p>"]
    if not pairs:
        parts.append("<p class='note'>No transcript item appears in both rounds.</p>")
    for b, a in pairs[:limit]:
        parts.append(f"<details open><summary>{escape(b.suite)} / {escape(b.item_id)}: {escape(b.verdict)} → "
                     f"{escape(a.verdict)}</summary><pre>{escape(b.prompt[-1500:])}</pre><div class='pair'>"
                     f"<div><span class='verdict'>{escape(b.verdict)}</span><pre>{escape(b.response[:1500])}</pre></div>"
                     f"<div><span class='verdict'>{escape(a.verdict)}</span><pre>{escape(a.response[:1500])}</pre></div>"
                     "</div></details>")
    return "".join(parts)


# ---- reliability ----------------------------------------------------------------------------------------------------
def reliability_section(all_results: Sequence[SuiteResult]) -> str:
    scorers: dict[str, set[str]] = {}
    agreement: dict[str, list[str]] = {}
    for r in all_results:
        for m in r.metrics.values():
            scorers.setdefault(m.scorer, set()).add(r.suite)
        for key, fallback in (("judge_rules_agreement", "refusal-rules"), ("judge_lexicon_agreement", "toxicity-lexicon")):
            if key in r.config:
                agreement.setdefault(r.config.get("scorer", "judge"), []).append(
                    f"{r.suite}: agrees with {fallback} on {r.config[key]:.0%} of {r.config.get('graded', '?')} items"
                    f" ({r.config.get('judge_unparsed', 0)} unparsed replies fell back to it)")
        if r.config.get("judge") and r.config.get("graded") and r.config.get("judge_unparsed") == r.config["graded"]:
            agreement.setdefault(r.config.get("scorer", ""), []).append(
                f"{r.suite}: the judge {r.config['judge']} gave no parseable verdict on {r.config['graded']} items, "
                "so every figure is this fallback's")
    rows = []
    for scorer in sorted(scorers):
        kind = scorer_kind(scorer)
        text = KIND_NOTES.get(kind, "No reliability information for this scorer.")
        measured = summary(kind) if kind in MEASURED else ""
        extra = "; ".join(agreement.get(scorer, []))
        rows.append(f"<tr><td>{escape(scorer)}</td><td>{escape(', '.join(sorted(scorers[scorer])))}</td>"
                    f"<td>{escape(text)}" + (f"<br><b>Measured:</b> {escape(measured)}" if measured else "")
                    + (f"<br><b>This run:</b> {escape(extra)}" if extra else "") + "</td></tr>")
    return ("<h2>How reliable is each scorer?</h2><table><tr><th>scorer</th><th>suites</th><th>reliability</th></tr>"
            + "".join(rows) + "</table>")


# ---- entry points ---------------------------------------------------------------------------------------------------
def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def render_eval(results: Sequence[SuiteResult], title: str) -> str:
    groups = by_model(results)
    series, columns = list(groups), list(groups.values())
    body = (f"<h1>{escape(title)}</h1><p class='meta'>{escape(', '.join(series))} · "
            f"{len({r.suite for r in results})} suites · {_stamp()}</p>"
            + overview(series, columns, "models") + suites_section(series, columns)
            + transcripts_section(series, columns) + reliability_section(results))
    return page(title, body)


def write_eval_report(results: list[SuiteResult], out_dir: Path, title: str) -> Path:
    """Write ``out_dir/report.html`` (and ``out_dir/results.json``, the SuiteResults it shows); return the page."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "results.json",
                      json.dumps([r.model_dump() for r in results], indent=1, ensure_ascii=False) + "\n")
    path = out_dir / "report.html"
    atomic_write_text(path, render_eval(results, title))
    return path


def load_run_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise UserError(f"{path}: file not found (has the run evaluated any round yet?)")
    try:
        data = json.loads(path.read_text("utf-8"))
        rounds = data["rounds"]
        for rnd in rounds:
            rnd["results"] = [SuiteResult.model_validate(r) for r in rnd["results"]]
            int(rnd["round"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: malformed metrics file ({str(exc).splitlines()[0][:200]})") from exc
    if not rounds:
        raise UserError(f"{path}: no rounds recorded")
    data["rounds"] = sorted(rounds, key=lambda r: int(r["round"]))
    return data


def _lines_section(rounds: list[dict]) -> str:
    labels: list[tuple[str, str]] = []
    two_sided: set[tuple[str, str]] = set()
    for rnd in rounds:
        for r in rnd["results"]:
            for f in headline(r):
                if (f.suite, f.name) not in labels:
                    labels.append((f.suite, f.name))
                if f.two_sided:
                    two_sided.add((f.suite, f.name))
    xs = [int(r["round"]) for r in rounds]
    charts = []
    for k, (suite, name) in enumerate(labels):
        pts: list[Bar | None] = []
        metrics = []
        shown = human_label(suite, name)
        for rnd in rounds:
            res = next((r for r in rnd["results"] if r.suite == suite), None)
            m = res.metrics.get(name) if res else None
            if m is None:
                pts.append(None)
                continue
            f = Figure(suite, name, m, (suite, name) in two_sided)
            o = f.oriented()  # taller is better here too
            if o is not None:
                shown = f"{SUITE_NAMES.get(suite, suite)}: {oriented_name(f)}"
                m = m.model_copy(update={"value": o[0], "lo": o[1], "hi": o[2]})
            pts.append(Bar(m.value, m.lo, m.hi, f"n={m.n}"))
            metrics.append(m)
        charts.append("<div class='card'>" + line_chart(f"{shown} ↑", xs, [name], [pts],
                                                          y_range(metrics), f"line-{k}") + "</div>")
    return "<h2>Metrics over rounds</h2><div class='charts'>" + "".join(charts) + "</div>"


def overoptimisation_section(rounds: list[dict]) -> str:
    """Per signal with a scorer: the score it optimised (its proxy, ``<signal>.proxy_score``) and the oracle's
    verdict on the same samples (``samples_correct``), over rounds, in one chart: a proxy that climbs while the
    oracle's figure stays or falls is reward hacking, visible when it starts."""
    signals: list[str] = []
    for rnd in rounds:
        for r in rnd["results"]:
            if r.suite == "judge_agreement":
                signals += [n[: -len(".proxy_score")] for n in r.metrics
                            if n.endswith(".proxy_score") and n[: -len(".proxy_score")] not in signals]
    if not signals:
        return ""
    charts = []
    for k, sig in enumerate(signals):
        xs: list[int] = []
        proxy: list[Bar | None] = []
        oracle: list[Bar | None] = []
        for rnd in rounds:
            res = next((r for r in rnd["results"] if r.suite == "judge_agreement"), None)
            if res is None:
                continue
            xs.append(int(rnd["round"]))
            for name, out in ((f"{sig}.proxy_score", proxy), ("samples_correct", oracle)):
                m = res.metrics.get(name)
                out.append(None if m is None else Bar(m.value, m.lo, m.hi, f"n={m.n}"))
        charts.append("<div class='card'>" + line_chart(f"{sig}: proxy vs oracle", xs, ["proxy score", "oracle"],
                                                          [proxy, oracle], (0.0, 1.0), f"overopt-{k}") + "</div>")
    return ("<h2>Over-optimisation: what the signal optimised vs the oracle</h2><p class='note'>The proxy is the "
            "signal's own mean score of the round's samples; the oracle line is the share of those samples the lab "
            "oracle grades correct.</p><div class='charts'>" + "".join(charts) + "</div>")


FELL = "<b style='color:#b00'>fell beyond its noise</b>"


def result_section(data: dict) -> str:
    """The run's result in one table: the final policy and the last round against the base, every compared figure
    with the interval of its change, and a flag where a figure fell beyond its noise."""
    result = data.get("result") or {}
    final = data.get("final") or {}
    if not result:
        return ""
    parts = ["<h2>Result</h2>"]
    if int(final.get("round", 0)) == 0:
        parts.append("<p class='note'><b>No round was kept: the final policy is the base.</b></p>")
    for key, title in (("final_vs_base", f"final policy (round {int(final.get('round', 0))}) vs the base"),
                       ("last_vs_base", "last round vs the base")):
        res = result.get(key)
        if not res or (key == "last_vs_base" and "final_vs_base" in result
                       and int(final.get("round", 0)) == len(data["rounds"]) - 1):
            continue
        rows = "".join(
            f"<tr><td>{escape(human_label(c['suite'], c['metric']))} <span class='meta'>{escape(c['suite'])}."
            f"{escape(c['metric'])}</span></td><td>{_num(c['kept'])} → {_num(c['new'])}</td>"
            f"<td>{c['change']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]</td><td>{escape(c['test'])}</td>"
            f"<td>{FELL if c['fell'] else ''}</td></tr>" for c in res["comparisons"])
        parts.append(f"<h3>{escape(title)}</h3><table><tr><th>figure</th><th>base → policy</th>"
                     "<th>change (better +), 95% CI</th><th>test</th><th></th></tr>" + rows + "</table>")
    return "".join(parts)


def gate_section(rounds: list[dict], final: dict | None) -> str:
    """Which rounds the 3H gate kept, and for a rejected one, which figures fell beyond their noise."""
    decided = [r for r in rounds if r.get("gate")]
    if not decided:
        return ""
    rows = []
    for rnd in decided:
        g = rnd["gate"]
        fell = [c for c in g.get("comparisons", []) if c.get("fell")]
        what = ("; ".join(f"{escape(c['suite'])}.{escape(c['metric'])} {_num(c['kept'])} → {_num(c['new'])} "
                          f"(change {c['change']:+.3f}, 95% CI [{c['lo']:+.3f}, {c['hi']:+.3f}], {escape(c['test'])})"
                          for c in fell) if fell else
                f"no figure fell beyond its noise ({len(g.get('comparisons', []))} compared)")
        verdict = "<b>kept</b>" if g.get("kept") else "<b style='color:#b00'>rejected</b>"
        rows.append(f"<tr><td>round {int(rnd['round'])}</td><td>round {int(g.get('against_round', 0))}</td>"
                    f"<td>{verdict}</td><td>{what}</td></tr>")
    rejected = [int(r["round"]) for r in decided if not r["gate"].get("kept")]
    lead = (f"<p class='note'>Not kept: round {', '.join(map(str, rejected))}. A rejected round lost a figure "
            "beyond its noise against the last kept policy; the next round started from that policy.</p>" if rejected else
            "<p class='note'>Every round was kept.</p>")
    if final is not None:
        lead += f"<p class='note'>Final policy: round {int(final.get('round', 0))} ({escape(str(final.get('model')))}).</p>"
    return ("<h2>3H gate</h2>" + lead + "<table><tr><th>round</th><th>against</th><th>decision</th>"
            "<th>figures that fell</th></tr>" + "".join(rows) + "</table>")


def render_run(data: dict, run_dir: Path | None = None) -> str:
    """The run's report. ``run_dir`` (where ``metrics.json`` lies) adds what the train manifests hold: the reward
    curves of online-RL phases."""
    from autoalign.report.reward_curves import reward_curves_section, with_train_metrics

    rounds = data["rounds"]
    run = str(data.get("run", "run"))
    series = [f"round {r['round']}" for r in rounds]
    columns = [r["results"] for r in rounds]
    recipe = data.get("recipe") or {}
    title = f"autoalign run {run}"
    first = rounds[0]
    # the policy the run ends with is the last one the 3H gate kept, not necessarily the last round's
    final_round = int((data.get("final") or {}).get("round", rounds[-1]["round"]))
    final = next((r for r in rounds if r["round"] == final_round), rounds[-1])
    final_name = f"round {final['round']}"
    curves = reward_curves_section(with_train_metrics(run_dir, rounds)) if run_dir is not None else ""
    body = (f"<h1>{escape(title)}</h1><p class='meta'>{len(rounds)} evaluated rounds · "
            f"policy: {escape(str(first.get('model', '')))} → final ({escape(final_name)}): "
            f"{escape(str(final.get('model', '')))} · {_stamp()}</p>"
            + headline_section(data) + result_section(data) + overview(series, columns, "rounds")
            + gate_section(rounds, data.get("final"))
            + (training_section(Path(run_dir), rounds) if run_dir is not None else "")
            + _lines_section(rounds) + overoptimisation_section(rounds) + curves
            + before_after_section(first["results"], final["results"], series[0], final_name)
            + suites_section(series, columns)
            + transcripts_section(series[-1:], columns[-1:])
            + reliability_section([r for c in columns for r in c])
            + "<h2>Recipe</h2><details><summary>resolved recipe</summary><pre>"
            + escape(json.dumps(recipe, indent=2, ensure_ascii=False, default=str)) + "</pre></details>")
    return page(title, body)


def write_run_report(run_dir: Path) -> Path:
    """Read ``run_dir/metrics.json`` (CONTRACTS.md) and write ``run_dir/report.html`` next to it."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html"
    atomic_write_text(path, render_run(load_run_metrics(run_dir), run_dir))
    return path


# ---- the headline: change vs round 0 and vs the previous round ------------------------------------------------------
def _round_changes(rounds: list[dict]) -> list[tuple[int, int, dict]]:
    """(against, round, comparisons by (suite, metric)) for every round k >= 1 against round 0 and against round
    k - 1: the 3H gate's rule (``autoalign.gate.decide``: paired over items where stored, else from the two CIs)."""
    from autoalign.gate import GateConfig, decide

    dumps = [[r.model_dump() for r in rnd["results"]] for rnd in rounds]
    out = []
    for k in range(1, len(rounds)):
        for j in sorted({0, k - 1}):
            d = decide(dumps[j], dumps[k], GateConfig(), against_round=int(rounds[j]["round"]))
            out.append((j, k, {(c.suite, c.metric): c.model_dump() for c in d.comparisons}))
    return out


def _change_cell(c: dict | None) -> str:
    if c is None:
        return "<td></td>"
    cls = " down" if c["fell"] else " up" if c["lo"] > 0 else ""
    flag = " <b>fell</b>" if c["fell"] else ""
    return f"<td class='num{cls}'>{c['change']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]{flag}</td>"


def headline_section(data: dict) -> str:
    """Per lab axis and the composite: the base, every later round, each change against round 0 and against the
    previous round with its 95% interval (better is +), the no-skill floor and the ceiling; then, in words, every
    figure (public suites too) that fell beyond its noise, in red."""
    from autoalign.report.summary import CEILING, floor, human_label

    rounds = data["rounds"]
    if len(rounds) < 2:
        return ""
    idx = {int(r["round"]): i for i, r in enumerate(rounds)}
    changes = _round_changes(rounds)
    lab = [next((r for r in rnd["results"] if r.suite == "lab"), None) for rnd in rounds]
    rows = []
    for axis in ("composite", "helpful", "harmless", "honest"):
        base = lab[0].metrics.get(axis) if lab[0] else None
        if base is None:
            continue
        fl, who = floor(axis)
        for k in range(1, len(rounds)):
            res_k = lab[k]
            m = res_k.metrics.get(axis) if res_k is not None else None
            if m is None:
                continue
            vs0 = next((c.get(("lab", axis)) for j, kk, c in changes if kk == k and j == 0), None)
            prev = next((c.get(("lab", axis)) for j, kk, c in changes if kk == k and j == k - 1), None)
            name = f"<b>{escape(axis)}</b>" if k == 1 else ""
            rows.append(f"<tr><td>{name}</td><td class='num' title='{escape(who)}'>{_num(fl)} · {_num(CEILING)}</td>"
                        f"<td class='num'>{_num(base.value)} [{_num(base.lo)}, {_num(base.hi)}]</td>"
                        f"<td>round {int(rounds[k]['round'])}</td>"
                        f"<td class='num'>{_num(m.value)} [{_num(m.lo)}, {_num(m.hi)}]</td>"
                        + _change_cell(vs0) + _change_cell(prev) + "</tr>")
    words = [f"<li class='down'><b>{escape(human_label(c['suite'], c['metric']))}</b> fell from "
             f"{_num(c['kept'])} (round {int(rounds[j]['round'])}) to {_num(c['new'])} (round "
             f"{int(rounds[k]['round'])}): change {c['change']:+.3f}, 95% CI [{c['lo']:+.3f}, {c['hi']:+.3f}]"
             f" ({escape(c['test'])}), the whole interval below 0.</li>"
             for j, k, comps in changes for c in comps.values() if c["fell"]]
    final_round = int((data.get("final") or {}).get("round", rounds[-1]["round"]))
    fin = lab[idx.get(final_round, len(rounds) - 1)]
    lead = ""
    base_lab = lab[0]
    if base_lab is not None and fin is not None and "composite" in fin.metrics and "composite" in base_lab.metrics:
        c = next((cc.get(("lab", "composite")) for j, kk, cc in changes
                  if j == 0 and kk == idx.get(final_round, len(rounds) - 1)), None)
        ci = f" ({c['change']:+.3f}, 95% CI [{c['lo']:+.3f}, {c['hi']:+.3f}])" if c else ""
        lead = (f"<p class='headline'>3H composite: {_num(base_lab.metrics['composite'].value)} (round 0) → "
                f"{_num(fin.metrics['composite'].value)} (final policy, round {final_round}){ci}; "
                f"a no-skill policy gets {_num(floor('composite')[0])}, the ceiling is {_num(CEILING)}.</p>")
    verdict = (f"<p class='down'><b>Regressions: {len(words)} change(s) fell beyond their noise.</b></p>"
               f"<ul class='regressions'>{''.join(words)}</ul>" if words else
               "<p class='up'><b>No figure fell beyond its noise</b> against round 0 or the previous round.</p>")
    table = ("<table class='headline-table'><tr><th>axis</th><th>no-skill floor · ceiling</th><th>round 0, 95% CI</th>"
             "<th>round</th><th>score, 95% CI</th><th>change vs round 0 (better +), 95% CI</th>"
             "<th>change vs previous round, 95% CI</th></tr>" + "".join(rows) + "</table>") if rows else ""
    return ("<h2>Headline</h2>" + lead + verdict + table +
            "<p class='note'>Changes are the 3H gate's: paired over the items both rounds answered (lab suite), "
            "else from the two 95% intervals. Axis intervals combine the parts' Wilson intervals (MOVER), so they "
            "keep their width when every item scores alike. The floor is the best score among policies with no "
            "skill (a random-init model, a constant refusal, a constant \"I don't know\", one constant hedge; "
            "hover for which): a score near it means nothing was learnt.</p>")


# ---- training: data per signal, the screen, the loss -------------------------------------------------------------
def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _stat_line(stats: dict) -> str:
    keep = [(k, v) for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)][:10]
    return ", ".join(f"{k.replace('_', ' ')} {_cell(v)}" for k, v in keep)


def training_section(run_dir: Path, rounds: list[dict]) -> str:
    """Per trained round: the training data each signal produced (``round-k/signals/manifest.json``), what the
    screen kept and dropped per reason (``round-k/train/manifest.json`` ``screen``), and each phase's loss curve
    (the train manifest's ``loss_log``; runs made before it was kept show the final loss only)."""
    parts = []
    for rnd in rounds:
        k = int(rnd["round"])
        if k == 0:
            continue
        sig = _read_manifest(run_dir / f"round-{k}" / "signals" / "manifest.json")
        train = _read_manifest(run_dir / f"round-{k}" / "train" / "manifest.json")
        if not sig and not train:
            continue
        out = [f"<h3>round {k}</h3>"]
        stats = sig.get("stats") or {}
        if stats:
            rows = "".join(
                f"<tr><td>{escape(name)}</td><td class='num'>{_cell(s.get('sft', ''))}</td>"
                f"<td class='num'>{_cell(s.get('preferences', ''))}</td><td>{escape(_stat_line(s))}</td></tr>"
                for name, s in stats.items() if isinstance(s, dict))
            counts = sig.get("counts") or {}
            out.append("<table><tr><th>signal</th><th>SFT examples</th><th>preference pairs</th><th>signal stats</th>"
                       f"</tr>{rows}<tr><td><b>total</b></td><td class='num'>{_cell(counts.get('sft', ''))}</td>"
                       f"<td class='num'>{_cell(counts.get('preferences', ''))}</td>"
                       f"<td>labels {_cell(counts.get('labels', ''))}</td></tr></table>")
        screen = train.get("screen") or {}
        if screen:
            screened: list[str] = []
            for kind, s in screen.items():
                if not isinstance(s, dict):
                    continue
                dropped = {r: n for r, n in s.items() if r not in ("kept", "kept_refusals")}
                why = ", ".join(f"{r.replace('_', ' ')} {n}" for r, n in dropped.items()) or "none"
                extra = f" ({s['kept_refusals']} of them refusals)" if s.get("kept_refusals") else ""
                screened.append(f"<tr><td>{escape(kind)}</td><td class='num'>{_cell(s.get('kept', 0))}{extra}</td>"
                                f"<td>{escape(why)}</td></tr>")
            out.append("<table><tr><th>screened</th><th>kept</th><th>dropped, per reason</th></tr>"
                       + "".join(screened) + "</table>")
        metrics = train.get("metrics") or {}
        charts, notes = [], []
        for i, p in enumerate(metrics.get("phases", [])):
            name = str(p.get("name"))
            found = metrics.get(name)
            m: dict = found if isinstance(found, dict) else {}
            log = m.get("loss_log") or []
            loss = m.get("train_loss")
            desc = f"{escape(name)} ({escape(str(p.get('status')))}): {m.get('steps', '?')} steps" + (
                f", mean training loss {loss:.4f}" if isinstance(loss, (int, float)) else "")
            if log:
                vals = [float(r["loss"]) for r in log]
                lo, hi = min(vals), max(vals)
                pad = (hi - lo) * 0.05 or 0.1
                pts = [Bar(v, v, v, f"step {int(r['step'])}") for r, v in zip(log, vals)]
                charts.append("<div class='card'>" + line_chart(
                    f"round {k} {name}: training loss", [int(r["step"]) for r in log], ["loss"], [pts],
                    (max(0.0, lo - pad), hi + pad), f"loss-{k}-{i}", width=360, x_label="step") + "</div>")
            else:
                desc += " (no loss curve: this run was trained before the loss log was kept)"
            notes.append(desc)
        if notes:
            out.append("<p class='note'>" + "; ".join(notes) + "</p>")
        if charts:
            out.append("<div class='charts'>" + "".join(charts) + "</div>")
        parts.append("".join(out))
    return "<h2>Training</h2>" + "".join(parts) if parts else ""
