"""The round runner: propose prompts -> sample -> signals -> train -> evaluate, round after round.

Layout: ``<run_dir>/<name>/recipe.yaml`` (resolved), ``round-0/eval`` (the base policy), then for each round k
``round-k/{prompts,samples,signals,train,eval}/``, and at the end ``metrics.json`` + ``report.html``.
Every stage ends with a manifest whose key hashes its config and inputs; a rerun skips stages whose manifest
matches, and sampling writes one part per chunk of prompts, so a killed run resumes where it stopped with no record
lost or duplicated.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autoalign.errors import UserError
from autoalign.models.base import Sampling
from autoalign.recipe import Recipe, save_resolved
from autoalign.records import Preference, Prompt, Sample, SFTExample, Label, preference_rows, sft_rows
from autoalign.signals.base import SignalResult
from autoalign.signals.catalog import build_signal
from autoalign.store import CachedLM, CallCache, Stage, chunks, hash_json, read_json, read_jsonl, sha256_file, write_json


def derive_seed(seed: int, *parts: object) -> int:
    """A sub-seed for one random choice of the run, a pure function of the recipe seed and where it is used."""
    return int(hash_json([seed, *map(str, parts)]), 16) % (2**31)


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


class Run:
    """One recipe's run directory and the stages in it."""

    def __init__(self, recipe: Recipe, console: Console | None = None, load_lm: Callable | None = None):
        from autoalign.models.registry import check_uri, load_lm as default_load

        check_uri(recipe.policy)
        self.recipe = recipe
        self.console = console or Console(stderr=True)
        self.dir = Path(recipe.run_dir) / recipe.name
        self.cache = CallCache(Path(recipe.cache_dir) if recipe.cache_dir else self.dir / "cache")
        self._load_lm = load_lm or default_load
        self._lm_cache: dict[str, object] = {}
        self._ray_lms: dict[str, object] = {}
        self.signals = [
            build_signal(s.method, s.params, where=f"signals.{i}", load_lm=self._signal_load)
            for i, s in enumerate(recipe.signals)
        ]

    # ---- models ---------------------------------------------------------------------------------------------
    def model_options(self, uri: str) -> dict:
        options = {"batch_size": self.recipe.sampling.batch_size, **self.recipe.models.get(uri, {})}
        if uri.startswith("openai:"):
            options.setdefault("cache", self.cache)  # every completed call lands in the cache at once
        return options

    def load(self, uri: str, **extra):
        """A fresh model for ``uri`` with the recipe's provider options (a bad option is the user's error)."""
        try:
            return self._load_lm(uri, **{**self.model_options(uri), **extra})
        except TypeError as exc:
            raise UserError(f"recipe models.{uri}: {exc}") from None

    def lm(self, uri: str):
        if uri not in self._lm_cache:
            self._lm_cache.clear()  # one policy in memory at a time
            self._lm_cache[uri] = self.load(uri)
        return self._lm_cache[uri]

    def sampler(self, uri: str):
        """The policy for the sampling stage: in process, or sharded over Ray workers when the recipe asks."""
        return self.lm(uri) if self.recipe.sampling.ray is None else self.ray_lm(uri)

    def ray_lm(self, uri: str):
        """``uri`` sharded over the recipe's Ray workers (one replica each), kept until training frees them."""
        if uri not in self._ray_lms:
            from autoalign.distributed.ray_shard import RayShardedLM

            ray = self.recipe.sampling.ray
            options = {k: v for k, v in self.model_options(uri).items() if k != "cache"}
            self._ray_lms[uri] = RayShardedLM(uri, ray.workers, options=options, address=ray.address,
                                              num_cpus=ray.num_cpus, num_gpus=ray.num_gpus,
                                              cache_dir=str(self.cache.path.parent))
        return self._ray_lms[uri]

    def release_ray(self) -> None:
        for lm in self._ray_lms.values():
            lm.shutdown()
        self._ray_lms.clear()

    def _judging_on_ray(self) -> bool:
        return self.recipe.sampling.ray is not None and self.recipe.sampling.ray.judging

    def signal_policy(self, uri: str):
        """The policy a signal sees (as judge, critic or reviser): sharded when ``sampling.ray.judging``."""
        return self.ray_lm(uri) if self._judging_on_ray() else self.lm(uri)

    def _signal_load(self, uri: str, **options):
        """How signals load the models their params name (a judge, a teacher): on Ray with ``judging``."""
        return self.ray_lm(uri) if self._judging_on_ray() else self.load(uri, **options)

    def base_model_path(self) -> Path:
        lm = self.lm(self.recipe.policy)
        path = getattr(lm, "path", None)
        if path is None:
            raise UserError(f"recipe policy: {self.recipe.policy!r} cannot be trained here (no local weights)")
        return Path(path)

    # ---- the loop -------------------------------------------------------------------------------------------
    def execute(self) -> Path:
        r = self.recipe
        self.dir.mkdir(parents=True, exist_ok=True)
        save_resolved(r, self.dir / "recipe.yaml")
        self.console.print(f"[bold]run[/] {r.name} -> {self.dir}  (policy {r.policy}, {r.rounds} rounds)")
        policy_uri = r.policy
        rounds = [{"round": 0, "model": self.evaluated_uri(0, policy_uri),
                   "results": self.evaluate(0, policy_uri) + self.evaluate_best_of_n(0, policy_uri)}]
        for k in range(1, r.rounds + 1):
            prompts = self.propose(k, policy_uri)
            samples = self.sample(k, policy_uri, prompts)
            result = self.apply_signals(k, policy_uri, prompts, samples)
            agreement = self.judge_agreement(k, policy_uri, prompts, samples, result)
            policy_uri = self.train(k, policy_uri, result)
            results = self.evaluate(k, policy_uri) + self.evaluate_best_of_n(k, policy_uri) + agreement
            rounds.append({"round": k, "model": self.evaluated_uri(k, policy_uri), "results": results})
        write_json(self.dir / "metrics.json", {"run": r.name, "recipe": r.model_dump(), "rounds": rounds})
        return self.report()

    def report(self) -> Path:
        from autoalign.report.html import write_run_report

        path = write_run_report(self.dir)
        self.console.print(f"[bold green]report[/] {path}")
        return path

    # ---- stages ---------------------------------------------------------------------------------------------
    def _round(self, k: int) -> Path:
        return self.dir / f"round-{k}"

    def propose(self, k: int, policy_uri: str | None = None) -> list[Prompt]:
        """The round's prompts: drawn from the source, and with ``prompts.self_instruct`` partly written by the
        round's policy from them (Self-Instruct; the policy's fingerprint then keys the stage)."""
        r = self.recipe
        si = r.prompts.self_instruct
        stage = Stage(self._round(k), "prompts")
        inputs = {"policy": self.lm(policy_uri or r.policy).fingerprint()} if si else {}
        key = hash_json([r.seed, k, r.prompts.model_dump(), inputs])
        if stage.is_done(key):
            return stage.read("prompts", Prompt)
        prompts = self._source_prompts(k)
        written = 0
        if si:
            from autoalign.signals.imitation.self_instruct import propose_prompts

            want = max(1, round(si.share * len(prompts)))
            self.console.print(f"round {k}: the policy writes {want} new prompts (self-instruct)")
            new = propose_prompts(
                CachedLM(self.lm(policy_uri or r.policy), self.cache), prompts, want,
                seed=derive_seed(r.seed, "self_instruct", k), style=si.style, prefix_words=si.prefix_words,
                temperature=si.temperature, max_new_tokens=si.max_new_tokens, similarity=si.similarity,
            )
            written = len(new)
            prompts = prompts[: len(prompts) - written] + new
        stage.write("prompts", prompts)
        stage.finish(key, r.prompts.model_dump(), inputs, {"prompts": len(prompts), "self_instruct": written})
        return prompts

    def _source_prompts(self, k: int) -> list[Prompt]:
        r = self.recipe
        seed = derive_seed(r.seed, "prompts", k)
        if r.prompts.source == "lab":
            from autoalign.lab.prompts import lab_prompts

            prompts = lab_prompts(r.prompts.count, seed=seed, families=r.prompts.families, split="train")
        else:
            if not r.prompts.path or not Path(r.prompts.path).is_file():
                raise UserError(f"recipe prompts.path: file not found: {r.prompts.path}")
            pool = read_jsonl(r.prompts.path, Prompt)
            prompts = random.Random(seed).sample(pool, min(r.prompts.count, len(pool)))
        return prompts

    def sample(self, k: int, policy_uri: str, prompts: list[Prompt]) -> list[Sample]:
        r = self.recipe
        stage = Stage(self._round(k), "samples")
        policy = self.sampler(policy_uri)
        sampling = Sampling(
            n=r.sampling.n, temperature=r.sampling.temperature, top_p=r.sampling.top_p,
            max_new_tokens=r.sampling.max_new_tokens, seed=derive_seed(r.seed, "samples", k),
        )
        inputs = {"prompts": sha256_file(self._round(k) / "prompts" / "prompts.jsonl"), "policy": policy.fingerprint()}
        key = hash_json([r.sampling.model_dump(), sampling.key(), inputs])
        if stage.is_done(key):
            return stage.read_parts("samples", Sample)
        stage.reset_if_stale(key)
        lm = CachedLM(policy, self.cache)
        parts = list(chunks(prompts, r.sampling.chunk_prompts))
        with progress(self.console) as bar:
            task = bar.add_task(f"round {k}: sampling {len(prompts)}x{r.sampling.n}", total=len(prompts))
            for index, chunk in parts:
                if not stage.part_done("samples", index):
                    outs = lm.generate([p.messages for p in chunk], sampling)
                    rows = [
                        Sample(prompt_id=p.id, index=j, text=c.text, model=policy_uri,
                               finish_reason=c.finish_reason, logprob=c.logprob)
                        for p, comps in zip(chunk, outs) for j, c in enumerate(comps)
                    ]
                    stage.write_part("samples", index, rows)
                bar.advance(task, len(chunk))
        samples = stage.read_parts("samples", Sample)
        stage.finish(key, r.sampling.model_dump(), inputs, {"samples": len(samples), "parts": len(parts),
                     "cache_hits": lm.hits, "cache_misses": lm.misses})
        return samples

    def apply_signals(self, k: int, policy_uri: str, prompts: list[Prompt], samples: list[Sample]) -> SignalResult:
        r = self.recipe
        stage = Stage(self._round(k), "signals")
        inputs = {"samples": hash_json([s.model_dump() for s in samples])}
        key = hash_json([[s.model_dump() for s in r.signals], inputs])
        if stage.is_done(key):
            return SignalResult(
                labels=stage.read("labels", Label), sft=stage.read("sft", SFTExample),
                preferences=stage.read("preferences", Preference), stats=stage.manifest()["stats"],
            )
        merged = SignalResult()
        stats = {}
        for cfg, signal in zip(r.signals, self.signals):
            self.console.print(f"round {k}: signal [bold]{cfg.method}[/]")
            out = signal(prompts, samples, self.signal_policy(policy_uri))
            merged.labels.extend(out.labels)
            merged.sft.extend(out.sft)
            merged.preferences.extend(out.preferences)
            stats[cfg.method] = out.stats
            self.console.print(f"  {len(out.sft)} SFT examples, {len(out.preferences)} pairs  {out.stats}")
        stage.write("labels", merged.labels)
        stage.write("sft", merged.sft)
        stage.write("preferences", merged.preferences)
        counts = {"labels": len(merged.labels), "sft": len(merged.sft), "preferences": len(merged.preferences)}
        stage.finish(key, [s.model_dump() for s in r.signals], inputs, counts, extra={"stats": stats})
        merged.stats = stats
        return merged

    def train(self, k: int, policy_uri: str, data: SignalResult) -> str:
        from autoalign.train.run import train_round

        r = self.recipe
        stage = Stage(self._round(k), "train")
        sft, prefs = sft_rows(data.sft), preference_rows(data.preferences)
        inputs = {"policy": self.lm(policy_uri).fingerprint(), "sft": hash_json(sft), "preferences": hash_json(prefs)}
        key = hash_json([r.train.model_dump(), r.seed, k, inputs])
        model_dir = stage.dir / "model"
        if stage.is_done(key):
            return stage.manifest()["policy"]
        policy_path = Path(getattr(self.lm(policy_uri), "path"))
        self._lm_cache.clear()  # free the sampler's copy before training
        self.release_ray()  # and the Ray replicas
        self.console.print(f"round {k}: training ({r.train.method}) on {len(sft)} SFT examples, {len(prefs)} pairs")
        metrics = train_round(
            policy_path, sft, prefs, stage.dir, r.train, seed=derive_seed(r.seed, "train", k)
        )
        new_uri = f"hf:{model_dir.resolve()}" if metrics.get("trained") else policy_uri
        stage.finish(key, r.train.model_dump(), inputs, {"sft": len(sft), "preferences": len(prefs)},
                     extra={"policy": new_uri, "metrics": metrics})
        return new_uri

    # ---- what evaluation measures --------------------------------------------------------------------------
    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        """The model a round's evaluation measures: the policy, or with ``eval.aligned_upstream`` the upstream
        model alone (round 0) and followed by the round's policy as its corrector (rounds >= 1)."""
        up = self.recipe.eval.aligned_upstream
        if up is None:
            return policy_uri
        return up if k == 0 else f"aligned:{up}+{policy_uri}"

    def _aux_lm(self, uri: str):
        """A second model held next to the policy (the Aligner's upstream model); one at a time."""
        if getattr(self, "_aux", (None, None))[0] != uri:
            self._aux = (uri, None)  # drop the previous one before loading the next
            self._aux = (uri, self.load(uri))
        return self._aux[1]

    def eval_lm(self, k: int, policy_uri: str):
        up = self.recipe.eval.aligned_upstream
        if up is None:
            return self.lm(policy_uri)
        if k == 0:
            return self.lm(up)
        from autoalign.signals.model_feedback.aligner import ALIGNER_TEMPLATE, AlignedLM

        template = next((s.template for s in self.signals if getattr(s, "name", "") == "aligner"), ALIGNER_TEMPLATE)
        return AlignedLM(self._aux_lm(up), self.lm(policy_uri), template=template,
                         draft_tokens=self.recipe.eval.max_new_tokens)

    def evaluate(self, k: int, policy_uri: str) -> list[dict]:
        r = self.recipe
        stage = Stage(self._round(k), "eval")
        lm = self.eval_lm(k, policy_uri)
        inputs = {"policy": lm.fingerprint()}
        key = hash_json([r.eval.model_dump(), inputs])
        if stage.is_done(key):
            return read_json(stage.dir / "results.json")
        self.console.print(f"round {k}: evaluating {self.evaluated_uri(k, policy_uri)} on {', '.join(r.eval.suites)}")
        results = evaluate_suites(CachedLM(lm, self.cache), r.eval)
        dumped = [res.model_dump() for res in results]
        write_json(stage.dir / "results.json", dumped)
        stage.finish(key, r.eval.model_dump(), inputs, {"suites": len(results)})
        for res in results:
            for name in ("helpful", "harmless", "honest", "composite"):
                if name in res.metrics:
                    m = res.metrics[name]
                    self.console.print(f"  {res.suite}.{name} = {m.value:.3f} [{m.lo:.3f}, {m.hi:.3f}] (n={m.n})")
        return dumped

    def _reward_model_dir(self, k: int) -> Path | None:
        """``eval.reward_model``, else the reward model a signal of this run trained by round ``k`` (its stage
        manifest names it as ``rm_dir``), else None."""
        if self.recipe.eval.reward_model:
            path = Path(self.recipe.eval.reward_model).expanduser()
            if not path.is_dir():
                raise UserError(f"recipe eval.reward_model: not a directory: {path}")
            return rm_model_dir(path)
        for j in range(k, 0, -1):
            trained = trained_reward_models((Stage(self._round(j), "signals").manifest() or {}).get("stats"))
            if trained:
                return next(iter(trained.values()))
        return None

    def evaluate_best_of_n(self, k: int, policy_uri: str) -> list[dict]:
        """With ``eval.best_of_n``: the lab suite answered by best-of-n sampling of the round's policy under the
        reward model (suite ``lab@best-of-N``); nothing for a round with no reward model yet."""
        r = self.recipe
        n = r.eval.best_of_n
        rm_dir = self._reward_model_dir(k) if n else None
        if rm_dir is None:
            return []
        from autoalign.signals.model_feedback.reward_model import BestOfNLM, RewardModel

        stage = Stage(self._round(k), "best_of_n")
        rm = RewardModel(rm_dir)
        lm = BestOfNLM(self.eval_lm(k, policy_uri), rm, n=n, temperature=r.sampling.temperature)
        inputs = {"policy": lm.fingerprint()}
        key = hash_json([r.eval.model_dump(), inputs])
        if stage.is_done(key):
            return read_json(stage.dir / "results.json")
        self.console.print(f"round {k}: evaluating best-of-{n} under {rm_dir}")
        cfg = r.eval.model_copy(update={"suites": ["lab"]})
        dumped = [variant(res.model_dump(), f"best-of-{n}") for res in evaluate_suites(CachedLM(lm, self.cache), cfg)]
        write_json(stage.dir / "results.json", dumped)
        stage.finish(key, r.eval.model_dump(), inputs, {"suites": len(dumped)}, extra={"reward_model": str(rm_dir)})
        return dumped

    def judge_agreement(self, k: int, policy_uri: str, prompts: list[Prompt], samples: list[Sample],
                        result: SignalResult) -> list[dict]:
        """Round ``k``'s signal output (labels, training data) against the lab oracle, by evaluation: see
        ``autoalign.evaluate.judge_agreement``. A reward model a signal trained is scored on held-out lab pairs."""
        r = self.recipe
        if not r.eval.judge_agreement or r.prompts.source != "lab":
            return []
        from autoalign.evaluate.judge_agreement import judge_agreement, lab_tasks_for, reward_model_lab_accuracy

        stage = Stage(self._round(k), "agreement")
        inputs = {"prompts": sha256_file(self._round(k) / "prompts" / "prompts.jsonl"),
                  "signals": (Stage(self._round(k), "signals").manifest() or {}).get("key", "")}
        key = hash_json([r.eval.per_family, r.eval.seed, inputs])
        if stage.is_done(key):
            return read_json(stage.dir / "results.json")
        tasks = lab_tasks_for(prompts, r.prompts.count, derive_seed(r.seed, "prompts", k), r.prompts.families)
        res = judge_agreement(prompts, samples, result.labels, result.sft, result.preferences, tasks,
                              model=policy_uri)
        for method, rm_dir in trained_reward_models(result.stats).items():
            from autoalign.signals.model_feedback.reward_model import RewardModel

            res.metrics[f"{method}.rm_lab_accuracy"] = reward_model_lab_accuracy(RewardModel(rm_dir),
                                                                                 r.eval.per_family, r.eval.seed)
            res.config[f"{method}.rm_heldout_ai_accuracy"] = result.stats[method].get("heldout_accuracy")
        for name, m in res.metrics.items():
            self.console.print(f"  agreement {name} = {m.value:.3f} [{m.lo:.3f}, {m.hi:.3f}] (n={m.n})")
        dumped = [res.model_dump()]
        write_json(stage.dir / "results.json", dumped)
        stage.finish(key, {"per_family": r.eval.per_family, "seed": r.eval.seed}, inputs,
                     {"metrics": len(res.metrics), "graded_prompts": res.config["graded_prompts"]})
        return dumped


AXIS_NAMES = ("helpful", "harmless", "honest", "composite")


def rm_model_dir(path: Path) -> Path:
    """A reward-model directory as RAFT saves it (``DIR/model``) or the model directory itself."""
    return path / "model" if (path / "model" / "config.json").is_file() else path


def trained_reward_models(stats: dict | None) -> dict[str, Path]:
    """The reward models a signals stage trained (a signal's stats name them as ``rm_dir``), by signal method."""
    return {method: rm_model_dir(Path(s["rm_dir"])) for method, s in (stats or {}).items()
            if isinstance(s, dict) and s.get("rm_dir") and Path(s["rm_dir"]).is_dir()}


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


def evaluate_suites(lm, cfg) -> list:
    """The lab suite directly; any other suite through the public-benchmark runner (imported lazily)."""
    results = []
    others = [s for s in cfg.suites if s != "lab"]
    if "lab" in cfg.suites:
        from autoalign.evaluate.lab_suite import evaluate_lab

        results.append(evaluate_lab(lm, per_family=cfg.per_family, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens))
    if others:
        from autoalign.evaluate.runner import run_suites

        results.extend(run_suites(lm, others, limit=cfg.limit, data_dir=None, seed=cfg.seed))
    return results
