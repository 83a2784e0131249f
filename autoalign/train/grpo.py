"""Online RL through TRL: GRPO (Shao et al. 2024, DeepSeekMath, eq. 3: group-relative advantages) with
GRPOTrainer and RLOO (Ahmadian et al. 2024, eq. 4: each sample's baseline is the mean reward of the other k-1
samples of its prompt) with RLOOTrainer. Both train on the round's prompts (``consumes = "prompts"``): the policy
generates ``num_generations`` completions per prompt inside the trainer and each is rewarded by Scorers.

Rewards are Scorers (``autoalign.scoring``) named in ``rewards: [{scorer, weight}]`` and resolved through the
visible table ``autoalign.methods.REWARD_SCORERS`` (import paths, loaded when a phase runs), turned into TRL reward
functions by ``scoring.reward_function``; several are combined by TRL's ``reward_weights``. The KL to the reference
policy is TRL's, weighted by ``beta``.

A prompt reaches the reward with its ``prompt_id``, ``axis``, ``family`` and ``env`` (dataset columns TRL passes to
every reward function). ``env`` dicts differ in shape from one task kind to another, which one Arrow struct column
cannot hold faithfully, so the column is the env's JSON text, decoded back to a dict before the scorer sees it.

Each logged step's reward (TRL's ``reward``, ``reward_std``, ``kl`` and ``rewards/<scorer>/mean``) is kept in the
phase's metrics (``reward_log``), so a report can plot the reward curve beside the oracle's figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autoalign.train.phase import PhaseConfig, numbered

LOGGED = ("reward", "reward_std", "kl")  # TRL's per-step keys kept beside rewards/<name>/mean


# scorers built from a directory (``path``) or from a model URI (``model``, loaded by the run's model loader)
NEEDS_PATH = ("reward_model", "process_reward", "multihead_reward_model")
NEEDS_MODEL = ("judge",)


class RewardSpec(BaseModel):
    """One reward: a Scorer of ``autoalign.methods.REWARD_SCORERS`` and its weight in the sum TRL takes.
    ``path``: the directory a scorer loads (``reward_model``: a sequence-classification model of one label;
    ``process_reward``: a process reward model, ``autoalign.signals.model_feedback.process_reward``);
    ``model``: the judge model's URI for ``judge`` (e.g. ``lab:teacher``: the pointwise logprob judge,
    P(Yes) under the constitution's principle of the prompt's axis);
    ``missing``: the reward of a completion the scorer cannot score (no environment to run, no verdict)."""

    model_config = ConfigDict(extra="forbid")

    scorer: str  # the reward's scorer: a key of REWARD_SCORERS (execution, reward_model, toxicity, judge, process_reward)
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)  # this reward's weight in the sum
    path: str | None = None
    model: str | None = None
    missing: float = Field(0.0, allow_inf_nan=False)

    @field_validator("scorer")
    @classmethod
    def _known(cls, v: str) -> str:
        from autoalign.methods import REWARD_SCORERS

        if v not in REWARD_SCORERS:
            raise ValueError(f"unknown scorer {v!r} (known: {', '.join(sorted(REWARD_SCORERS))})")
        return v

    @model_validator(mode="after")
    def _path(self) -> RewardSpec:
        if self.scorer in NEEDS_PATH and not self.path:
            raise ValueError(f"path: the {self.scorer} scorer needs the model's directory")
        if self.scorer not in NEEDS_PATH and self.path is not None:
            raise ValueError(f"path: the {self.scorer} scorer takes no path")
        if self.scorer in NEEDS_MODEL and not self.model:
            raise ValueError(f"model: the {self.scorer} scorer needs a model URI (e.g. lab:teacher)")
        if self.scorer not in NEEDS_MODEL and self.model is not None:
            raise ValueError(f"model: the {self.scorer} scorer takes no model")
        return self


class OnlineRLPhase(PhaseConfig):
    """What GRPO and RLOO share. ``batch_size``: completions per device step (whole groups: ``batch_size`` x
    ``grad_accum`` is a multiple of ``num_generations``); ``beta``: weight of the KL to the reference policy (0:
    no reference is held); ``max_completion_length``: tokens generated per completion; ``max_length`` is not used."""

    consumes: ClassVar[Literal["sft", "preferences", "prompts"]] = "prompts"
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(8, ge=1)
    num_generations: int = Field(4, ge=2)
    max_completion_length: int = Field(64, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    beta: float = Field(0.04, ge=0)
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(scorer="execution")], min_length=1)
    # generation inside the trainer: TRL's vLLM integration (``colocate``: vLLM in the training process, one GPU;
    # ``server``: a ``trl vllm-serve`` process) where vllm is installed; the HF ``generate`` path otherwise
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"

    @model_validator(mode="after")
    def _vllm_installed(self) -> OnlineRLPhase:
        import importlib.util

        if self.use_vllm and importlib.util.find_spec("vllm") is None:
            raise ValueError("use_vllm: vllm is not installed (pip install vllm, on a GPU machine), "
                             "or set use_vllm: false for the HF generate path")
        return self

    @model_validator(mode="after")
    def _whole_groups(self) -> OnlineRLPhase:
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(f"batch_size: batch_size x grad_accum ({self.batch_size * self.grad_accum}) must be a "
                             f"multiple of num_generations ({self.num_generations}): each step scores whole groups")
        return self


class GRPOPhase(OnlineRLPhase):
    """``kind: grpo``: TRL's GRPOTrainer. ``loss_type``: TRL's aggregation of token losses (``grpo`` is the
    paper's per-sequence mean; ``dapo``, TRL's default, normalises by the batch's active tokens)."""

    kind: Literal["grpo"] = "grpo"
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "dapo"


class RLOOPhase(OnlineRLPhase):
    """``kind: rloo``: TRL's RLOOTrainer (leave-one-out baseline)."""

    kind: Literal["rloo"] = "rloo"
    beta: float = Field(0.05, ge=0)


# ---- rewards ----------------------------------------------------------------------------------------------------
def reward_names(specs: list[RewardSpec]) -> list[str]:
    """Each reward's name in TRL's logs (``rewards/<name>/mean``): its scorer, then ``scorer-2`` on repeats."""
    return numbered([s.scorer for s in specs])


def build_scorer(spec: RewardSpec) -> Any:
    """The Scorer of one reward: built with no argument, with its ``path``, or (``judge``) with its ``model``
    loaded by the model registry (a URI: ``lab:teacher``, ``hf:DIR``, ``openai:...``)."""
    from autoalign.methods import MODEL_LOADER, REWARD_SCORERS, resolve

    cls = resolve(REWARD_SCORERS[spec.scorer])
    if spec.model is not None:
        return cls(resolve(MODEL_LOADER)(spec.model))
    return cls(spec.path) if spec.path is not None else cls()


def decoding_env(fn: Callable[..., list[float]]) -> Callable[..., list[float]]:
    """``fn`` with the ``env`` column (JSON text, or None / "" for a prompt without one) decoded to dicts."""

    def reward(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        if "env" in kwargs and kwargs["env"] is not None:
            kwargs["env"] = [json.loads(e) if isinstance(e, str) and e else None for e in kwargs["env"]]
        return fn(prompts, completions, **kwargs)

    reward.__name__ = fn.__name__
    return reward


def reward_functions(specs: list[RewardSpec], scorers: list[Any] | None = None) -> list[Callable[..., list[float]]]:
    """The TRL reward functions of ``specs`` (``scorers``: already built ones, else built from the specs)."""
    from autoalign.scoring import reward_function

    scorers = scorers if scorers is not None else [build_scorer(s) for s in specs]
    return [decoding_env(reward_function(sc, missing=spec.missing, name=name))
            for spec, sc, name in zip(specs, scorers, reward_names(specs), strict=True)]


def prompt_rows(prompts: list[dict]) -> list[dict]:
    """``records.Prompt`` dumps -> TRL conversational prompt rows with the columns ``reward_function`` puts back
    (``env`` as JSON text, see the module docstring)."""
    return [{"prompt": p["messages"], "prompt_id": p["id"], "axis": p.get("axis"), "family": p.get("family"),
             "env": json.dumps(p["env"], sort_keys=True) if p.get("env") is not None else None} for p in prompts]


def reward_log(history: list[dict]) -> list[dict]:
    """The per-step reward entries of a trainer's ``state.log_history``."""
    keep: list[dict] = []
    for h in history:
        if "reward" not in h:
            continue
        row = {"step": int(h.get("step", len(keep) + 1))}
        row.update({k: float(v) for k, v in h.items()
                    if v is not None and (k in LOGGED or (k.startswith("rewards/") and k.endswith("/mean")))})
        keep.append(row)
    return keep


# ---- the phases -------------------------------------------------------------------------------------------------
def run_grpo(cfg: GRPOPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_online(cfg, policy, rows, out_dir, seed)


def run_rloo(cfg: RLOOPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_online(cfg, policy, rows, out_dir, seed)


def online_trainer(cfg: OnlineRLPhase, policy: str | Path, prompts: list[dict], out_dir: str | Path, seed: int,
                   scorers: list[Any] | None = None, trainer_class: Any = None,
                   trainer_kwargs: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(trainer, tokenizer): TRL's GRPO or RLOO trainer (by ``cfg``'s class; ``trainer_class``: a subclass of it,
    PPO-ptx's) on ``prompts`` (``records.Prompt`` dumps), every step's reward logged. ``scorers``: built scorers
    for ``cfg.rewards`` (tests); ``trainer_kwargs``: the subclass's own arguments."""
    from autoalign.train.common import common_args, load_policy, peft_config, to_dataset

    if isinstance(cfg, GRPOPhase):
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer

        extra: dict[str, Any] = {"loss_type": cfg.loss_type}
    else:
        from trl import RLOOConfig as Config  # type: ignore[assignment]
        from trl import RLOOTrainer as Trainer  # type: ignore[assignment]

        extra = {}
    if cfg.use_vllm:
        extra.update(use_vllm=True, vllm_mode=cfg.vllm_mode)
    out_dir = Path(out_dir)
    model, tokenizer = load_policy(policy)
    args = Config(
        **{**common_args(out_dir / "trainer", seed, cfg.epochs, cfg.learning_rate, cfg.batch_size, cfg.grad_accum,
                         cfg.max_steps), "logging_steps": 1},  # every step's reward reaches the log history
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        beta=cfg.beta,
        reward_weights=[r.weight for r in cfg.rewards],
        log_completions=False,
        **extra,
    )
    trainer = (trainer_class or Trainer)(
        model=model,
        reward_funcs=reward_functions(cfg.rewards, scorers),  # type: ignore[arg-type]
        args=args,
        train_dataset=to_dataset(prompt_rows(prompts), out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(cfg.lora.model_dump() if cfg.lora else None),
        **(trainer_kwargs or {}),
    )
    return trainer, tokenizer


def online_metrics(cfg: OnlineRLPhase, trainer: Any, trained: dict, prompts: list[dict]) -> dict:
    """What an online-RL phase reports: the trainer's metrics, its rewards and the per-step ``reward_log``."""
    log = reward_log(trainer.state.log_history)
    return {**trained, "prompts": len(prompts),
            "rewards": reward_names(cfg.rewards), "reward_weights": [r.weight for r in cfg.rewards],
            "reward_log": log, "reward_mean": sum(r["reward"] for r in log) / len(log) if log else None}


def train_online(cfg: OnlineRLPhase, policy: str | Path, prompts: list[dict], out_dir: str | Path, seed: int,
                 scorers: list[Any] | None = None) -> dict:
    """Train ``policy`` on ``prompts`` (``records.Prompt`` dumps) with TRL's GRPO or RLOO trainer (by
    ``cfg.kind``); save the policy to ``out_dir/model``. ``scorers``: built scorers for ``cfg.rewards`` (tests)."""
    from autoalign.train.common import train_and_save

    trainer, tokenizer = online_trainer(cfg, policy, prompts, out_dir, seed, scorers)
    trained = train_and_save(trainer, tokenizer, Path(out_dir))
    return online_metrics(cfg, trainer, trained, prompts)
