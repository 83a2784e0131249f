"""Recipes: pydantic models of a run, loaded from YAML with dotted ``key.sub=value`` overrides.

The config is parsed once, here, at the edge; everything below takes plain arguments. Every field is strict
(unknown keys are errors) so a typo fails loudly with the field's dotted name, never silently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autoalign.errors import UserError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelfInstructConfig(Strict):
    """Self-Instruct prompt proposal (``autoalign.signals.imitation.self_instruct``): the round's policy writes
    ``share`` of the round's ``count`` prompts from a seed pool (the prompts drawn from ``source``); the rest of the
    round's prompts are seed-pool prompts as they are (so a lab run keeps prompts the oracle can grade)."""

    share: float = Field(0.5, gt=0.0, le=1.0)
    style: Literal["auto", "prefix", "instruct"] = "auto"
    prefix_words: int = Field(2, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    max_new_tokens: int = Field(48, ge=1)
    similarity: float = Field(0.7, gt=0.0, le=1.0)


class PromptsConfig(Strict):
    """Where each round's prompts come from: the lab's task families, or a JSONL file of ``records.Prompt``;
    optionally partly written by the policy itself (``self_instruct``)."""

    source: Literal["lab", "file"] = "lab"
    count: int = Field(200, ge=1)
    families: list[str] | None = None
    path: str | None = None
    self_instruct: SelfInstructConfig | None = None


class SamplingConfig(Strict):
    n: int = Field(8, ge=1)
    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(64, ge=1)
    chunk_prompts: int = Field(32, ge=1)  # prompts per written part: the unit of resume
    ray: "RayConfig | None" = None  # shard sampling over Ray workers, each with its own replica of the policy


class RayConfig(Strict):
    workers: int = Field(2, ge=1)
    address: str | None = None  # None: start or join a local instance; "auto" or "ray://head:10001": a cluster
    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)
    # also shard the signals stage over the same replicas: the policy as judge / critic / reviser, and every model
    # a signal names by URI (each on its own Ray replicas)
    judging: bool = False


SamplingConfig.model_rebuild()


class SignalConfig(Strict):
    """One signal: ``method`` names it (see ``autoalign.signals.catalog``), ``params`` are its constructor args."""

    method: str
    params: dict[str, Any] = Field(default_factory=dict)


class LoraConfig(Strict):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"


class TrainConfig(Strict):
    """``method``: sft on the signals' SFT examples, dpo on their preference pairs, or sft then dpo."""

    method: Literal["sft", "dpo", "sft+dpo"] = "sft"
    epochs: float = Field(2.0, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    dpo_learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(256, ge=16)
    beta: float = Field(0.1, gt=0)
    dpo_loss: str = "sigmoid"
    lora: LoraConfig | None = None
    launcher: Literal["inline", "accelerate"] = "inline"
    num_processes: int = Field(1, ge=1)
    accelerate_config: str | None = None  # an accelerate config file (DeepSpeed ZeRO, FSDP) for launcher: accelerate


class EvalConfig(Strict):
    """``aligned_upstream``: evaluate the upstream model named here alone (round 0) and followed by each round's
    trained policy as an Aligner-style corrector (rounds >= 1), instead of the policy itself.
    ``best_of_n``: also evaluate best-of-n sampling of each round's policy under ``reward_model`` (a reward-model
    directory; default: the one a ``raft`` signal of the run trained), reported as suite ``lab@best-of-N``.
    ``judge_agreement``: measure each round's signal labels and training data against the lab oracle (lab prompts
    only; the signal never sees the oracle)."""

    suites: list[str] = Field(default_factory=lambda: ["lab"])
    per_family: int = Field(30, ge=1)
    limit: int | None = None
    seed: int = 1234
    max_new_tokens: int = Field(48, ge=1)
    aligned_upstream: str | None = None
    best_of_n: int | None = Field(None, ge=2)
    reward_model: str | None = None
    judge_agreement: bool = True


class Recipe(Strict):
    name: str
    seed: int = 0
    policy: str = "lab:small"
    rounds: int = Field(2, ge=1)
    run_dir: str = "runs"
    cache_dir: str | None = None  # default: <run_dir>/<name>/cache
    # provider options by model URI, e.g. {"openai:http://127.0.0.1:8000/v1#m": {"max_concurrency": 8,
    # "request_budget": 5000, "api_key_env": "MY_KEY"}}; never put a key itself here
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    signals: list[SignalConfig] = Field(default_factory=list)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("signals")
    @classmethod
    def _at_least_one(cls, v: list[SignalConfig]) -> list[SignalConfig]:
        if not v:
            raise ValueError("a recipe needs at least one signal")
        return v

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:16]


def apply_override(data: dict, override: str) -> None:
    """Set ``a.b.c=value`` in nested dicts; the value is parsed as YAML (``3`` -> int, ``[a, b]`` -> list).
    Integers index into lists (``signals.0.params.k=4``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override {override!r}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override {key}: {'.'.join(parts[: i + 1])} is not a valid list index")
            node = node[int(part)]
        else:
            if part not in node or node[part] is None:
                node[part] = [] if nxt.isdigit() else {}
            node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise UserError(f"override {key}: {last} is not a valid list index")
        node[int(last)] = value
    else:
        node[last] = value


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    extra = f" (got {first.get('input')!r})" if first["type"] != "missing" and not isinstance(first.get("input"), dict) else ""
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"recipe {source}: {loc}: {first['msg']}{extra}{more}"


def load_recipe(path: str | Path | None, overrides: list[str] = (), data: dict | None = None) -> Recipe:
    """Load a recipe from YAML (or ``data``), apply overrides, validate. Raises UserError with one line."""
    source = str(path) if path is not None else "<built-in>"
    if data is None:
        p = Path(path)  # type: ignore[arg-type]
        if not p.is_file():
            raise UserError(f"recipe {source}: file not found")
        try:
            data = yaml.safe_load(p.read_text("utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise UserError(f"recipe {source}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"recipe {source}: expected a mapping at the top level, got {type(data).__name__}")
    data = json.loads(json.dumps(data))  # deep copy
    for o in overrides:
        apply_override(data, o)
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise UserError(_describe(err, source)) from None


def save_resolved(recipe: Recipe, path: Path) -> None:
    from autoalign.store import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(recipe.model_dump(), sort_keys=False))
