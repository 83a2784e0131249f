"""Recipes: pydantic models of a run, loaded from YAML with dotted ``key.sub=value`` overrides.

The config is parsed once, here, at the edge; everything below takes plain arguments. Every field is strict
(unknown keys are errors) so a typo fails loudly with the field's dotted name, never silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from autoalign.decoding.aligner import AlignerConfig
from autoalign.decoding.aligners_inspectors import AlignersInspectorsConfig
from autoalign.decoding.best_of_n import BestOfNConfig
from autoalign.decoding.linear_alignment import LinearAlignmentConfig
from autoalign.decoding.self_refine import SelfRefineConfig
from autoalign.decoding.system_prompt import SystemPromptConfig
from autoalign.errors import UserError
from autoalign.gate import GateConfig
from autoalign.screen import ScreenConfig
from autoalign.signals.imitation.evol_instruct import EvolInstructConfig
from autoalign.signals.imitation.self_instruct import SelfInstructConfig
from autoalign.train.phases import DPOLoss, LoraConfig, Phase, apply_shorthand, default_phases
from autoalign.yaml_input import (  # noqa: F401  (re-exported: the recipe edge's readers and bounds)
    MAX_RECIPE_BYTES,
    MAX_RECIPE_DEPTH,
    MAX_RECIPE_NODES,
    _plain,
    _safe_load,
    read_yaml_file,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The methods' own config classes (each in its method's module, tabled in autoalign.methods), discriminated on
# ``method:`` so a wrong parameter is a one-line error naming the field.
WriterConfig = Annotated[SelfInstructConfig | EvolInstructConfig, Field(discriminator="method")]
WrapperConfig = Annotated[BestOfNConfig | AlignerConfig | SystemPromptConfig | SelfRefineConfig | LinearAlignmentConfig
                          | AlignersInspectorsConfig, Field(discriminator="method")]


class PromptsConfig(Strict):
    """Where each round's prompts come from (``source``: a row of ``methods.PROMPT_SOURCES``: the lab's task
    families, or a JSONL file of ``records.Prompt``), then rewritten in order by ``writers`` (Self-Instruct:
    partly written by the policy itself). ``self_instruct: {...}`` is shorthand for one self_instruct writer."""

    source: Literal["lab", "file", "lab_multistep"] = Field("lab", description=(
        "``lab``: the lab's task families (with ground truth for evaluation); ``file``: a JSONL file of prompts "
        "(``path``; see Prompt files); ``lab_multistep``: the opt-in multi-step lab tasks (chained arithmetic, "
        "list pipelines; ``autoalign.lab.world.multistep``)"))
    count: int = Field(200, ge=1, description="prompts per round (a file source draws at most this many, seeded)")
    families: list[str] | None = Field(None, description="lab sources: only these task families (default: all)")
    path: str | None = Field(None, description="the prompt file of ``source: file`` (required there)")
    writers: list[WriterConfig] = Field(default_factory=list, description=(
        "prompt writers applied in order to the drawn prompts (``{method: self_instruct, ...}``); "
        "``self_instruct: {...}`` is shorthand for one"))

    @model_validator(mode="after")
    def _file_needs_path(self) -> PromptsConfig:
        if self.source == "file" and not self.path:
            raise ValueError("path: required when source is file (a JSONL file of prompts: prompts.path=FILE)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "self_instruct" in data:
            data = dict(data)
            si = data.pop("self_instruct")
            if si is not None:
                data["writers"] = [*(data.get("writers") or []), {**(si or {}), "method": "self_instruct"}]
        return data


class SamplingConfig(Strict):
    n: int = Field(8, ge=1, description="responses sampled per prompt each round")
    temperature: float = Field(0.8, ge=0.0, description="sampling temperature (0: greedy)")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling: the smallest set of tokens of this mass")
    max_new_tokens: int = Field(48, ge=1, description="tokens generated per response at most")
    batch_size: int = Field(64, ge=1, description="prompts per generation batch of a local model")
    chunk_prompts: int = Field(32, ge=1, description="prompts per written part of the samples: the unit of resume")
    ray: "RayConfig | None" = Field(None, description=(
        "shard sampling over Ray workers, each with its own replica of the policy (``pip install "
        "'autoalign[ray]'``)"))


class RayConfig(Strict):
    workers: int = Field(2, ge=1, description="Ray actors, each holding one replica of the model")
    address: str | None = Field(None, description=(
        "null: start or join a local instance; ``auto`` or ``ray://head:10001``: a cluster"))
    num_cpus: float = Field(1, gt=0, description="CPUs each replica reserves")
    num_gpus: float = Field(0, ge=0, description="GPUs each replica reserves")
    judging: bool = Field(False, description=(
        "also shard the signals stage over the same replicas: the policy as judge / critic / reviser, and every "
        "model a signal names by URI (each on its own Ray replicas)"))


SamplingConfig.model_rebuild()


class SignalConfig(Strict):
    """One signal: ``method`` names it (see ``autoalign.signals.catalog``), ``params`` are its constructor args."""

    method: str = Field(description="the signal's name (a row of the signals table below)")
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "the signal's parameters (its table below); unknown or mistyped ones are an error"))


# LoraConfig (LoRA instead of full fine-tuning, per phase) lives with the phases: autoalign.train.phase.


class TrainConfig(Strict):
    """``phases``: the round's training, in order (``autoalign.train.phases.PHASES``: sft, dpo, kto, orpo), each
    validated against its kind's own config and training the previous phase's output on the round's data of its
    kind (SFT examples, or preference pairs); a phase with no data is skipped. Default: one sft phase.

    Shorthand, the form before phases (still read; folded into ``phases`` on load and never saved, since
    ``model_dump`` keeps ``phases`` only): ``method: sft | dpo | sft+dpo`` picks the phases (reusing an entry of
    ``phases`` of that kind); ``epochs``, ``batch_size``, ``grad_accum``, ``max_length`` and ``lora`` set every
    phase's; ``learning_rate`` the sft phases'; ``dpo_learning_rate``, ``beta`` and ``dpo_loss`` the dpo phases'.
    So old recipes and overrides (``train.method=sft+dpo``, ``train.epochs=1``) train exactly as before."""

    phases: list[Phase] = Field(default_factory=default_phases, description=(
        "the round's training phases, in order, each ``{kind: ..., ...}`` (see Training phases)"))
    screen: ScreenConfig = Field(default_factory=ScreenConfig, description=(
        "the checks the round's training data passes before it trains"))
    launcher: Literal["inline", "accelerate"] = Field("inline", description=(
        "``inline``: train in this process; ``accelerate``: under ``accelerate launch`` (several GPUs or processes)"))
    num_processes: int = Field(1, ge=1, description="processes ``accelerate launch`` starts (launcher: accelerate)")
    accelerate_config: str | None = Field(None, description=(
        "an accelerate config file (DeepSpeed ZeRO, FSDP) for launcher: accelerate; default: "
        "``$ACCELERATE_CONFIG_FILE``, else plain DDP"))
    # where each round's training starts: ``kept``, the last kept policy (the loop's default: round k+1 trains round
    # k's policy); ``base``, the recipe's ``policy`` every round (ReST-EM, Singh et al. 2023, sec. 3: each Improve
    # step fine-tunes the base model on the samples the latest policy generated)
    start_from: Literal["kept", "base"] = "kept"
    # experiment trackers every phase's trainer reports to (autoalign.train.tracking: tensorboard, wandb, mlflow...,
    # whichever is installed); none by default. Not dumped: tracking changes no result (nor the train stage's key)
    report_to: list[str] = Field(default_factory=list, exclude=True)

    @field_validator("report_to", mode="before")
    @classmethod
    def _known_installed_trackers(cls, value: Any) -> list[str]:
        from autoalign.train.tracking import parse_report_to

        return parse_report_to(value)

    # the shorthand (see above); None: not given
    method: Literal["sft", "dpo", "sft+dpo"] | None = Field(None, exclude=True, description="the phases, by kind")
    epochs: float | None = Field(None, gt=0, exclude=True, description="every phase's ``epochs``")
    learning_rate: float | None = Field(None, gt=0, exclude=True, description="the sft phases' ``learning_rate``")
    dpo_learning_rate: float | None = Field(None, gt=0, exclude=True,
                                            description="the dpo phases' ``learning_rate``")
    batch_size: int | None = Field(None, ge=1, exclude=True, description="every phase's ``batch_size``")
    grad_accum: int | None = Field(None, ge=1, exclude=True, description="every phase's ``grad_accum``")
    max_length: int | None = Field(None, ge=16, exclude=True, description="every phase's ``max_length``")
    beta: float | None = Field(None, gt=0, exclude=True, description="the dpo phases' ``beta``")
    dpo_loss: DPOLoss | None = Field(None, exclude=True, description="the dpo phases' ``loss_type``")
    lora: LoraConfig | None = Field(None, exclude=True, description="every phase's ``lora``")

    @model_validator(mode="after")
    def _fold_shorthand(self) -> TrainConfig:
        flat = ("epochs", "learning_rate", "dpo_learning_rate", "batch_size", "grad_accum", "max_length", "beta",
                "dpo_loss", "lora")
        given = {k: getattr(self, k) for k in flat if k in self.model_fields_set}
        if self.method is not None or given:
            self.phases = apply_shorthand(self.phases, given, self.method)  # type: ignore[assignment]
        return self

    @model_serializer(mode="wrap")
    def _default_start_unsaved(self, handler: Any) -> Any:
        """``start_from: kept`` (the default) is left out of the dump, so the train stage keys of runs written
        before the field existed stay the same (a resumed run does not retrain)."""
        data = handler(self)
        if isinstance(data, dict) and data.get("start_from") == "kept":
            data.pop("start_from")
        return data

    @property
    def chain(self) -> str:
        """The phases in order, for people: ``sft -> dpo`` (``none`` when there are none)."""
        return " -> ".join(p.kind for p in self.phases) or "none"


class EvalConfig(Strict):
    """``suites``: what each round is measured on. ``wrappers``: policy wrappers (``methods.POLICY_WRAPPERS``):
    ``{method: best_of_n, n: 4}`` also measures best-of-n sampling of each round's policy under a reward model
    (``reward_model: DIR``; default: the newest one a signal of the run declared), as suite ``lab@best-of-N``;
    ``{method: aligner, upstream: URI}`` measures the upstream model alone (round 0) and followed by each round's
    trained policy as its corrector (rounds >= 1), instead of the policy itself. The old keys
    ``aligned_upstream``, ``best_of_n`` and ``reward_model`` are shorthand for those two.
    ``judge_agreement``: measure each round's signal labels and training data against the lab oracle (lab prompts
    only; the signal never sees the oracle). ``gate``: a round whose figures fall beyond their noise against the
    last kept policy is not kept, and the next round starts from that policy (``autoalign.gate``)."""

    suites: list[str] = Field(default_factory=lambda: ["lab"], description=(
        "suites and groups each round is measured on (see Suites); checked before anything runs"))
    per_family: int = Field(30, ge=1, description="lab suite: items per task family")
    limit: int | None = Field(None, description="public suites: at most this many items each (stratified, seeded)")
    seed: int = Field(1234, description="the evaluation's seed (item choice and sampling), the same every round")
    max_new_tokens: int = Field(48, ge=1, description="lab suite: tokens generated per answer at most")
    wrappers: list[WrapperConfig] = Field(default_factory=list, description=(
        "policy wrappers measured as well as, or instead of, each round's policy (see Policy wrappers)"))
    # public suites inside runs: their data directory, the judge model a judged suite uses, per-suite options
    data_dir: str | None = Field(None, description=(
        "the public suites' data directory (default: ``$AUTOALIGN_DATA``, else ``../shared/data``)"))
    judge: str | None = Field(None, description=(
        "the judge model (a URI) of the suites that use one (refusal, toxicity and win-rate scoring); default: "
        "each suite's own rules"))
    options: dict[str, Any] = Field(default_factory=dict, description=(
        "per-suite options, as ``autoalign eval --option`` takes them (``rtp_samples``, ``humaneval_samples``, "
        "``sandbox_timeout_s``, ``templates``, ``instructions``, ``hh_scorer``)"))
    judge_agreement: bool = Field(True, description=(
        "measure each round's signal labels and training data against the lab oracle (lab prompts only; the "
        "signal never sees the oracle)"))
    gate: GateConfig = Field(default_factory=GateConfig, description="the 3H gate (``autoalign.gate``): on by default")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not {"aligned_upstream", "best_of_n", "reward_model"} & set(data):
            return data
        data = dict(data)
        wrappers = list(data.get("wrappers") or [])
        up, n, rm = data.pop("aligned_upstream", None), data.pop("best_of_n", None), data.pop("reward_model", None)
        if up is not None:
            wrappers.append({"method": "aligner", "upstream": up})
        if n is not None:
            wrappers.append({"method": "best_of_n", "n": n, "reward_model": rm})
        data["wrappers"] = wrappers
        return data

    @field_validator("suites")
    @classmethod
    def _known_suites(cls, v: list[str]) -> list[str]:
        from autoalign.evaluate.runner import NAMES

        for name in v:
            if name.strip().lower().replace("-", "_") not in NAMES:
                raise ValueError(f"unknown suite {name!r} (known: {', '.join(NAMES)})")
        return v

    @field_validator("wrappers")
    @classmethod
    def _one_replacement(cls, v: list) -> list:
        replacing = [w.method for w in v if w.method == "aligner" or getattr(w, "role", None) == "replace"]
        if len(replacing) > 1:
            raise ValueError(f"at most one wrapper may replace the evaluated policy (got {', '.join(replacing)})")
        return v


class Recipe(Strict):
    name: str = Field(description="the run's name: its directory is ``<run_dir>/<name>``")
    seed: int = Field(0, description="the seed every random choice of the run derives from")
    policy: str = Field("lab:small", description=(
        "the model to align, a URI: ``lab:tiny``, ``lab:small``, ``hf:DIR``, ``openai:URL#MODEL``, ``vllm:ID``, "
        "``mock:`` (only ``lab:`` and ``hf:`` policies, and ``vllm:`` on a local directory, can be trained)"))
    rounds: int = Field(2, ge=1, description="rounds of prompts -> samples -> signals -> training -> evaluation")
    run_dir: str = Field("runs", description="where run directories go")
    cache_dir: str | None = Field(None, description="the model-call cache (default: ``<run_dir>/<name>/cache``)")
    # provider options by model URI; never put a key itself here
    models: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "provider options by model URI, e.g. ``{\"openai:http://127.0.0.1:8000/v1#m\": {max_concurrency: 8, "
        "request_budget: 5000, api_key_env: MY_KEY}}`` (see backends.md); never put a key itself here"))
    prompts: PromptsConfig = Field(default_factory=PromptsConfig, description="where each round's prompts come from")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="how the policy answers them")
    signals: list[SignalConfig] = Field(default_factory=list, description=(
        "the alignment signals that turn the samples into training data (at least one)"))
    train: TrainConfig = Field(default_factory=TrainConfig, description="how the round's data trains the policy")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="what each round's policy is measured on")

    @field_validator("signals")
    @classmethod
    def _at_least_one(cls, v: list[SignalConfig]) -> list[SignalConfig]:
        if not v:
            raise ValueError("a recipe needs at least one signal")
        return v

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:16]


# What a recipe may be: a YAML file of at most MAX_RECIPE_BYTES that expands (YAML aliases copied out) to at most
# MAX_RECIPE_NODES values, nested at most MAX_RECIPE_DEPTH deep. Real recipes are a few KB and a few hundred values;
# the bounds refuse a "billion laughs" document of nested aliases in milliseconds instead of exhausting memory.
def apply_override(data: dict, override: str) -> None:
    """Set ``a.b.c=value`` in nested dicts; the value is parsed as YAML (``3`` -> int, ``[a, b]`` -> list).
    Integers index into lists (``signals.0.params.k=4``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override {override!r}: expected key.sub=value")
    key = key.strip()
    try:
        value = _safe_load(raw, f"override {key}") if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    value = _plain(value, f"override {key}")
    parts = key.split(".")
    if not all(p.strip() for p in parts):
        raise UserError(f"override {key}: empty field name in the dotted key")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override {key}: {'.'.join(parts[: i + 1])} is not a valid list index")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                node[part] = [] if nxt.isdigit() else {}
            node = node[part]
        else:
            raise UserError(f"override {key}: {'.'.join(parts[:i])} is {_short(node)}, not a mapping or a list")
    last = parts[-1]
    if not isinstance(node, (dict, list)):
        raise UserError(f"override {key}: {'.'.join(parts[:-1])} is {_short(node)}, not a mapping or a list")
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise UserError(f"override {key}: {last} is not a valid list index")
        node[int(last)] = value
    else:
        node[last] = value


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message stays one readable line whatever the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    shown = first["type"] != "missing" and not isinstance(first.get("input"), dict)
    extra = f" (got {_short(first.get('input'))})" if shown else ""
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return " ".join(f"recipe {source}: {loc}: {first['msg']}{extra}{more}".split())


def load_recipe(path: str | Path | None, overrides: Sequence[str] = (), data: dict | None = None) -> Recipe:
    """Load a recipe from YAML (or ``data``), apply overrides, validate. Raises UserError with one line."""
    source = str(path) if path is not None else "<built-in>"
    if data is None:
        data = read_yaml_file(Path(path), f"recipe {source}")  # type: ignore[arg-type]
    if not isinstance(data, dict):
        raise UserError(f"recipe {source}: expected a mapping at the top level, got {type(data).__name__}")
    data = _plain(data, f"recipe {source}")  # deep copy, bounded: aliases expanded at most MAX_RECIPE_NODES
    for o in overrides:
        apply_override(data, o)
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise UserError(_describe(err, source)) from None


# Overrides that say where a run goes, not what it does: they never make a variant (``run_dir=/scratch/runs``).
LOCATION_KEYS = ("run_dir", "cache_dir")
MAX_VARIANT_SLUG = 40


def variant_name(name: str, overrides: Sequence[str]) -> str:
    """The run name of a recipe run with ``overrides``, so that a variant never replaces the recipe's own run:

    - no override, only ``run_dir`` / ``cache_dir``, or a ``name=...`` override (the user named the run): ``name``;
    - else ``<name>-<overrides>``: the overrides in the order given, joined by ``,``, each character other than a
      letter, digit or ``._=+-`` replaced by ``_`` (``demo-rounds=1``, ``demo-rounds=1,sampling.n=4``);
    - when that part is longer than 40 characters: its first 31 characters, ``-`` and 8 hex digits of the SHA-256
      of the overrides (``demo-rounds=1,sampling.n=4,train.-3f2a9c1e``), so long variants stay apart.

    A pure function of the command line: the same command names the same run, so rerunning it resumes it."""
    changes = [o.strip() for o in overrides if o.partition("=")[0].strip() not in LOCATION_KEYS]
    if not changes or any(o.partition("=")[0].strip() == "name" for o in changes):
        return name
    slug = ",".join(re.sub(r"[^A-Za-z0-9._=+-]", "_", c) for c in changes)
    if len(slug) > MAX_VARIANT_SLUG:
        slug = f"{slug[:31]}-{hashlib.sha256(chr(10).join(changes).encode()).hexdigest()[:8]}"
    return f"{name}-{slug}"


def save_resolved(recipe: Recipe, path: Path) -> None:
    from autoalign.store import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(recipe.model_dump(), sort_keys=False))
