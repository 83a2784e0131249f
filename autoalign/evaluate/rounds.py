"""What the loop measures after a round, as functions of plain arguments: the recipe's suites on a model, the
renaming that files a wrapped policy's results as a variant suite, and the signal/oracle agreement."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

AXIS_NAMES = ("helpful", "harmless", "honest", "composite")


def evaluate_suites(lm: Any, cfg: Any, suites: Sequence[str] | None = None, judge: Any = None,
                    on_start: Callable[[str], None] | None = None, on_done: Callable[[str], None] | None = None) -> list:
    """The lab suite directly; any other suite through the public-benchmark runner (imported lazily), with the
    recipe's data directory, suite options and ``judge`` (an LM, for judged suites). ``on_start(name)`` and
    ``on_done(name)`` bracket each suite (a progress bar's hooks)."""
    suites = list(cfg.suites if suites is None else suites)
    results = []
    others = [s for s in suites if s != "lab"]
    if "lab" in suites:
        from autoalign.evaluate.lab_suite import evaluate_lab

        if on_start is not None:
            on_start("lab")
        results.append(evaluate_lab(lm, per_family=cfg.per_family, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens))
        if on_done is not None:
            on_done("lab")
    if others:
        from autoalign.evaluate.runner import run_suites

        data_dir = Path(cfg.data_dir).expanduser() if getattr(cfg, "data_dir", None) else None
        results.extend(run_suites(lm, others, limit=cfg.limit, data_dir=data_dir, seed=cfg.seed, judge=judge,
                                  options=dict(getattr(cfg, "options", None) or {}), on_start=on_start,
                                  on_suite=None if on_done is None else lambda name, _res, _s: on_done(name)))
    return results


def variant(result: dict, tag: str) -> dict:
    """A suite result of a variant of the policy (best-of-n ...) as its own suite ``<suite>@<tag>``: the axis
    scores are renamed ``<axis>@<tag>`` so the report's 3H bars keep measuring the policy itself, and the
    variant's composite is its headline (shown next to the policy's in the composite panel and over rounds)."""
    out = dict(result)
    out["suite"] = f"{result['suite']}@{tag}"
    out["metrics"] = {(f"{k}@{tag}" if k in AXIS_NAMES else k): v for k, v in result["metrics"].items()}
    out["config"] = {**result.get("config", {}), "headline": [f"composite@{tag}"], "variant_of": result["suite"]}
    out["transcripts"] = [{**t, "suite": out["suite"]} for t in result.get("transcripts", [])]
    return out


def signal_agreement(prompts: Sequence, samples: Sequence, result: Any, prompt_cfg: Any, eval_cfg: Any,
                     prompt_seed: int, model: str, reward_models: Mapping[str, Path],
                     multihead_models: Mapping[str, Path] | None = None) -> dict:
    """Round ``k``'s signal output against the lab oracle (``judge_agreement``), plus, for each reward model a
    signal declared this round (``reward_models``: signal name -> model directory), its accuracy on held-out lab
    pairs and the held-out AI-label accuracy the signal reported; for each multi-head reward model
    (``multihead_models``), each axis head's accuracy on that axis's lab pairs (``<signal>.rm_lab_accuracy.<axis>``)
    and over all pairs."""
    from autoalign.evaluate.judge_agreement import judge_agreement, lab_tasks_for, reward_model_lab_accuracy

    tasks = lab_tasks_for(prompts, prompt_cfg.count, prompt_seed, prompt_cfg.families)
    res = judge_agreement(prompts, samples, result.labels, result.sft, result.preferences, tasks, model=model)
    if reward_models:
        from autoalign.signals.model_feedback.reward_model import RewardModel

        for name, rm_dir in reward_models.items():
            res.metrics[f"{name}.rm_lab_accuracy"] = reward_model_lab_accuracy(RewardModel(rm_dir),
                                                                               eval_cfg.per_family, eval_cfg.seed)
            res.config[f"{name}.rm_heldout_ai_accuracy"] = (result.stats.get(name) or {}).get("heldout_accuracy")
    if multihead_models:
        from autoalign.evaluate.judge_agreement import multihead_lab_accuracy
        from autoalign.signals.model_feedback.multihead_rm import MultiHeadRewardModel

        for name, rm_dir in multihead_models.items():
            for axis, metric in multihead_lab_accuracy(MultiHeadRewardModel(rm_dir), eval_cfg.per_family,
                                                       eval_cfg.seed).items():
                key = f"{name}.rm_lab_accuracy" + ("" if axis == "all" else f".{axis}")
                res.metrics[key] = metric
    return res.model_dump()


class RoundEvaluation:
    """The evaluation stages of a run: ``round-k/eval`` (the recipe's suites on the round's policy, or on what a
    replacing wrapper makes of it), ``round-k/eval@<tag>`` per variant wrapper, and ``round-k/agreement`` (the
    round's signal output against the lab oracle). Each is a ``Stage`` keyed by its config and the evaluated
    model's fingerprint, so a rerun skips it."""

    def __init__(self, run: Any):
        self.run = run
        self.recipe = run.recipe
        self.wrappers = run.wrappers
        self.replacing = next((w for w in self.wrappers if w.role == "replace"), None)
        self.eval = run.recipe.eval
        self._judge: Any = None
        self._warned = False  # the missing-data warning is said once per run

    def judge(self) -> Any:
        """``eval.judge`` loaded once (None: the judged suites use their rules)."""
        if self.eval.judge and self._judge is None:
            self._judge = self.run.models.load(self.eval.judge)
        return self._judge

    # ---- WrapperEnv -------------------------------------------------------------------------------------------
    def load_aux(self, uri: str) -> Any:
        return self.run.models.aux(uri)

    def artifact(self, kind: str, k: int) -> Path | None:
        return self.run.artifacts.latest(kind, k)

    # ---- stages -----------------------------------------------------------------------------------------------
    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return policy_uri if self.replacing is None else self.replacing.evaluated_uri(k, policy_uri)

    def evaluate(self, k: int, policy_uri: str) -> list[dict]:
        lm = self.run.models.lm(policy_uri)
        lm = lm if self.replacing is None else self.replacing.wrap(k, lm, self)
        results = self._stage(k, "eval", lm, self.evaluated_uri(k, policy_uri), self.eval.suites)
        for w in self.wrappers:
            wrapped = w.wrap(k, lm, self) if w.role == "variant" else None
            if wrapped is not None:
                found = self._stage(k, f"eval@{w.tag}", wrapped, wrapped.uri, w.suites or self.eval.suites)
                results += [variant(res, w.tag) for res in found]
        return results

    def _stage(self, k: int, name: str, lm: Any, uri: str, suites: list[str]) -> list[dict]:
        from autoalign.store import CachedLM, Stage, hash_json, read_json, write_json

        stage = Stage(self.run.round_dir(k), name)
        inputs = {"policy": lm.fingerprint()}
        key = hash_json([self.eval.model_dump(), suites, inputs])
        if stage.is_done(key):
            found = read_json(stage.dir / "results.json")
            self._summary(k, name, True, found)
            return found
        from autoalign.console import progress

        start = time.monotonic()
        suites = self._available(suites)
        judge = self.judge() if any(s != "lab" for s in suites) else None
        judge = CachedLM(judge, self.run.cache) if judge is not None else None
        shown = self.run.to_run_uri(uri)
        with progress(self.run.console) as bar:  # one step per suite
            task = bar.add_task(f"round {k}: evaluating {shown}", total=len(suites))
            results = evaluate_suites(
                CachedLM(lm, self.run.cache), self.eval, suites, judge,
                on_start=lambda s: bar.update(task, description=f"round {k}: evaluating {shown} on {s}"),
                on_done=lambda s: bar.advance(task))
        dumped = [res.model_dump() for res in results]
        write_json(stage.dir / "results.json", dumped)
        stage.finish(key, self.eval.model_dump(), inputs, {"suites": len(dumped)})
        self._summary(k, name, False, dumped, time.monotonic() - start)
        return dumped

    def _summary(self, k: int, stage: str, reused: bool, results: list[dict], seconds: float | None = None) -> None:
        """``round k: eval computed  helpful=... composite=...`` (the lab axes), then the other suites' axis
        scores or headline figures as ``suite.metric=value`` on at most three more lines (the demo's four public
        suites fit at 80 columns, the gate's jailbreak figure included); the report has the CIs."""
        from autoalign.console import brief, plural, stage_line

        figures: dict[str, float] = {}
        for res in results:  # each suite's axis scores, or its headline figures when it has none
            names = [a for a in AXIS_NAMES if a in res["metrics"]] or [
                n for n in res.get("config", {}).get("headline", []) if n in res["metrics"]]
            for name in names:
                key = name if res["suite"] == "lab" else f"{res['suite']}.{name}"
                figures[key] = round(float(res["metrics"][name]["value"]), 3)
        lab = {a: f"{figures.pop(a):.3f}" for a in AXIS_NAMES if a in figures}
        head = plural(len(results), "suite") + (f"  {brief(lab)}" if lab else "")
        stage_line(self.run.console, k, stage, reused, head, seconds)
        if figures:
            self.run.console.print("  " + brief({n: f"{v:.3f}" for n, v in figures.items()}, head="  ",
                                                width=self.run.console.width, lines=3), highlight=False, markup=False)

    def _available(self, suites: list[str]) -> list[str]:
        """The suites to run: public ones need the benchmark data; when the recipe names no ``eval.data_dir`` and
        none is found ($AUTOALIGN_DATA, ../shared/data), they are left out with a warning (so the demo runs on a
        machine without the data); a ``data_dir`` the recipe names must exist."""
        public = [s for s in suites if s != "lab"]
        if not public or self.eval.data_dir:
            return suites
        from autoalign.errors import UserError
        from autoalign.evaluate.data import resolve_data_dir

        try:
            resolve_data_dir(None)
        except UserError as exc:
            if not self._warned:
                self.run.console.print(f"[bold yellow]warning[/] public suites {', '.join(public)} left out: {exc}")
                self._warned = True
            return [s for s in suites if s == "lab"]
        return suites

    def agreement(self, k: int, policy_uri: str, prompts: Sequence, samples: Sequence, result: Any,
                  prompt_seed: int) -> list[dict]:
        """The round's signal output (labels, training data, the reward models it declared) against the lab
        oracle; lab prompts only, and only with ``eval.judge_agreement``."""
        from autoalign.store import Stage, hash_json, read_json, sha256_file, write_json

        r = self.recipe
        if not r.eval.judge_agreement or r.prompts.source != "lab":
            return []
        stage = Stage(self.run.round_dir(k), "agreement")
        inputs = {"prompts": sha256_file(self.run.round_dir(k) / "prompts" / "prompts.jsonl"),
                  "signals": (Stage(self.run.round_dir(k), "signals").manifest() or {}).get("key", "")}
        key = hash_json([r.eval.per_family, r.eval.seed, inputs])
        if stage.is_done(key):
            found = read_json(stage.dir / "results.json")
            self._agreement_line(k, True, found[0] if found else {})
            return found
        rms = {r.signals[i].method: path for i, path in self.run.artifacts.declared_in(k, "reward_model").items()}
        heads = {r.signals[i].method: path
                 for i, path in self.run.artifacts.declared_in(k, "multihead_reward_model").items()}
        res = signal_agreement(prompts, samples, result, r.prompts, r.eval, prompt_seed, policy_uri, rms, heads)
        write_json(stage.dir / "results.json", [res])
        stage.finish(key, {"per_family": r.eval.per_family, "seed": r.eval.seed}, inputs,
                     {"metrics": len(res["metrics"]), "graded_prompts": res["config"]["graded_prompts"]})
        self._agreement_line(k, False, res)
        return [res]

    def _agreement_line(self, k: int, reused: bool, res: dict) -> None:
        """The signal/oracle agreement figures as ``name=value`` on at most two lines (the report has the CIs)."""
        from autoalign.console import brief, stage_line

        figures = {n: f"{m['value']:.3f}" for n, m in (res.get("metrics") or {}).items()}
        head = f"round {k}: agreement {'reused' if reused else 'computed'}  "
        stage_line(self.run.console, k, "agreement", reused, brief(figures, head=head, width=self.run.console.width))
