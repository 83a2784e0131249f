"""Performance gap recovered (Burns et al. 2023, sec. 3): how much of the gap between a weak supervisor and a
strong ceiling a student trained on the weak labels closes,

    PGR = (weak-to-strong - weak) / (strong ceiling - weak),

on the held-out items of a ``weak_to_strong`` run (the ``w2s_items`` artifact of its signal), each item's truth
being the lab oracle's grade of the response (correct = the response follows the 3H standard for its task). The
figures: the weak supervisor's accuracy (its stored P(Yes) >= 1/2), the trained student's (the round's policy read
as the Yes/No classifier), the ceiling's (the base policy trained by the same phase on the oracle's labels of the
same training items, alpha 0) and, with ``naive``, the student trained on the weak labels without the confidence
loss (alpha 0). Accuracies carry Wilson 95% CIs, PGR a paired percentile bootstrap over the held-out items
(resamples where ceiling == weak, where PGR is undefined, are left out and counted).

Reads the ground truth, so it lives in ``evaluate/`` (import contract), as ``autoalign lab headroom`` does.
``python -m autoalign.evaluate.weak_to_strong RUN_DIR`` writes ``RUN_DIR/pgr/pgr.json`` and prints the figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from autoalign.evaluate.stats import wilson_interval

EPS = 1e-12


def pgr(weak: float, w2s: float, ceiling: float) -> float | None:
    """PGR = (w2s - weak) / (ceiling - weak) (Burns et al. 2023, sec. 3); None when the ceiling equals the weak
    performance (no gap to recover)."""
    gap = ceiling - weak
    if abs(gap) < EPS:
        return None
    return (w2s - weak) / gap  # Burns et al. 2023, sec. 3: performance gap recovered


def pgr_interval(weak_correct: Sequence[bool], w2s_correct: Sequence[bool], ceiling_correct: Sequence[bool],
                 resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """PGR of three aligned per-item correctness lists, with a paired percentile bootstrap CI over the items.
    Returns ``{"value", "lo", "hi", "n", "undefined_resamples"}``; ``value`` (and the CI) None where the gap is 0
    (``lo``/``hi`` None too when fewer than half of the resamples have a gap)."""
    w, s, c = (np.asarray(x, dtype=float) for x in (weak_correct, w2s_correct, ceiling_correct))
    if not (len(w) == len(s) == len(c)):
        raise ValueError("pgr_interval: the three correctness lists must be aligned")
    n = len(w)
    value = pgr(float(w.mean()), float(s.mean()), float(c.mean())) if n else None
    out: dict[str, Any] = {"value": value, "lo": None, "hi": None, "n": n, "undefined_resamples": 0}
    if n == 0:
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    mw, ms, mc = w[idx].mean(axis=1), s[idx].mean(axis=1), c[idx].mean(axis=1)
    gap = mc - mw
    ok = np.abs(gap) >= EPS
    out["undefined_resamples"] = int((~ok).sum())
    if value is not None and ok.sum() >= resamples / 2:
        stats = (ms[ok] - mw[ok]) / gap[ok]
        out["lo"], out["hi"] = (float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2)))
    return out


def accuracy(correct: Sequence[bool]) -> dict[str, Any]:
    n = len(correct)
    k = sum(bool(x) for x in correct)
    lo, hi = wilson_interval(k, n) if n else (0.0, 0.0)
    return {"value": k / n if n else None, "lo": lo, "hi": hi, "n": n}


def _model_dir(uri: str) -> Path:
    scheme, _, rest = uri.partition(":")
    if scheme == "lab":
        from autoalign.lab.pretrain import ensure_lab_model

        return Path(ensure_lab_model(rest))
    return Path(rest if scheme == "hf" else uri)


def p_yes(model_dir: Path, prompts: Sequence[list[dict]]) -> list[float]:
    """The Yes/No classifier of a model directory: P(Yes) / (P(Yes) + P(No)) after each judge prompt."""
    from autoalign.models.hf import HFModel
    from autoalign.signals.model_feedback.judges import FORMATS, ask

    lm = HFModel(model_dir, uri=f"hf:{model_dir}", device="cpu", batch_size=32)
    return [float(v.value) for v in ask(lm, list(prompts), FORMATS["yes_no"], "logprob")]  # type: ignore[arg-type]


def measure_pgr(run_dir: str | Path, round: int = 1, naive: bool = True, out_dir: str | Path | None = None,
                resamples: int = 2000, log: Callable[[str], None] | None = None) -> dict:
    """The figures of the module docstring for round ``round`` of the run at ``run_dir``; written to
    ``out_dir/pgr.json`` (default ``run_dir/pgr``). The ceiling and naive students are saved there too."""
    import yaml

    from autoalign.artifacts import Artifacts
    from autoalign.evaluate.judge_agreement import lab_tasks_for
    from autoalign.lab.oracle import grade_many
    from autoalign.loop import derive_seed
    from autoalign.records import Prompt
    from autoalign.store import read_json, read_jsonl, write_json
    from autoalign.train.weak_to_strong import WeakToStrongPhase, train_w2s

    say = log or (lambda _m: None)
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "pgr"
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    rdir = run_dir / f"round-{round}"
    prompts = read_jsonl(rdir / "prompts" / "prompts.jsonl", Prompt)
    pcfg = recipe.get("prompts") or {}
    tasks = lab_tasks_for(prompts, int(pcfg.get("count", 0)), derive_seed(recipe.get("seed", 0), "prompts", round),
                          pcfg.get("families"))
    manifest = read_json(rdir / "signals" / "manifest.json")
    found = [p for arts in Artifacts.from_manifest(manifest).values() for a in arts.values()
             if a.kind == "w2s_items" for p in [a.path]]
    if not found:
        raise ValueError(f"{rdir / 'signals'}: no w2s_items artifact (not a weak_to_strong run)")
    items = [it for it in read_jsonl(rdir / "signals" / found[0]) if it["prompt_id"] in tasks]
    grades = grade_many([tasks[it["prompt_id"]] for it in items], [it["response"] for it in items])
    truth = [g.correct for g in grades]
    train = [(it, t) for it, t in zip(items, truth) if it["split"] == "train"]
    test = [(it, t) for it, t in zip(items, truth) if it["split"] == "test"]
    say(f"{len(train)} training items, {len(test)} held-out items graded by the oracle")
    phase_raw = next(p for p in recipe["train"]["phases"] if p.get("kind") == "w2s")
    phase = WeakToStrongPhase.model_validate(phase_raw)
    metrics = read_json(run_dir / "metrics.json")
    student = _model_dir(next(r["model"] for r in metrics["rounds"] if r["round"] == round))
    base = _model_dir(recipe["policy"])
    seed = derive_seed(recipe.get("seed", 0), "train", round)

    def rows(labels: Sequence[float]) -> list[dict]:
        return [{"messages": [*it["messages"], {"role": "assistant", "content": "Yes" if y >= 0.5 else "No"}],
                 "weight": max(y, 1.0 - y)} for (it, _), y in zip(train, labels)]

    test_prompts = [it["messages"] for it, _ in test]
    test_truth = [t for _, t in test]

    def correct(probs: Sequence[float]) -> list[bool]:
        return [(p >= 0.5) == t for p, t in zip(probs, test_truth)]

    schedule = phase.schedule()
    res: dict[str, Any] = {"run": str(run_dir), "round": round, "train_items": len(train), "test_items": len(test),
                           "test_positive_share": sum(test_truth) / len(test) if test else None,
                           "weak_label_accuracy_train": accuracy([(it["weak"] >= 0.5) == t for it, t in train])}
    weak_c = correct([it["weak"] for it, _ in test])
    w2s_c = correct(p_yes(student, test_prompts))
    say("training the ceiling (oracle labels, alpha 0)")
    train_w2s(base, rows([1.0 if t else 0.0 for _, t in train]), out / "ceiling", seed=seed, alpha=0.0,
              warmup=phase.warmup, **schedule)
    ceil_c = correct(p_yes(out / "ceiling" / "model", test_prompts))
    res["accuracy"] = {"weak": accuracy(weak_c), "weak_to_strong": accuracy(w2s_c), "ceiling": accuracy(ceil_c)}
    res["pgr"] = {"alpha": phase.alpha, **pgr_interval(weak_c, w2s_c, ceil_c, resamples)}
    if naive:
        say("training the naive student (weak labels, alpha 0)")
        train_w2s(base, rows([it["weak"] for it, _ in train]), out / "naive", seed=seed, alpha=0.0,
                  warmup=phase.warmup, **schedule)
        naive_c = correct(p_yes(out / "naive" / "model", test_prompts))
        res["accuracy"]["naive"] = accuracy(naive_c)
        res["pgr_naive"] = {"alpha": 0.0, **pgr_interval(weak_c, naive_c, ceil_c, resamples)}
    write_json(out / "pgr.json", res)
    return res


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m autoalign.evaluate.weak_to_strong RUN_DIR [ROUND]", file=sys.stderr)
        return 2
    res = measure_pgr(args[0], int(args[1]) if len(args) > 1 else 1, log=print)
    print(json.dumps({k: res[k] for k in ("accuracy", "pgr", "pgr_naive") if k in res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
