"""Kahneman-Tversky Optimisation (Ethayarajh et al. 2024) through TRL's KTOTrainer, on unpaired
``prompt/completion/label`` rows derived from the round's preference pairs: the chosen response is desirable
(``label: true``), the rejected one undesirable (``false``).

The unpaired rows are shuffled (seeded): TRL trains KTO in a fixed order and estimates the KL term from each
example's neighbour in the batch, which must not be the same prompt's other response.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from autoalign.train.phase import PhaseConfig


class KTOPhase(PhaseConfig):
    """``kind: kto``: TRL's KTOTrainer. ``desirable_weight`` / ``undesirable_weight``: lambda_D / lambda_U of the
    paper; ``loss_type``: ``kto`` or ``apo_zero_unpaired``."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "preferences"
    kind: Literal["kto"] = "kto"
    learning_rate: float = Field(1e-4, gt=0)
    beta: float = Field(0.1, gt=0)  # KTO's beta: how far the policy may move from the reference
    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"
    desirable_weight: float = Field(1.0, gt=0)
    undesirable_weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _batch_for_kl(self) -> KTOPhase:
        if self.loss_type == "kto" and self.batch_size < 2:
            raise ValueError("batch_size: KTO estimates its KL term within a batch, so it needs at least 2")
        return self


def kto_rows(prefs: list[dict], seed: int) -> list[dict]:
    """TRL's unpaired view of preference rows: ``prompt/completion/label``, two rows a pair, in a seeded order."""
    rows = [{"prompt": p["prompt"], "completion": p[side], "label": side == "chosen"}
            for p in prefs for side in ("chosen", "rejected")]
    random.Random(seed).shuffle(rows)
    return rows


def run(cfg: KTOPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_kto(policy, rows, out_dir, seed=seed, beta=cfg.beta, loss_type=cfg.loss_type,
                     desirable_weight=cfg.desirable_weight, undesirable_weight=cfg.undesirable_weight,
                     **cfg.schedule())


def train_kto(
    model_path: str | Path,
    prefs: list[dict],
    out_dir: str | Path,
    *,
    seed: int = 0,
    epochs: float = 2.0,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    grad_accum: int = 1,
    max_length: int = 256,
    max_steps: int | None = None,
    beta: float = 0.1,
    loss_type: str = "kto",
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    lora: dict | None = None,
) -> dict:
    """Train on preference rows, unpaired (``kto_rows``); save the policy to ``out_dir/model``."""
    from trl import KTOConfig, KTOTrainer

    from autoalign.train.common import common_args, load_policy, peft_config, to_dataset, train_and_save

    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    args = KTOConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        beta=beta,
        loss_type=loss_type,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        precompute_ref_log_probs=True,
    )
    rows = kto_rows(prefs, seed)
    trainer = KTOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=to_dataset(rows, out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(lora),
    )
    return {**train_and_save(trainer, tokenizer, out_dir), "pairs": len(prefs), "examples": len(rows)}
