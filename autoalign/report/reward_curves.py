"""The reward curves of a run's online-RL phases beside the oracle's figures (the over-optimisation view, DESIGN.md
"the 3H gate"): each RL phase's reward per step (the total TRL optimised, and each scorer's mean), then the lab
oracle's 3H axes per round, so a reward that climbs while an axis falls is seen at a glance.

``rounds`` are the round dicts of ``metrics.json`` (``round``, ``results``), each with the round's training
metrics under ``train`` (the train stage manifest's ``metrics``: ``phases`` and, per trained phase name, the
phase's metrics with its ``reward_log``); ``with_train_metrics`` adds them from a run directory.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from autoalign.report.svg import Bar, legend, line_chart

AXES = ("helpful", "harmless", "honest", "composite")


def with_train_metrics(run_dir: str | Path, rounds: list[dict]) -> list[dict]:
    """``rounds`` with each round's training metrics (``round-k/train/manifest.json``) under ``train``."""
    out = []
    for r in rounds:
        path = Path(run_dir) / f"round-{r['round']}" / "train" / "manifest.json"
        train = json.loads(path.read_text()).get("metrics", {}) if path.is_file() else {}
        out.append({**r, "train": train})
    return out


def rl_phases(round_: dict) -> list[tuple[str, dict]]:
    """(phase name, phase metrics) of the round's trained phases that logged rewards (online RL)."""
    train = round_.get("train") or {}
    names = [p["name"] for p in train.get("phases", []) if p.get("status") == "trained"]
    return [(n, train[n]) for n in names if isinstance(train.get(n), dict) and train[n].get("reward_log")]


def reward_series(log: list[dict]) -> dict[str, list[float | None]]:
    """Series name -> value per logged step: ``reward`` (the weighted total), then each scorer's mean."""
    keys = ["reward"] + sorted({k for row in log for k in row if k.startswith("rewards/") and k.endswith("/mean")})
    return {k.removeprefix("rewards/").removesuffix("/mean") if k != "reward" else k:
            [row.get(k) for row in log] for k in keys}


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    pad = (hi - lo) * 0.05 or 1.0
    return lo - pad, hi + pad


def reward_chart(title: str, log: list[dict], chart_id: str) -> str:
    series = reward_series(log)
    steps = [int(row.get("step", i + 1)) for i, row in enumerate(log)]
    points = [[Bar(v, v, v, f"step {s}: {v:.3f}") if v is not None else None for s, v in zip(steps, vals)]
              for vals in series.values()]
    values = [v for vals in series.values() for v in vals if v is not None]
    return line_chart(title, steps, list(series), points, y_range=_range(values) if values else (0.0, 1.0),
                      chart_id=chart_id, width=420, x_label="step") + legend(list(series))


def _plain(result) -> dict:
    """A round's result as metrics.json holds it: a dict, or a SuiteResult as ``load_run_metrics`` gives it."""
    return result if isinstance(result, dict) else result.model_dump()


def oracle_chart(rounds: list[dict], suite: str = "lab") -> str:
    """The oracle's 3H axes per round (value and 95% CI), '' when no round has the suite."""
    xs = [int(r["round"]) for r in rounds]
    points: list[list[Bar | None]] = []
    for axis in AXES:
        row: list[Bar | None] = []
        for r in rounds:
            res = next((_plain(x) for x in r.get("results", []) if _plain(x).get("suite") == suite), None)
            m = (res or {}).get("metrics", {}).get(axis)
            row.append(Bar(m["value"], m["lo"], m["hi"], f"round {r['round']} {axis}: {m['value']:.3f} "
                           f"[{m['lo']:.3f}, {m['hi']:.3f}]") if m else None)
        points.append(row)
    if not any(p for row in points for p in row):
        return ""
    return line_chart(f"oracle ({suite} suite) per round", xs, list(AXES), points, chart_id="oracle-per-round",
                      width=320) + legend(list(AXES))


def reward_curves_section(rounds: list[dict]) -> str:
    """HTML: one chart of reward per step for each RL phase of each round, beside the oracle's figures per round;
    '' when no round trained an online-RL phase."""
    charts = [reward_chart(f"round {r['round']}: {name} reward per step", m["reward_log"],
                           f"reward-{r['round']}-{name}")
              for r in rounds for name, m in rl_phases(r)]
    if not charts:
        return ""
    oracle = oracle_chart(rounds)
    note = ("The reward each online-RL phase optimised, per step (the weighted total and each scorer's mean), "
            "beside the lab oracle's 3H axes per round: a reward that rises while an axis falls is over-optimisation "
            "of the proxy, or an alignment tax on what the reward does not see.")
    return ('<section class="reward-curves"><h2>Reward curves</h2>'
            f'<p class="note">{escape(note)}</p><div class="charts">{"".join(charts)}{oracle}</div></section>')


__all__ = ["reward_curves_section", "reward_chart", "oracle_chart", "rl_phases", "reward_series",
           "with_train_metrics"]
