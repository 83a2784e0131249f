"""Multi-head vs single-head reward models, against the lab oracle: does one trunk with a head per 3H axis rank
responses as well as one model per axis, and better than one head for all axes?

On the same AI preference pairs (the policy's samples of lab prompts, judged pointwise by ``judge`` under a
principle of each prompt's axis; per prompt the widest judged gaps of at least ``min_gap``, as the ``multihead_rm``
signal makes them), three kinds of model are trained with the same trainer and schedule
(``autoalign.train.multihead_rm``):

- ``multihead``: one model, one head per axis, each pair on its axis's head;
- ``single``: one single-head model per axis, each on that axis's pairs only (three trunks);
- ``shared``: one model with one head, every axis's pairs on it (a plain Bradley-Terry reward model).

Each is scored per axis on held-out lab pairs (``judge_agreement.lab_pairs``: eval-split tasks, the reference
response vs the task's characteristic failure, kept when the oracle grades them apart): the share where the
model's reward for the axis (its head, its own model, or the one head) ranks the good response strictly higher,
with a Wilson 95% interval. Printed as a table and written as JSON (``OUT/rm_heads.json``); a rerun reuses a
model already trained in ``OUT``.

    python -m autoalign.evaluate.rm_heads --policy lab:small --judge lab:teacher --prompts 480 --out runs/rm_heads
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Mapping, Optional, Sequence

import typer

from autoalign.evaluate.judge_agreement import lab_pairs
from autoalign.evaluate.stats import wilson_interval

AXES = ("helpful", "harmless", "honest")


def axis_figure(hits: int, n: int) -> dict[str, Any]:
    """One cell of the table: the accuracy with its Wilson 95% interval (None when there are no pairs)."""
    if n == 0:
        return {"accuracy": None, "lo": None, "hi": None, "n": 0}
    lo, hi = wilson_interval(hits, n)
    return {"accuracy": round(hits / n, 4), "lo": round(lo, 4), "hi": round(hi, 4), "n": n}


def lab_accuracy(by_axis: Mapping[str, str | Path], pairs: Sequence[tuple[Any, str, str]]) -> dict[str, dict]:
    """Per axis, the accuracy on the oracle's ``pairs`` (task, good, bad) of the model directory ``by_axis[axis]``
    read on the head of that axis (or its one head): r(x, good) > r(x, bad), ties count as errors; ``all``: every
    axis scored. An axis with no model or no pair gets an empty cell."""
    from autoalign.signals.model_feedback.multihead_rm import MultiHeadRewardModel
    from autoalign.train.losses import per_axis_accuracy

    chats = [[{"role": "user", "content": t.question}] for t, _, _ in pairs]
    axes = [t.axis for t, _, _ in pairs]
    loaded: dict[str, MultiHeadRewardModel] = {}
    cells: dict[str, dict] = {}
    hits_all = n_all = 0
    for a in AXES:
        idx = [i for i, x in enumerate(axes) if x == a]
        if a not in by_axis or not idx:
            cells[a] = axis_figure(0, 0)
            continue
        key = str(by_axis[a])
        if key not in loaded:
            loaded[key] = MultiHeadRewardModel(key)
        rm = loaded[key]
        head = a if a in rm.heads else rm.heads[0]
        good = rm.score([chats[i] for i in idx], [pairs[i][1] for i in idx], [head] * len(idx))
        bad = rm.score([chats[i] for i in idx], [pairs[i][2] for i in idx], [head] * len(idx))
        hits, n = per_axis_accuracy(good, bad, [a] * len(idx))[a]
        cells[a] = axis_figure(hits, n)
        hits_all, n_all = hits_all + hits, n_all + n
    cells["all"] = axis_figure(hits_all, n_all)
    return cells


def judge_pairs(policy: Any, judge: Any, count: int, seed: int, samples: int, min_gap: float,
                pairs_per_prompt: int, max_new_tokens: int) -> tuple[list[dict], dict]:
    """(preference rows with their ``axis``, counts): the policy's samples of ``count`` lab prompts judged by
    ``judge`` (``PointwiseJudge``, principles of the prompt's axis), paired as the ``multihead_rm`` signal pairs."""
    from collections import Counter

    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.base import Sampling
    from autoalign.records import Sample, preference_rows
    from autoalign.signals.model_feedback.common import score_samples
    from autoalign.signals.model_feedback.judges import PointwiseJudge
    from autoalign.signals.model_feedback.raft import ai_preferences

    prompts = lab_prompts(count, seed=seed)
    outs = policy.generate([p.messages for p in prompts],
                           Sampling(n=samples, temperature=0.9, top_p=0.95, max_new_tokens=max_new_tokens, seed=seed))
    drawn = [Sample(prompt_id=p.id, index=j, text=c.text, model=policy.uri)
             for p, cs in zip(prompts, outs) for j, c in enumerate(cs)]
    scored = score_samples(PointwiseJudge(judge, seed=seed), prompts, drawn, seed, "axis")
    prefs = ai_preferences(scored, prompts, "rm_heads", min_gap, pairs_per_prompt)
    axis_of = {p.id: str(p.axis) for p in prompts}
    rows = [{**row, "axis": axis_of[p.prompt_id]} for row, p in zip(preference_rows(prefs), prefs)]
    return rows, {"prompts": len(prompts), "samples": len(drawn), "pairs": dict(Counter(r["axis"] for r in rows))}


def _trained(base: str, rows: list[dict], out: Path, heads: Sequence[str], seed: int, schedule: dict) -> Path:
    """The model trained on ``rows`` in ``out/model`` (reused when a run already left it there)."""
    if not (out / "model" / "config.json").is_file():
        from autoalign.train.multihead_rm import train_multihead_reward_model

        train_multihead_reward_model(base, rows, out, heads=heads, seed=seed, **schedule)
    return out / "model"


def compare_heads(policy: Any, judge: Any, out: str | Path, *, count: int = 480, seed: int = 0, samples: int = 4,
                  min_gap: float = 0.2, pairs_per_prompt: int = 1, max_new_tokens: int = 48, per_family: int = 40,
                  eval_seed: int = 1234, schedule: dict | None = None) -> dict:
    """The comparison of the module docstring: ``policy`` and ``judge`` are LMs (the policy's ``path`` is every
    model's starting trunk); ``schedule``: ``train_multihead_reward_model``'s keyword arguments (epochs,
    learning_rate, batch_size, max_length, max_steps). Returns (and writes to ``out/rm_heads.json``) the table."""
    from autoalign.store import write_json

    out = Path(out)
    base = getattr(policy, "path", None)
    if base is None:
        from autoalign.errors import UserError

        raise UserError(f"--policy {policy.uri}: the model has no local weights to start a reward model from")
    schedule = dict(schedule or {})
    rows, counts = judge_pairs(policy, judge, count, seed, samples, min_gap, pairs_per_prompt, max_new_tokens)

    models: dict[str, dict[str, Path]] = {"multihead": {}, "single": {}, "shared": {}}
    train_axes = [a for a in AXES if any(r["axis"] == a for r in rows)]
    if len(rows) >= 2:
        mh = _trained(base, rows, out / "multihead", AXES, seed, schedule)
        sh = _trained(base, rows, out / "shared", ["all"], seed, schedule)
        models["multihead"] = {a: mh for a in train_axes}
        models["shared"] = {a: sh for a in AXES}
    for a in train_axes:
        mine = [r for r in rows if r["axis"] == a]
        if len(mine) >= 2:
            models["single"][a] = _trained(base, mine, out / f"single-{a}", [a], seed, schedule)

    pairs = lab_pairs(per_family, eval_seed)
    table = {variant: lab_accuracy(by_axis, pairs) for variant, by_axis in models.items()}
    axes = [t.axis for t, _, _ in pairs]
    result = {"policy": policy.uri, "judge": judge.uri, "seed": seed, "judge_pairs": counts,
              "lab_pairs": {a: axes.count(a) for a in AXES}, "per_family": per_family, "eval_seed": eval_seed,
              "schedule": schedule, "accuracy": table}
    write_json(out / "rm_heads.json", result)
    return result


def render(result: dict) -> Any:
    """The table (rich): one row per model kind, one column per axis, ``accuracy [lo, hi] (n)``."""
    from rich.table import Table

    table = Table(title=f"reward-model accuracy on held-out lab pairs (oracle), {result['policy']}, judge {result['judge']}")
    table.add_column("model")
    for a in (*AXES, "all"):
        table.add_column(a, justify="right")
    for variant, cells in result["accuracy"].items():
        shown = [f"{c['accuracy']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}] ({c['n']})" if c["n"] else "-"
                 for c in (cells[a] for a in (*AXES, "all"))]
        table.add_row(variant, *shown)
    return table


def main(
    policy: Annotated[str, typer.Option(help="the policy sampled, whose trunk every model starts from")] = "lab:small",
    judge: Annotated[str, typer.Option(help="the pointwise judge that labels the pairs")] = "lab:teacher",
    prompts: Annotated[int, typer.Option(help="lab prompts sampled")] = 480,
    samples: Annotated[int, typer.Option(help="samples per prompt")] = 4,
    min_gap: Annotated[float, typer.Option(help="the judged gap a pair needs")] = 0.2,
    pairs_per_prompt: Annotated[int, typer.Option(help="the widest-gap pairs kept per prompt (1: best vs worst)")] = 1,
    per_family: Annotated[int, typer.Option(help="held-out lab tasks per family for the oracle pairs")] = 40,
    epochs: Annotated[float, typer.Option(help="reward-model training epochs")] = 2.0,
    learning_rate: Annotated[float, typer.Option(help="reward-model learning rate")] = 1e-4,
    max_steps: Annotated[Optional[int], typer.Option(help="stop training after this many optimizer steps")] = None,
    seed: Annotated[int, typer.Option(help="seed of the prompts, sampling, judging and training")] = 0,
    out: Annotated[Path, typer.Option(help="where the models and rm_heads.json go")] = Path("runs/rm_heads"),
    model: Annotated[Optional[Path], typer.Option(
        help="only score this trained multi-head model directory (e.g. a run's artifact) per axis")] = None,
) -> None:
    """Train the multi-head, per-axis and shared reward models on the same judge pairs; per-axis oracle accuracy."""
    from rich.console import Console

    from autoalign.models.registry import load_lm

    if model is not None:
        cells = lab_accuracy({a: model for a in AXES}, lab_pairs(per_family, 1234))
        Console().print_json(data={"model": str(model), "per_family": per_family, "accuracy": cells})
        return

    result = compare_heads(load_lm(policy), load_lm(judge), out, count=prompts, seed=seed, samples=samples,
                           min_gap=min_gap, pairs_per_prompt=pairs_per_prompt, per_family=per_family,
                           schedule={"epochs": epochs, "learning_rate": learning_rate, "max_steps": max_steps})
    console = Console()
    console.print(render(result))
    console.print(f"judge pairs per axis: {result['judge_pairs']['pairs']}; written to {out / 'rm_heads.json'}")


if __name__ == "__main__":
    typer.run(main)
