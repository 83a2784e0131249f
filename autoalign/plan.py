"""Everything a run needs, checked before anything loads or is written; and the plan it would follow.

``preflight(recipe)`` reads the recipe's files and names, never a model's weights: every model URI (a Hugging Face
directory must hold a model), the prompt file (every row), each signal's method and parameters (and the models
they name), the wrappers, the evaluation suites (with what each needs: ``winrate`` a judge) and the benchmark files
they read. A mistake is one ``UserError`` line naming the field or file, raised before ``Run`` creates the run
directory, so a failed start leaves no trace (not even a rewritten ``recipe.yaml``). What it found is a ``Plan``:
``autoalign run --dry-run`` prints it (``Plan.lines``) and exits.

The model-call estimate counts generations (one per completion) and judge calls (one per sample a signal's model
scores); it is an estimate for planning, not a promise: a cached call costs nothing, and a signal that revises or
compares may call its model more than once per sample.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoalign.errors import UserError

# what a Hugging Face model directory holds (transformers' own file names)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "*.pt")


def check_model(uri: str, where: str = "") -> str:
    """``registry.check_uri`` plus, for a local directory (``hf:DIR`` or a bare path), that it holds a Hugging Face
    model: a config, a tokenizer and weights. One full line naming ``where`` and what is missing."""
    from autoalign.models.registry import check_uri

    prefix = f"{where}: " if where else ""
    try:
        scheme, rest = check_uri(uri)
    except UserError as exc:
        raise UserError(f"{prefix}{exc}") from None
    if scheme == "hf":
        path = Path(os.path.expanduser(rest))
        missing = [what for what, ok in (
            ("config.json", (path / "config.json").is_file()),
            ("tokenizer files", any((path / f).is_file() for f in _TOKENIZER_FILES)),
            ("weights (*.safetensors)", any(any(path.glob(p)) for p in _WEIGHT_PATTERNS)),
        ) if not ok]
        if missing:
            raise UserError(f"{prefix}model URI {uri!r}: {path} is not a Hugging Face model directory (no "
                            f"{', no '.join(missing)}; give a directory saved with save_pretrained)")
    return uri


_READS_FROM = {"robustness": "harmbench"}  # a suite that reads another suite's file (its prompts, under attack)


@dataclass
class SuitePlan:
    name: str
    items: int | None  # per evaluated model; None: unknown until it runs
    files: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a run will do, found without loading a model: for ``--dry-run`` and the checks above."""

    name: str
    run_dir: Path
    rounds: int
    models: dict[str, str]  # role -> URI (policy, judges, ...)
    prompts: str  # where the prompts come from, in words
    prompt_count: int  # per round
    samples_per_prompt: int
    signals: list[tuple[str, list[str]]]  # (method, the models it calls besides the policy)
    phases: str
    suites: list[SuitePlan]
    variants: dict[str, int]  # wrapped policies measured besides the policy (best-of-n ...): tag -> items
    left_out: str | None = None  # public suites left out (no data directory), with the reason
    data_dir: Path | None = None
    gate: bool = True

    def calls(self) -> dict[str, int]:
        """The estimated model calls of the whole run, by stage (see the module docstring)."""
        samples = self.prompt_count * self.samples_per_prompt
        judged = sum(len(models) for _, models in self.signals)
        per_eval = sum(s.items or 0 for s in self.suites) + sum(self.variants.values())
        return {"sampling": self.rounds * samples, "signals": self.rounds * samples * judged,
                "evaluation": (self.rounds + 1) * per_eval}

    def lines(self) -> list[str]:
        calls = self.calls()
        suites = ", ".join(f"{s.name} ({s.items} items)" if s.items is not None else s.name for s in self.suites)
        signals = ", ".join(f"{m} (with {', '.join(ms)})" if ms else m for m, ms in self.signals)
        out = [f"run {self.name} -> {self.run_dir}",
               "models: " + ", ".join(f"{role} {uri}" for role, uri in self.models.items()),
               f"prompts: {self.prompt_count} per round from {self.prompts}; {self.samples_per_prompt} samples per prompt",
               f"round 0: eval ({suites or 'no suite'})"]
        for k in range(1, self.rounds + 1):
            out.append(f"round {k}: prompts -> samples ({self.prompt_count}x{self.samples_per_prompt}) -> signals "
                       f"({signals}) -> train ({self.phases}) -> eval" + (" -> gate" if self.gate else ""))
        if self.variants:
            out.append("also measured each round: " + ", ".join(f"{tag} ({n} items)" for tag, n in self.variants.items()))
        if self.left_out:
            out.append(f"left out: {self.left_out}")
        files = list(dict.fromkeys(f for s in self.suites for f in s.files))
        out.append(f"data files: {', '.join(files) if files else 'none'}")
        out.append(f"expected model calls: about {sum(calls.values())} ("
                   + ", ".join(f"{k} {v}" for k, v in calls.items()) + ")")
        return out


def _model_refs(signal: Any) -> list[Any]:
    """The models a built signal calls (its ``ModelRef`` fields: a URI, or the round's policy)."""
    from autoalign.signals.model_feedback.common import ModelRef

    return [v for v in vars(signal).values() if isinstance(v, ModelRef)]


def _signal_models(recipe: Any) -> list[tuple[str, dict[str, str]]]:
    """Per signal: its method and the models it calls (URI -> role; ``policy`` for the round's policy)."""
    from autoalign.signals.catalog import build_signal

    def no_loading(uri: str, **_: Any) -> Any:  # a preflight never loads a model
        raise AssertionError(f"preflight tried to load {uri}")

    out = []
    for i, s in enumerate(recipe.signals):
        signal = build_signal(s.method, s.params, where=f"signals.{i}", load_lm=no_loading)
        roles: dict[str, str] = {}
        for ref in _model_refs(signal):  # a signal that judges with the policy itself still calls it per sample
            uri = "policy" if ref.is_policy else check_model(ref.spec, f"recipe signals.{i}.params.{ref.role}")
            roles.setdefault(uri, ref.role)
        out.append((s.method, roles))
    return out


def _prompts(recipe: Any) -> tuple[str, int]:
    cfg = recipe.prompts
    if cfg.source == "file":
        from autoalign.prompt_sources import read_prompt_file

        path = Path(cfg.path or "").expanduser()
        if not cfg.path or not path.is_file():
            raise UserError(f"recipe prompts.path: file not found: {cfg.path}")
        pool = read_prompt_file(path)
        return f"the file {cfg.path} ({len(pool)} prompts)", min(cfg.count, len(pool))
    if cfg.families:
        from autoalign.lab.prompts import LAB_FAMILIES

        known = list(LAB_FAMILIES)
        if cfg.source == "lab_multistep":
            from autoalign.lab.world.multistep import MULTISTEP_FAMILIES

            known += MULTISTEP_FAMILIES
        unknown = [f for f in cfg.families if f not in known]
        if unknown:
            raise UserError(f"recipe prompts.families: unknown lab families {unknown} "
                            f"(known: {', '.join(known)})")
    return f"the lab ({', '.join(cfg.families) if cfg.families else 'all families'})", cfg.count


def check_suites(names: list[str], judge: str | None, reference: str | None, options: dict, where: str) -> None:
    """What a named suite needs besides data: ``winrate`` a judge, and a reference model or an instructions file
    with reference outputs."""
    if "winrate" in names:
        if not judge:
            raise UserError(f"{where}: suite winrate needs a judge model "
                            f"({'--judge URI' if where.startswith('--') else 'eval.judge: URI'})")
        if not reference and not options.get("instructions"):
            raise UserError(f"{where}: suite winrate needs a reference model (--reference URI) or an instructions "
                            "file with reference outputs (option instructions=FILE.jsonl)")
    instructions = options.get("instructions")
    if instructions and not Path(str(instructions)).expanduser().is_file():
        raise UserError(f"{where}: option instructions: file not found: {instructions}")


def suite_plans(names: list[str], counts: dict[str, int], data_dir: Path | None, limit: int | None,
                lab_per_family: int, lab_seed: int) -> list[SuitePlan]:
    out = []
    for name in names:
        if name == "lab":
            from autoalign.evaluate.lab_suite import eval_items

            out.append(SuitePlan("lab", len(eval_items(lab_per_family, lab_seed))))
            continue
        module = importlib.import_module(f"autoalign.evaluate.{_READS_FROM.get(name, name)}")
        rel = getattr(module, "FILE", None) or getattr(module, "FOLDER", None)
        files = [str(data_dir / rel)] if rel and data_dir is not None else []
        n = counts.get(name)
        out.append(SuitePlan(name, None if n is None else min(n, limit) if limit else n, files))
    return out


def _suites(recipe: Any, variants: dict[str, list[str]]) -> tuple[list[SuitePlan], dict[str, int], str | None,
                                                                   Path | None]:
    """The recipe's suites (expanded, their data read) and, per variant wrapper, how many items it is measured on."""
    from autoalign.evaluate.data import resolve_data_dir
    from autoalign.evaluate.runner import check_data, expand

    ev = recipe.eval
    options = dict(ev.options or {})
    try:
        names = expand(list(ev.suites), ev.judge, None, options)
    except UserError as exc:
        raise UserError(f"recipe eval.suites: {exc}") from None
    wanted = list(dict.fromkeys([*names, *(n for ns in variants.values() for n in ns)]))
    check_suites(wanted, ev.judge, None, options, "recipe eval.suites")
    public = [n for n in wanted if n != "lab"]
    left_out, data_dir = None, None
    if public:
        try:
            data_dir = resolve_data_dir(Path(ev.data_dir).expanduser() if ev.data_dir else None)
        except UserError as exc:
            if ev.data_dir:  # a directory the recipe names must exist
                raise UserError(f"recipe eval.data_dir: {exc}") from None
            left_out = f"public suites {', '.join(public)} ({exc})"  # the run leaves them out with a warning
            wanted = [n for n in wanted if n == "lab"]
    counts = check_data(wanted, data_dir, options) if data_dir is not None else {}
    plans = {s.name: s for s in suite_plans(wanted, counts, data_dir, ev.limit, ev.per_family, ev.seed)}
    variant_items = {tag: sum(plans[n].items or 0 for n in ns if n in plans) for tag, ns in variants.items()}
    return [plans[n] for n in names if n in plans], variant_items, left_out, data_dir


def _wrappers(recipe: Any, models: dict[str, str]) -> dict[str, list[str]]:
    """Check the policy wrappers; return each variant's tag and the suites it is measured on."""
    from autoalign.evaluate.runner import expand

    variants = {}
    for i, w in enumerate(recipe.eval.wrappers):
        where = f"recipe eval.wrappers.{i}"
        if w.method == "aligner":
            models["aligner upstream"] = check_model(w.upstream, f"{where}.upstream")
        if getattr(w, "reward_model", None) and not Path(w.reward_model).expanduser().is_dir():
            raise UserError(f"{where}.reward_model: not a directory: {w.reward_model}")
        tag = f"best-of-{w.n}" if w.method == "best_of_n" else getattr(w, "tag", None)
        if tag and getattr(w, "role", "variant") == "variant" and getattr(w, "suites", None) is not None:
            try:
                variants[tag] = expand(list(w.suites))
            except UserError as exc:
                raise UserError(f"{where}.suites: {exc}") from None
    return variants


def _training(recipe: Any) -> None:
    t = recipe.train
    if t.accelerate_config and not Path(t.accelerate_config).expanduser().is_file():
        raise UserError(f"recipe train.accelerate_config: file not found: {t.accelerate_config}")
    for i, phase in enumerate(t.phases):
        for j, reward in enumerate(getattr(phase, "rewards", None) or []):
            path = getattr(reward, "path", None)
            if path and not Path(path).expanduser().exists():
                raise UserError(f"recipe train.phases.{i}.rewards.{j}.path: not found: {path}")


def preflight(recipe: Any) -> Plan:
    """Check everything ``recipe`` needs (see the module docstring) and return its plan. Loads no model and
    writes nothing."""
    models = {"policy": check_model(recipe.policy, "recipe policy")}
    prompts, count = _prompts(recipe)
    found = _signal_models(recipe)
    for method, uris in found:
        models.update({f"{method} {role}": uri for uri, role in uris.items() if uri != "policy"})
    signals = [(method, list(uris)) for method, uris in found]
    if recipe.eval.judge:
        models["eval judge"] = check_model(recipe.eval.judge, "recipe eval.judge")
    variants = _wrappers(recipe, models)
    _training(recipe)
    suites, variant_items, left_out, data_dir = _suites(recipe, variants)
    return Plan(name=recipe.name, run_dir=Path(recipe.run_dir) / recipe.name, rounds=recipe.rounds, models=models,
                prompts=prompts, prompt_count=count, samples_per_prompt=recipe.sampling.n, signals=signals,
                phases=recipe.train.chain, suites=suites, variants=variant_items, left_out=left_out, data_dir=data_dir,
                gate=recipe.eval.gate.enabled)
