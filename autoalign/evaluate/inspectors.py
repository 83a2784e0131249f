"""The ``aligners_inspectors`` parts of a run measured against the lab oracle, on held-out lab answers (the eval
split, which the signal never saw: its prompts come from the train split).

- **inspector accuracy**: each eval task's answers (the reference response, the task's characteristic failure, and
  the policy's own greedy answer) are graded by the oracle; the inspector of the task's axis should say *meets*
  exactly when the oracle says correct. Per criterion: accuracy with its Wilson 95% interval, the recall of each
  class, and the accuracy by answer source (the policy's answers are the distribution the wrapper sees).
- **what the wrapper does**: the plain policy and the wrapped one answer the lab suite's prompts (greedy, as the
  suite asks); how many answers each aligner rewrote, how many rewrites the oracle says fixed or broke an answer,
  and the per-answer cost of each (generated tokens, seconds).

``python -m autoalign.evaluate.inspectors RUN_DIR [--round K] [--policy URI] [--order a,b,c]`` prints the figures
and writes them to ``RUN_DIR/inspectors/round-K[-ORDER].json`` (every routed answer, with the text after each
aligner, in ``round-K[-ORDER]-answers.jsonl``).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from autoalign.evaluate.common import rate
from autoalign.lab.oracle import Task, eval_items, grade_many
from autoalign.models.base import LM, Sampling

SCORER = "lab-oracle"


def run_parts(run_dir: Path, k: int) -> dict[str, Path]:
    """The newest artifact of each kind declared by round ``k`` of a run, read from its signal-stage manifests."""
    from autoalign.artifacts import Artifacts
    from autoalign.store import read_json

    arts = Artifacts()
    for j in range(1, k + 1):
        stage = run_dir / f"round-{j}" / "signals"
        if (stage / "manifest.json").is_file():
            arts.keep(j, stage, Artifacts.from_manifest(read_json(stage / "manifest.json")))
    return {e.artifact.kind: e.path for e in arts.entries}


def _class_recall(pairs: Sequence[tuple[bool, bool]], cls: bool) -> float | None:
    sel = [pred for pred, ok in pairs if ok == cls]
    return round(sum(pred == cls for pred in sel) / len(sel), 4) if sel else None


def inspector_accuracy(inspectors: Mapping[str, Any], items: Sequence[tuple[Task, str, str]]) -> dict[str, dict]:
    """Per criterion, the inspector of each task's axis against the oracle, on ``items`` = (task, answer, source).
    The metric is an accuracy (share of answers where meets == the oracle's correct), with a Wilson 95% CI."""
    grades = grade_many([t for t, _, _ in items], [a for _, a, _ in items])
    out: dict[str, dict] = {}
    for c, insp in inspectors.items():
        axis = insp.meta.get("axis", c)
        sel = [(t, a, src, g.correct) for (t, a, src), g in zip(items, grades) if t.axis == axis]
        if not sel:
            continue
        meets = insp.meets([[{"role": "user", "content": t.question}] for t, _, _, _ in sel], [a for _, a, _, _ in sel])
        pairs = [(m, ok) for m, (_, _, _, ok) in zip(meets, sel)]
        hits = sum(m == ok for m, ok in pairs)
        by_source = {}
        for src in sorted({s for _, _, s, _ in sel}):
            sp = [(m, ok) for m, (_, _, s, ok) in zip(meets, sel) if s == src]
            by_source[src] = {"n": len(sp), "accuracy": round(sum(m == ok for m, ok in sp) / len(sp), 4),
                              "oracle_correct": round(sum(ok for _, ok in sp) / len(sp), 4)}
        out[c] = {"accuracy": rate(hits, len(pairs), "signal", SCORER, True,
                                   f"inspector {c}: meets == oracle-correct on held-out {axis} answers").model_dump(),
                  "recall_correct": _class_recall(pairs, True), "recall_incorrect": _class_recall(pairs, False),
                  "flagged_share": round(sum(not m for m, _ in pairs) / len(pairs), 4), "by_source": by_source,
                  "threshold": insp.threshold}
    return out


def heldout_answers(tasks: Sequence[Task], policy_answers: Sequence[str] | None, seed: int) -> list[tuple[Task, str, str]]:
    """(task, answer, source) for every task: its reference answer, its characteristic failure (seeded), and the
    policy's answer when given."""
    rng = random.Random(f"inspector-answers-{seed}")
    out = [(t, t.good, "reference") for t in tasks] + [(t, t.bad(rng), "failure") for t in tasks]
    if policy_answers is not None:
        out += [(t, a, "policy") for t, a in zip(tasks, policy_answers)]
    return out


def wrapper_effect(policy: LM, wrapped: Any, tasks: Sequence[Task], max_new_tokens: int, seed: int) -> dict[str, Any]:
    """The plain and the wrapped policy on the same prompts: answers each aligner rewrote, rewrites fixed / broken
    by the oracle's grade, oracle-correct shares, and the per-answer cost (generated tokens, seconds) of each."""
    prompts = [[{"role": "user", "content": t.question}] for t in tasks]
    sampling = Sampling(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed)
    start = time.monotonic()
    plain = [cs[0] for cs in policy.generate(prompts, sampling)]
    plain_s = time.monotonic() - start
    start = time.monotonic()
    final = [cs[0] for cs in wrapped.generate(prompts, sampling)]
    wrapped_s = time.monotonic() - start
    records = wrapped.records[-len(tasks):]
    g_plain = grade_many(list(tasks), [c.text for c in plain])
    g_final = grade_many(list(tasks), [c.text for c in final])
    per: dict[str, dict[str, int]] = {}
    for t, r, gp, gf in zip(tasks, records, g_plain, g_final):
        for c in r.applied:
            d = per.setdefault(c, {"applied": 0, "fixed": 0, "broken": 0, "on_own_axis": 0})
            d["applied"] += 1
            d["on_own_axis"] += wrapped.inspectors[c].meta.get("axis", c) == t.axis
        if r.applied:
            last = r.applied[-1]
            per[last]["fixed"] += (not gp.correct) and gf.correct  # credited to the last aligner that ran
            per[last]["broken"] += gp.correct and not gf.correct
    n = len(tasks)
    plain_tokens = sum(c.num_tokens or 0 for c in plain)
    wrapped_tokens = sum((r.draft_tokens or 0) + r.aligner_tokens for r in records)
    return {
        "answers": n, "rewritten": sum(r.final != r.draft for r in records),
        "routed": sum(bool(r.applied) for r in records), "per_aligner": per,
        "oracle_correct": {"plain": round(sum(g.correct for g in g_plain) / n, 4),
                           "wrapped": round(sum(g.correct for g in g_final) / n, 4)},
        "cost_per_answer": {"plain": {"tokens": round(plain_tokens / n, 2), "seconds": round(plain_s / n, 4)},
                            "wrapped": {"tokens": round(wrapped_tokens / n, 2), "seconds": round(wrapped_s / n, 4)}},
    }


def measure(run_dir: Path, k: int = 1, policy_uri: str | None = None, per_family: int = 40, seed: int = 1234,
            max_new_tokens: int = 48, order: Sequence[str] | None = None) -> dict[str, Any]:
    """Every figure of the module docstring for round ``k`` of the run in ``run_dir``; written beside the run.
    ``order``: apply the aligners in this order instead of the recipe's (its files then carry the order's name)."""
    from autoalign.decoding.aligners_inspectors import DEFAULT_ORDER, AlignersInspectorsLM
    from autoalign.models.registry import load_lm
    from autoalign.signals.model_feedback.aligners_inspectors import ALIGNER, INSPECTOR, AlignerModel, Inspector
    from autoalign.store import read_json, write_json, write_jsonl

    parts = run_parts(run_dir, k)
    name = f"round-{k}" + ("" if order is None else "-" + "-".join(order))
    order = list(order) if order is not None else list(DEFAULT_ORDER)
    recipe_path = run_dir / "recipe.yaml"
    if recipe_path.is_file():
        import yaml

        recipe = yaml.safe_load(recipe_path.read_text())
        wrappers = [w for w in (recipe.get("eval") or {}).get("wrappers") or [] if w.get("method") == "aligners_inspectors"]
        if wrappers and wrappers[0].get("order") and order is None:
            order = list(wrappers[0]["order"])
        policy_uri = policy_uri or recipe.get("policy")
        seed = int((recipe.get("eval") or {}).get("seed", seed))
    if policy_uri is None:
        metrics = read_json(run_dir / "metrics.json")
        policy_uri = metrics["rounds"][k]["model"]
    inspectors = {c: Inspector(parts[f"{INSPECTOR}.{c}"]) for c in order if f"{INSPECTOR}.{c}" in parts}
    aligners = {c: AlignerModel(parts[f"{ALIGNER}.{c}"]) for c in order if f"{ALIGNER}.{c}" in parts}
    policy = load_lm(policy_uri)
    tasks = eval_items(per_family, seed)
    wrapped = AlignersInspectorsLM(policy, inspectors, aligners, order, max_new_tokens)
    effect = wrapper_effect(policy, wrapped, tasks, max_new_tokens, seed)
    drafts = [r.draft for r in wrapped.records[-len(tasks):]]
    result = {"round": k, "policy": policy_uri, "order": order, "criteria": sorted(inspectors),
              "eval_items": len(tasks), "per_family": per_family, "seed": seed,
              "inspectors": inspector_accuracy(inspectors, heldout_answers(tasks, drafts, seed)),
              "wrapper": effect}
    out = run_dir / "inspectors"
    write_json(out / f"{name}.json", result)
    write_jsonl(out / f"{name}-answers.jsonl",
                [{"item": t.key, "family": t.family, "axis": t.axis, **r.record()}
                 for t, r in zip(tasks, wrapped.records[-len(tasks):])])
    return result


def lines(result: dict[str, Any]) -> list[str]:
    """The figures for people, one criterion or one aligner a line."""
    out = [f"round {result['round']}: policy {result['policy']}, order {' -> '.join(result['order'])}, "
           f"{result['eval_items']} eval items"]
    for c, d in result["inspectors"].items():
        a = d["accuracy"]
        src = ", ".join(f"{s} {v['accuracy']:.3f} (n={v['n']})" for s, v in d["by_source"].items())
        out.append(f"inspector {c}: accuracy {a['value']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}] n={a['n']}, recall "
                   f"correct {d['recall_correct']}, incorrect {d['recall_incorrect']}; {src}")
    w = result["wrapper"]
    out.append(f"wrapper: {w['routed']} of {w['answers']} answers routed, {w['rewritten']} rewritten; oracle-correct "
               f"plain {w['oracle_correct']['plain']:.3f} -> wrapped {w['oracle_correct']['wrapped']:.3f}")
    for c, d in w["per_aligner"].items():
        out.append(f"aligner {c}: applied {d['applied']} (on its own axis {d['on_own_axis']}), fixed {d['fixed']}, "
                   f"broken {d['broken']}")
    cp, cw = w["cost_per_answer"]["plain"], w["cost_per_answer"]["wrapped"]
    out.append(f"cost per answer: plain {cp['tokens']} tokens {cp['seconds']} s; wrapped {cw['tokens']} tokens "
               f"{cw['seconds']} s")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autoalign.evaluate.inspectors", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--round", type=int, default=1, dest="k")
    ap.add_argument("--policy", default=None, help="the policy to wrap (default: the run's recipe policy)")
    ap.add_argument("--per-family", type=int, default=40)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--order", default=None, help="the aligners' order, comma-separated (default: the recipe's)")
    args = ap.parse_args(argv)
    from autoalign.console import quiet_libraries
    from autoalign.errors import UserError

    quiet_libraries()
    if not (args.run_dir / f"round-{args.k}" / "signals" / "manifest.json").is_file():
        raise SystemExit(f"error: {args.run_dir}: round {args.k} has no finished signals stage")
    try:
        order = args.order.split(",") if args.order else None
        result = measure(args.run_dir, args.k, args.policy, args.per_family, max_new_tokens=args.max_new_tokens,
                         order=order)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    print("\n".join(lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
