"""Headroom: what a perfect signal could gain on the lab, measured against the lab's ground truth.

For a lab base model, the lab suite (``evaluate_lab``: composite and each axis, with 95% CIs) of

- ``base``: the model as pretrained;
- ``oracle_sft``: SFT on the oracle's reference answers (``Task.good``) to ``prompts`` train-split lab prompts,
  the most a signal that always knew the right answer could hand the trainer;
- ``oracle_rejection``: rejection sampling under a perfect judge (RAFT / ReST-EM with the oracle as the
  verifier): ``samples`` samples per prompt from the base, the distinct ones the oracle grades correct kept as
  SFT targets, the most a perfect judge of the policy's *own* samples could select.

Both train through the project's TRL phases (``train_round``), on the same prompts and schedule a recipe would use.
A gain is the row's figure minus the base's, with a paired bootstrap 95% CI over the shared eval items
(``lab_suite.paired_change``); ``disjoint`` says whether the two rows' own CIs do not overlap.

This reads the ground truth (the tasks behind the prompts, the oracle's grades), so it lives in ``evaluate/``:
no signal may import it (import contract). Everything is seeded: the same arguments give the same figures.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from autoalign.evaluate.lab_suite import evaluate_lab, paired_change
from autoalign.evaluate.result import SuiteResult
from autoalign.lab.oracle import Task, grade_many
from autoalign.models.base import Completion, Sampling
from autoalign.records import Prompt, SFTExample, sft_rows
from autoalign.store import write_json

ROWS: dict[str, str] = {"base": "base", "oracle_sft": "oracle SFT", "oracle_rejection": "oracle rejection sampling"}
COLUMNS: tuple[str, ...] = ("composite", "helpful", "harmless", "honest")
# the demo's sampling (recipes/demo.yaml), so the rejection-sampling row is what a perfect judge of its samples gives
TEMPERATURE, TOP_P, MAX_NEW_TOKENS = 0.9, 0.95, 48


def oracle_sft_examples(prompts: Sequence[Prompt], tasks: dict[str, Task]) -> list[SFTExample]:
    """One SFT example per prompt whose task is known: the prompt's messages + the oracle's reference answer."""
    return [SFTExample(prompt_id=p.id, messages=[*p.messages, {"role": "assistant", "content": tasks[p.id].good}],
                       signal="oracle_sft")
            for p in prompts if p.id in tasks]


def rejection_examples(prompts: Sequence[Prompt], tasks: dict[str, Task],
                       completions: Sequence[Sequence[Completion]]) -> tuple[list[SFTExample], int]:
    """(SFT examples, samples graded correct): every sample the oracle grades correct, each distinct text once per
    prompt (so a prompt the model already answers one way is not repeated ``samples`` times). Prompts without a
    known task are skipped. Code tasks' tests run in one sandbox batch."""
    flat = [(p, c.text) for p, cs in zip(prompts, completions, strict=True) if p.id in tasks for c in cs]
    grades = grade_many([tasks[p.id] for p, _ in flat], [text for _, text in flat])
    out: list[SFTExample] = []
    seen: set[tuple[str, str]] = set()
    correct = 0
    for (p, text), g in zip(flat, grades, strict=True):
        if not g.correct:
            continue
        correct += 1
        if (p.id, text) in seen:
            continue
        seen.add((p.id, text))
        out.append(SFTExample(prompt_id=p.id, messages=[*p.messages, {"role": "assistant", "content": text}],
                              signal="oracle_rejection"))
    return out, correct


def _figures(result: SuiteResult) -> dict[str, dict]:
    return {k: {"value": m.value, "lo": m.lo, "hi": m.hi, "n": m.n, "higher_is_better": m.higher_is_better}
            for k, m in result.metrics.items()}


def _gains(base: SuiteResult, other: SuiteResult, seed: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for col in COLUMNS:
        a, b = base.metrics.get(col), other.metrics.get(col)
        if a is None or b is None:
            continue
        gain = b.value - a.value
        # the paired CI is over the stored item table (confidences rounded to 6 places): keep it around ``gain``
        paired = paired_change(base.config["items"], other.config["items"], col, seed=seed)
        lo, hi = (None, None) if paired is None else (min(paired[1], gain), max(paired[2], gain))
        out[col] = {"gain": gain, "lo": lo, "hi": hi, "disjoint": b.lo > a.hi or b.hi < a.lo}
    return out


def measure_headroom(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    uri: str = "lab:small",
    prompts: int = 240,
    samples: int = 8,
    per_family: int = 40,
    seed: int = 0,
    eval_seed: int = 1234,
    epochs: float = 2.0,
    learning_rate: float = 3e-4,
    batch_size: int = 16,
    threads: int = 2,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Measure the three rows of the module docstring for the base model at ``model_dir`` and write
    ``out_dir/headroom.json`` (atomically); the two trained policies are saved under ``out_dir/<row>/model``.
    ``seed`` draws the train prompts and seeds sampling and training; ``eval_seed`` draws the lab suite's eval
    items (1234, as ``autoalign eval`` and the recipes' ``eval.seed``, so the figures compare with theirs).
    Returns what the JSON file holds."""
    import torch

    from autoalign.evaluate.judge_agreement import lab_tasks_for
    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.hf import HFModel
    from autoalign.recipe import TrainConfig
    from autoalign.train.run import train_round

    say = log or (lambda _msg: None)
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_cfg = TrainConfig.model_validate(
        {"phases": [{"kind": "sft", "epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size}]})
    sampling = Sampling(n=samples, temperature=TEMPERATURE, top_p=TOP_P, max_new_tokens=MAX_NEW_TOKENS, seed=seed)
    started = time.monotonic()
    seconds: dict[str, float] = {}
    results: dict[str, SuiteResult] = {}
    trained: dict[str, dict] = {}

    def timed(part: str, fn: Callable):
        t0 = time.monotonic()
        value = fn()
        seconds[part] = round(time.monotonic() - t0, 2)
        return value

    def evaluate(name: str, path: Path) -> None:
        lm = HFModel(path, uri=uri if name == "base" else f"hf:{path}", device="cpu", batch_size=64)
        results[name] = timed(f"{name}.eval", lambda: evaluate_lab(lm, per_family=per_family, seed=eval_seed))
        say(f"{ROWS[name]}: composite {results[name].metrics['composite'].value:.3f} ({seconds[f'{name}.eval']:.0f}s)")

    def train(name: str, examples: list[SFTExample]) -> None:
        metrics = timed(f"{name}.train", lambda: train_round(model_dir, sft_rows(examples), [], out_dir / name,
                                                              train_cfg, seed=seed))
        trained[name] = {"trained": bool(metrics["trained"]), "rows": len(examples),
                         "train_loss": metrics.get("sft", {}).get("train_loss"),
                         "steps": metrics.get("sft", {}).get("steps")}
        say(f"{ROWS[name]}: trained on {len(examples)} rows ({seconds[f'{name}.train']:.0f}s)")
        # no rows (no sample was correct): nothing trained, the row is the base model itself
        evaluate(name, out_dir / name / "model" if metrics["trained"] else model_dir)

    old_threads = torch.get_num_threads()
    # A fixed, small thread count, as the project's benchmarks set: the lab runs on 2 shared CPU cores, where more
    # threads than cores only contend, and a fixed count keeps CPU kernels (and so the figures) reproducible.
    torch.set_num_threads(threads)
    try:
        train_prompts = lab_prompts(prompts, seed, split="train")
        tasks = lab_tasks_for(train_prompts, prompts, seed, None, split="train")
        evaluate("base", model_dir)

        sft_examples = oracle_sft_examples(train_prompts, tasks)
        train("oracle_sft", sft_examples)

        base_lm = HFModel(model_dir, uri=uri, device="cpu", batch_size=64)
        completions = timed("oracle_rejection.sample",
                            lambda: base_lm.generate([p.messages for p in train_prompts], sampling))
        accepted, correct = timed("oracle_rejection.grade",
                                  lambda: rejection_examples(train_prompts, tasks, completions))
        say(f"{ROWS['oracle_rejection']}: {correct} of {len(train_prompts) * samples} samples correct, "
            f"{len(accepted)} distinct kept ({seconds['oracle_rejection.sample']:.0f}s sampling)")
        train("oracle_rejection", accepted)
    finally:
        torch.set_num_threads(old_threads)
    seconds["total"] = round(time.monotonic() - started, 2)

    report = {
        "model": uri,
        "model_dir": str(model_dir),
        "settings": {"prompts": prompts, "samples": samples, "per_family": per_family, "seed": seed,
                     "eval_seed": eval_seed, "threads": threads, "train": train_cfg.model_dump(mode="json"),
                     "sampling": {"temperature": TEMPERATURE, "top_p": TOP_P, "max_new_tokens": MAX_NEW_TOKENS}},
        "counts": {"prompts": len(train_prompts), "prompts_with_task": len(tasks),
                   "oracle_sft_rows": len(sft_examples), "samples": len(train_prompts) * samples,
                   "samples_correct": correct, "accepted": len(accepted),
                   "prompts_with_accepted": len({e.prompt_id for e in accepted}),
                   "eval_items": len(results["base"].config["items"])},
        "rows": {name: {"label": label, "metrics": _figures(results[name]),
                        "model": "base" if name == "base" else f"{name}/model",
                        **trained.get(name, {})} for name, label in ROWS.items()},
        "gains": {name: _gains(results["base"], results[name], eval_seed) for name in ROWS if name != "base"},
        "seconds": seconds,
    }
    write_json(out_dir / "headroom.json", report)
    return report


def _cell(m: dict | None) -> str:
    return "-" if m is None else f"{m['value']:.3f} [{m['lo']:.2f}, {m['hi']:.2f}]"


def headroom_table(report: dict):
    """A rich table of ``report`` (``measure_headroom``'s result): one row per model, one column per 3H figure,
    then each trained row's gain over the base (paired 95% CI; * marks CIs disjoint from the base's)."""
    from rich.table import Table

    c = report["counts"]
    table = Table(title=f"lab headroom: {report['model']} ({c['prompts']} prompts, {c['oracle_sft_rows']} oracle "
                        f"SFT rows, {c['accepted']} accepted samples of {c['samples']})")
    table.add_column("")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for row in report["rows"].values():
        table.add_row(row["label"], *(_cell(row["metrics"].get(col)) for col in COLUMNS))
    for name, gains in report["gains"].items():
        cells = []
        for col in COLUMNS:
            g = gains.get(col)
            if g is None:
                cells.append("-")
                continue
            ci = "" if g["lo"] is None else f" [{g['lo']:+.2f}, {g['hi']:+.2f}]"
            cells.append(f"{g['gain']:+.3f}{ci}{' *' if g['disjoint'] else ''}")
        table.add_row(f"gain: {report['rows'][name]['label']}", *cells, style="bold")
    return table
