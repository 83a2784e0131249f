"""The round runner: propose prompts -> sample -> signals -> train -> evaluate, round after round.

Layout: ``<run_dir>/<name>/recipe.yaml`` (resolved), ``round-0/eval`` (the base policy), then for each round k
``round-k/{prompts,samples,signals,train,eval}/``, and at the end ``metrics.json`` + ``report.html``.
Every stage ends with a manifest whose key hashes its config and inputs; a rerun skips stages whose manifest
matches, and sampling writes one part per chunk of prompts, so a killed run resumes where it stopped with no record
lost or duplicated. The loop names no method: prompt sources and writers, signals, training phases and policy
wrappers come from the tables of ``autoalign.methods``; what a stage makes besides records is an ``Artifact``
declared in its manifest, and found there again on resume.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from autoalign import console as out
from autoalign import gate, methods
from autoalign.artifacts import Artifacts
from autoalign.evaluate.rounds import RoundEvaluation
from autoalign.models.base import Sampling
from autoalign.models.pool import ModelPool
from autoalign.recipe import Recipe, save_resolved
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample, preference_rows, sft_rows
from autoalign.screen import drop_reasons, screen
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.catalog import build_signal
from autoalign.store import (
    CachedLM,
    CallCache,
    Stage,
    chunks,
    clean_temporaries,
    hash_json,
    run_lock,
    sha256_file,
    write_json,
)


def derive_seed(seed: int, *parts: object) -> int:
    """A sub-seed for one random choice of the run, a pure function of the recipe seed and where it is used."""
    return int(hash_json([seed, *map(str, parts)]), 16) % (2**31)


def progress(console: Console, *fields: str) -> Progress:
    return out.progress(console, *fields)


class Run:
    """One recipe's run directory and the stages in it."""

    def __init__(self, recipe: Recipe, console: Console | None = None, load_lm: Callable | None = None):
        from autoalign.plan import preflight

        self.plan = preflight(recipe)  # every mistake is one line before the run directory is created
        self.recipe, r = recipe, recipe
        self.console = console or Console(stderr=True)
        out.quiet_libraries()  # the run's bars and summary lines only
        self.dir = Path(r.run_dir) / r.name
        self.cache = CallCache(Path(r.cache_dir) if r.cache_dir else self.dir / "cache")
        self.models = ModelPool(r, self.cache, load_lm)
        self._ticks: list[Callable[[int], None]] = []  # the open signal bar's counter, if any
        self.signals = [build_signal(s.method, s.params, where=f"signals.{i}", load_lm=self._counted_load)
                        for i, s in enumerate(r.signals)]
        self.writers = [methods.build(methods.PROMPT_WRITERS, w) for w in r.prompts.writers]
        self.wrappers = [methods.build(methods.POLICY_WRAPPERS, w, f"eval.wrappers.{i}", r.sampling.temperature)
                         for i, w in enumerate(r.eval.wrappers)]
        self.artifacts = Artifacts()
        self.evaluation = RoundEvaluation(self)
        self.position = (0, "eval")  # the stage running now: what a rerun after Ctrl-C resumes from

    def at(self, k: int, stage: str) -> None:
        self.position = (k, stage)

    def _tick(self, n: int) -> None:
        for tick in self._ticks:
            tick(n)

    def _counted_load(self, uri: str, **options: Any) -> Any:
        """A signal's own model (a judge, a teacher) whose calls advance the signal's bar."""
        return out.Counted(self.models.signal_load(uri, **options), self._tick)

    # ---- the loop -------------------------------------------------------------------------------------------
    def execute(self, wait: bool = False) -> Path:
        """Run every round (resuming what a earlier run finished). ``wait``: when another run holds the run
        directory, block until it ends (then resume from what it wrote) instead of refusing with one line."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with run_lock(self.dir, wait=wait):  # one run writes a run directory at a time
            removed = clean_temporaries(self.dir)
            if removed:
                self.console.print(f"removed {removed} temporary files a killed write left in {self.dir}")
            try:
                return self._execute()
            except KeyboardInterrupt as exc:
                k, stage = self.position
                where = f"round {k}, stage {stage}"
                out.set_interrupted(where)  # the command line says it; a Python caller sees it in the traceback
                exc.add_note(f"interrupted: rerun the same run to resume from {where}")
                raise

    def _execute(self) -> Path:
        r = self.recipe
        save_resolved(r, self.dir / "recipe.yaml")
        self.console.print(f"[bold]run[/] {escape(r.name)} -> {escape(str(self.dir))}  (policy {escape(r.policy)}, "
                           f"{r.rounds} rounds)", highlight=False)
        policy_uri = r.policy
        ev = self.evaluation
        self.at(0, "eval")
        rounds: list[dict[str, Any]] = [{"round": 0, "model": ev.evaluated_uri(0, policy_uri),
                                         "results": ev.evaluate(0, policy_uri), "kept": True}]
        kept = 0  # the round whose policy the next round starts from (the 3H gate's reference)
        for k in range(1, r.rounds + 1):
            self.at(k, "prompts")
            prompts = self.propose(k, policy_uri)
            self.at(k, "samples")
            samples = self.sample(k, policy_uri, prompts)
            self.at(k, "signals")
            result = self.apply_signals(k, policy_uri, prompts, samples)
            self.at(k, "agreement")
            agreement = ev.agreement(k, policy_uri, prompts, samples, result, derive_seed(r.seed, "prompts", k))
            # sampled by the kept policy; trained from it, or from the base every round (train.start_from: base)
            self.at(k, "train")
            trained = self.train(k, r.policy if r.train.start_from == "base" else policy_uri, result, prompts)
            self.at(k, "eval")
            results = ev.evaluate(k, trained)
            decision = (gate.decide(rounds[kept]["results"], results, r.eval.gate, kept, seed=r.eval.seed)
                        if r.eval.gate.enabled else None)
            rounds.append({"round": k, "model": ev.evaluated_uri(k, trained), "results": results + agreement,
                           "kept": decision is None or decision.kept, "gate": gate.summary(decision),
                           "started_from": kept})
            if decision is not None:
                self.console.print(f"round {k}: gate: {'[green]' if decision.kept else '[bold red]'}"
                                   f"{escape(decision.reason())}[/]", highlight=False)
            if decision is None or decision.kept:
                policy_uri, kept = trained, k
        # the result, stated: the final policy and the last round, each against the base, every figure with the
        # interval of its change (the gate's comparison, whether or not the gate is on)
        outcome = {f"{name}_vs_base": gate.summary(gate.decide(rounds[0]["results"], rounds[k]["results"],
                                                              r.eval.gate, 0, seed=r.eval.seed))
                  for name, k in (("final", kept), ("last", len(rounds) - 1)) if k > 0}
        write_json(self.dir / "metrics.json", {"run": r.name, "recipe": r.model_dump(), "rounds": rounds,
                                                "final": {"round": kept, "model": rounds[kept]["model"]},
                                                "result": outcome})
        return self.report()

    def report(self) -> Path:
        from autoalign.report.html import write_run_report

        path = write_run_report(self.dir)
        self.console.print(f"[bold green]report[/] {escape(str(path))}", highlight=False)
        return path

    def to_run_uri(self, uri: str) -> str:
        """A model inside this run directory as ``run:<relative path>`` (what manifests keep, so a moved or copied
        run reads its own models, never the original's); any other URI as it is."""
        if uri.startswith("hf:"):
            path, root = Path(uri[3:]).resolve(), self.dir.resolve()
            if path.is_relative_to(root):
                return f"run:{path.relative_to(root).as_posix()}"
        return uri

    def from_run_uri(self, uri: str) -> str:
        return f"hf:{(self.dir / uri[4:]).resolve()}" if uri.startswith("run:") else uri

    def round_dir(self, k: int) -> Path:
        return self.dir / f"round-{k}"

    # ---- stages ---------------------------------------------------------------------------------------------
    def propose(self, k: int, policy_uri: str) -> list[Prompt]:
        """The round's prompts: drawn from the source, then rewritten by each prompt writer in order (a writer
        that uses the policy keys the stage by the policy's fingerprint)."""
        r = self.recipe
        stage = Stage(self.round_dir(k), "prompts")
        uses_policy = any(getattr(w, "uses_policy", False) for w in self.writers)
        inputs = {"policy": self.models.lm(policy_uri).fingerprint()} if uses_policy else {}
        key = hash_json([r.seed, k, r.prompts.model_dump(), inputs])
        if stage.is_done(key):
            found = stage.read("prompts", Prompt)
            out.stage_line(self.console, k, "prompts", True, f"{len(found)} prompts")
            return found
        start = time.monotonic()
        prompts = methods.resolve(methods.PROMPT_SOURCES[r.prompts.source])(r.prompts, derive_seed(r.seed, "prompts", k))
        counts: dict[str, int] = {}
        writer_stats: dict[str, dict] = {}
        lineage: list[dict] = []  # what a writer says of each candidate it examined (parents, operation, decision)
        for i, (cfg, writer) in enumerate(zip(r.prompts.writers, self.writers, strict=True)):
            lm = CachedLM(self.models.lm(policy_uri), self.cache)
            with progress(self.console) as bar:
                bar.add_task(f"round {k}: prompt writer {cfg.method}", total=None)
                # the first writer's seed is the one Self-Instruct had before writers were a list (same prompts)
                prompts, stats = writer(prompts, lm, derive_seed(r.seed, cfg.method, k) if i == 0 else
                                        derive_seed(r.seed, cfg.method, k, i))
            counts[cfg.method] = stats.get("written", 0)
            lineage.extend({"writer_index": i, **row} for row in stats.pop("lineage", None) or [])
            writer_stats[f"{i}:{cfg.method}"] = stats
        stage.write("prompts", prompts)
        if r.prompts.writers:
            stage.write("lineage", lineage)
        stage.finish(key, r.prompts.model_dump(), inputs, {"prompts": len(prompts), **counts},
                     extra={"writers": writer_stats} if writer_stats else None)
        written = "".join(f", {n} written by {m}" for m, n in counts.items())
        out.stage_line(self.console, k, "prompts", False, f"{len(prompts)} prompts{written}",
                       time.monotonic() - start)
        return prompts

    def sample(self, k: int, policy_uri: str, prompts: list[Prompt]) -> list[Sample]:
        r = self.recipe
        stage = Stage(self.round_dir(k), "samples")
        policy = self.models.sampler(policy_uri)
        sampling = Sampling(n=r.sampling.n, temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                            max_new_tokens=r.sampling.max_new_tokens, seed=derive_seed(r.seed, "samples", k))
        inputs = {"prompts": sha256_file(self.round_dir(k) / "prompts" / "prompts.jsonl"), "policy": policy.fingerprint()}
        key = hash_json([r.sampling.model_dump(), sampling.key(), inputs])
        if stage.is_done(key):
            found = stage.read_parts("samples", Sample)
            out.stage_line(self.console, k, "samples", True, f"{len(found)} samples ({len(prompts)}x{r.sampling.n})")
            return found
        stage.reset_if_stale(key)
        start = time.monotonic()
        lm = CachedLM(policy, self.cache)
        parts = list(chunks(prompts, r.sampling.chunk_prompts))
        resumed = 0
        with progress(self.console) as bar:
            task = bar.add_task(f"round {k}: sampling {len(prompts)}x{r.sampling.n}", total=len(prompts))
            for index, chunk in parts:
                if stage.part_done("samples", index):
                    resumed += 1
                else:
                    outs = lm.generate([p.messages for p in chunk], sampling)
                    stage.write_part("samples", index, [
                        Sample(prompt_id=p.id, index=j, text=c.text, model=policy_uri, finish_reason=c.finish_reason,
                               logprob=c.logprob) for p, comps in zip(chunk, outs) for j, c in enumerate(comps)])
                bar.advance(task, len(chunk))
        samples = stage.read_parts("samples", Sample)
        stage.finish(key, r.sampling.model_dump(), inputs, {"samples": len(samples), "parts": len(parts),
                     "cache_hits": lm.hits, "cache_misses": lm.misses})
        kept = f", {resumed} of {len(parts)} parts kept from the killed run" if resumed else ""
        cached = f", {lm.hits} from the call cache" if lm.hits else ""
        out.stage_line(self.console, k, "samples", False,
                       f"{len(samples)} samples ({len(prompts)}x{r.sampling.n}){kept}{cached}", time.monotonic() - start)
        return samples

    def apply_signals(self, k: int, policy_uri: str, prompts: list[Prompt], samples: list[Sample]) -> SignalResult:
        r = self.recipe
        stage = Stage(self.round_dir(k), "signals")
        inputs = {"samples": hash_json([s.model_dump() for s in samples])}
        key = hash_json([[s.model_dump() for s in r.signals], inputs])
        if stage.is_done(key):
            manifest = stage.manifest() or {}
            self.artifacts.keep(k, stage.dir, Artifacts.from_manifest(manifest))
            found = SignalResult(labels=stage.read("labels", Label), sft=stage.read("sft", SFTExample),
                                 preferences=stage.read("preferences", Preference), stats=manifest["stats"])
            out.stage_line(self.console, k, "signals", True, self._data_counts(found))
            return found
        start = time.monotonic()
        merged, stats, declared = SignalResult(), {}, {}
        for i, (cfg, signal) in enumerate(zip(r.signals, self.signals)):
            ctx = StageContext(dir=stage.dir / f"{i}", round=k, seed=derive_seed(r.seed, "signals", k, i),
                               artifacts=self.artifacts.of_signal(i))
            # model calls (judge, policy) counted as they return; a model the signal trains draws its bar here too
            with progress(self.console) as bar, out.using(self.console, f"round {k}: "):
                task = bar.add_task(f"round {k}: signal {cfg.method}, model calls", total=None)
                self._ticks.append(partial(bar.advance, task))
                try:
                    res = signal(prompts, samples, out.Counted(self.models.signal_policy(policy_uri), self._tick), ctx)
                finally:
                    self._ticks.clear()
            merged.labels.extend(res.labels)
            merged.sft.extend(res.sft)
            merged.preferences.extend(res.preferences)
            stats[cfg.method] = res.stats
            # artifacts are saved under the signal's own directory; the manifest keeps them relative to the stage
            declared[i] = {n: Artifact(kind=a.kind, path=f"{i}/{a.path}") for n, a in res.artifacts.items()}
            head = f"  {cfg.method}: {len(res.sft)} SFT, {len(res.preferences)} pairs"
            brief = out.brief(res.stats, skip=("sft", "preferences"), head=head + "  ", width=self.console.width)
            self.console.print(escape(f"{head}  {brief}" if brief else head), highlight=False)
            if res.stats.get("warning"):
                self.console.print(f"  [bold yellow]warning[/] {escape(cfg.method)}: {escape(str(res.stats['warning']))}",
                                   highlight=False)
        for kind in ("labels", "sft", "preferences"):
            stage.write(kind, getattr(merged, kind))
        counts = {"labels": len(merged.labels), "sft": len(merged.sft), "preferences": len(merged.preferences)}
        self.artifacts.keep(k, stage.dir, declared)
        stage.finish(key, [s.model_dump() for s in r.signals], inputs, counts,
                     extra={"stats": stats, "artifacts": Artifacts.to_manifest(declared)})
        merged.stats = stats
        out.stage_line(self.console, k, "signals", False, self._data_counts(merged), time.monotonic() - start)
        return merged

    @staticmethod
    def _data_counts(result: SignalResult) -> str:
        return f"{len(result.sft)} SFT examples, {len(result.preferences)} pairs, {len(result.labels)} labels"

    def train(self, k: int, policy_uri: str, data: SignalResult, prompts: list[Prompt] | None = None) -> str:
        """Train on the round's signal data and, for the phases that consume them (online RL), its prompts."""
        from autoalign.train.run import train_round

        r = self.recipe
        stage = Stage(self.round_dir(k), "train")
        screened = screen(data.sft, data.preferences, r.train.screen)
        sft, prefs = sft_rows(screened.sft), preference_rows(screened.preferences)
        inputs = {"policy": self.models.lm(policy_uri).fingerprint(), "sft": hash_json(sft), "preferences": hash_json(prefs)}
        rl_prompts = None  # in the key only when a phase consumes them, so other runs' keys stay as they were
        if prompts is not None and any(p.consumes == "prompts" for p in r.train.phases):
            rl_prompts = [p.model_dump() for p in prompts]
            inputs["prompts"] = hash_json(rl_prompts)
        key = hash_json([r.train.model_dump(), r.seed, k, inputs])
        on_prompts = f", {len(rl_prompts)} prompts" if rl_prompts is not None else ""
        trained_on = f"on {len(sft)} SFT examples, {len(prefs)} pairs{on_prompts}"
        if stage.is_done(key):
            manifest = stage.manifest() or {}
            out.stage_line(self.console, k, "train", True, f"{_phases_done(manifest.get('metrics') or {})} {trained_on}")
            return self.from_run_uri(manifest["policy"])
        start = time.monotonic()
        policy_path = self.models.local_path(policy_uri)
        self.models.release()  # free the sampler's copy and the Ray replicas before training
        stage.write("screened_out", screened.dropped)
        with out.using(self.console, f"round {k}: "):  # the trainer's callback draws its bar here
            metrics = train_round(policy_path, sft, prefs, stage.dir, r.train, seed=derive_seed(r.seed, "train", k),
                                  prompts=rl_prompts)
        new_uri = f"hf:{(stage.dir / 'model').resolve()}" if metrics.get("trained") else policy_uri
        stage.finish(key, r.train.model_dump(), inputs, {"sft": len(sft), "preferences": len(prefs)},
                     extra={"policy": self.to_run_uri(new_uri), "metrics": metrics, "screen": screened.counts})
        dropped = (f"; screen dropped {len(screened.dropped)} "
                   f"({', '.join(f'{k_}: {v}' for k_, v in drop_reasons(screened.counts).items())})"
                   if screened.dropped else "")
        out.stage_line(self.console, k, "train", False, f"{_phases_done(metrics)} {trained_on}{dropped}",
                       time.monotonic() - start)
        return new_uri


def _phases_done(metrics: dict) -> str:
    """``sft 54 steps loss 0.0538, dpo skipped (no preference pairs)``: each phase of a train stage's metrics."""
    parts = []
    for phase in metrics.get("phases", []):
        name, m = phase.get("name", "?"), metrics.get(phase.get("name", ""), {})
        if phase.get("status") == "trained":
            log = m.get("loss_log") or []  # the last logged loss, else the mean over training
            loss = log[-1]["loss"] if log else m.get("train_loss")
            parts.append(f"{name} {m.get('steps', '?')} steps" + (f" loss {loss:.4f}" if isinstance(loss, float) else ""))
        else:
            parts.append(f"{name} skipped ({phase.get('reason', 'no data')})")
    return ", ".join(parts) + ";" if parts else "nothing trained;"
