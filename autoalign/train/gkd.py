"""On-policy distillation: Generalized Knowledge Distillation (GKD; Agarwal et al. 2024, "On-Policy Distillation
of Language Models: Learning from Self-Generated Mistakes") through TRL's ``trl.experimental.gkd.GKDTrainer`` (an API TRL may change without deprecation).

Why on-policy: a student fine-tuned only on the teacher's answers (distilled SFT) is trained on sequences it would
not produce itself, so at generation time it drifts into prefixes it never learned from (train/inference
mismatch). GKD also trains on the student's *own* samples, each token graded by the teacher's full next-token
distribution, so the student learns how the teacher would continue from the student's mistakes.

What is on-policy (TRL's ``GKDTrainer.training_step``): at every optimizer step, with probability ``lmbda`` (the
draw is Python's ``random``, seeded by the trainer's seed = the recipe's), the batch's completions are replaced by
the student's own samples (``temperature``, up to ``max_new_tokens``) generated from the batch's prompts; otherwise
the batch keeps the rows' assistant turns (here: the teacher's answers written by a signal such as
``distill_sft``: the off-policy, supervised-KD part), or, with ``seq_kd``, fresh samples of the teacher.

Where the loss is computed: ``GKDTrainer.compute_loss`` runs the student and the teacher (frozen, no grad) on the
same tokens and calls ``GKDTrainer.generalized_jsd_loss``: the generalized Jensen-Shannon divergence of Agarwal et
al. eq. (1) per completion token, averaged over the completion tokens (prompt tokens are masked out). ``beta``
interpolates it: 0 = forward KL(teacher || student), 1 = reverse KL(student || teacher).

The teacher is named by URI (default ``lab:teacher``) and loaded by the run's model loader
(``autoalign.methods.MODEL_LOADER``, as the GRPO judge reward's model is); it must be a local causal LM (``hf:``
or ``lab:``) with the policy's vocabulary (TRL checks the sizes; the lab models share one tokenizer).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from autoalign.train.phase import PhaseConfig

LOCAL_SCHEMES = ("hf", "lab")  # GKD reads the teacher's logits: a model in this process, not an API


class GKDPhase(PhaseConfig):
    """``kind: gkd``: distil a teacher into the policy on the prompts of the round's SFT rows (their assistant
    turns are the off-policy targets), with TRL's GKDTrainer."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "sft"
    kind: Literal["gkd"] = "gkd"
    learning_rate: float = Field(1e-4, gt=0)
    teacher: str = Field("lab:teacher", description="the teacher model's URI (hf:DIR or lab:NAME): a local causal "
                         "LM sharing the policy's vocabulary, loaded by the run's model loader")
    lmbda: float = Field(0.5, ge=0.0, le=1.0, description="the share of steps trained on the student's own "
                         "samples (on-policy); the rest train on the rows' answers (or the teacher's, seq_kd)")
    beta: float = Field(0.5, ge=0.0, le=1.0, description="the generalized JSD's interpolation (Agarwal et al. "
                        "eq. 1): 0 = forward KL(teacher||student), 1 = reverse KL(student||teacher)")
    temperature: float = Field(0.9, gt=0.0, description="sampling temperature of the on-policy (and seq_kd) "
                               "generations")
    max_new_tokens: int = Field(64, ge=1, description="tokens generated per on-policy (or seq_kd) completion")
    seq_kd: bool = Field(False, description="off-policy steps train on fresh teacher samples (sequence-level KD) "
                         "instead of the rows' answers")

    @field_validator("teacher")
    @classmethod
    def _local_teacher(cls, v: str) -> str:
        # the URI's form only: the registry (which knows the lab's names) is the run's loader's, reached when the
        # phase runs, as the GRPO judge's model is (train imports no model provider: import contract)
        scheme, sep, rest = v.partition(":")
        if not sep or scheme not in LOCAL_SCHEMES or not rest:
            raise ValueError("GKD reads the teacher's logits: give a local model (hf:DIR or lab:NAME)")
        if scheme == "hf" and not Path(rest).expanduser().is_dir():
            raise ValueError(f"{Path(rest).expanduser()} is not a directory")
        return v


def gkd_rows(rows: list[dict]) -> list[dict]:
    """The round's SFT rows -> GKD rows (``messages`` only: TRL's ChatML collator takes the prompt from all but the
    last message and masks it out; other columns would reach the collator, as GKD keeps unused columns).
    ValueError when a row does not end with an assistant answer."""
    out = []
    for r in rows:
        msgs = r["messages"]
        if len(msgs) < 2 or msgs[-1]["role"] != "assistant":
            raise ValueError("a GKD row must be a prompt followed by an assistant answer")
        out.append({"messages": [{"role": m["role"], "content": m["content"]} for m in msgs]})
    return out


def load_teacher(uri: str) -> Any:
    """The teacher's Hugging Face model, through the run's model loader (``methods.MODEL_LOADER``)."""
    from autoalign.methods import MODEL_LOADER, resolve

    lm = resolve(MODEL_LOADER)(uri)
    model = getattr(lm, "model", None)
    if model is None:  # an LM without weights in this process (the validator keeps these out of recipes)
        raise ValueError(f"gkd teacher {uri}: not a local Hugging Face model")
    return model


def run(cfg: GKDPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    """Train ``policy`` with GKD on ``rows`` (TRL ``messages``); save it to ``out_dir/model``."""
    with warnings.catch_warnings():  # TRL's "experimental API" notice: said in this module's docstring
        warnings.simplefilter("ignore")
        from trl.experimental.gkd import GKDConfig, GKDTrainer

    from autoalign.train.common import common_args, load_policy, peft_config, to_dataset, train_and_save

    out_dir = Path(out_dir)
    model, tokenizer = load_policy(policy)
    args = GKDConfig(
        **common_args(out_dir / "trainer", seed, cfg.epochs, cfg.learning_rate, cfg.batch_size, cfg.grad_accum,
                      cfg.max_steps),
        max_length=cfg.max_length,
        lmbda=cfg.lmbda,  # P(a step trains on the student's own samples): the on-policy share
        beta=cfg.beta,  # Agarwal et al. 2024, eq. (1): D_JSD(beta)(P||Q) = beta KL(P||M) + (1-beta) KL(Q||M), M = beta P + (1-beta) Q
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        seq_kd=cfg.seq_kd,
    )
    trainer = GKDTrainer(
        model=model,
        teacher_model=load_teacher(cfg.teacher),
        args=args,
        train_dataset=to_dataset(gkd_rows(rows), out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(cfg.lora.model_dump() if cfg.lora else None),
    )
    return {**train_and_save(trainer, tokenizer, out_dir), "examples": len(rows), "teacher": cfg.teacher,
            "lmbda": cfg.lmbda, "beta": cfg.beta, "seq_kd": cfg.seq_kd}
