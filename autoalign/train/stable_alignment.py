"""Stable Alignment (Liu et al. 2024, "Training Socially Aligned Language Models on Simulated Social Interactions"):
imitate the best-rated response of a simulated social interaction and push the lower-rated ones below it by a margin
that grows with their rating gap (``losses.stable_alignment_loss``: L = L_SFT + lambda * L_Diff).

Rows are the round's preference pairs (``records.Preference``) as the ``society`` signal writes them: ``chosen`` the
best-rated response, ``rejected`` a lower-rated one, ``margin`` = r_best - r_low on the unit scale. The trainer is
TRL's DPOTrainer with ``compute_loss`` replaced (``trainers_stable_alignment.StableAlignmentTrainer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from autoalign.train.phase import PhaseConfig


class StableAlignmentPhase(PhaseConfig):
    """``kind: stable_alignment``: Stable Alignment's objective on the round's rated pairs."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "preferences"
    kind: Literal["stable_alignment"] = "stable_alignment"
    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate.")
    margin: float = Field(1.0, ge=0, description="M: nats per token the lower-rated response's loss must exceed "
                                                 "the best one's, per unit of rating gap (the paper's margin).")
    lam: float = Field(0.5, ge=0, description="lambda: the weight of the rating-margin hinge L_Diff against "
                                              "L_SFT (0 = SFT on the best-rated responses alone).")


def run(cfg: StableAlignmentPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_stable_alignment(policy, rows, out_dir, seed=seed, margin=cfg.margin, lam=cfg.lam,
                                  **cfg.schedule())


def train_stable_alignment(
    model_path: str | Path,
    rows: list[dict],
    out_dir: str | Path,
    *,
    seed: int = 0,
    margin: float = 1.0,
    lam: float = 0.5,
    epochs: float = 2.0,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    grad_accum: int = 1,
    max_length: int = 256,
    max_steps: int | None = None,
    lora: dict | None = None,
) -> dict:
    """Train on conversational ``prompt/chosen/rejected/margin`` rows; save the policy to ``out_dir/model``."""
    from trl import DPOConfig

    from autoalign.train.common import common_args, load_policy, no_tqdm, peft_config, to_dataset, train_and_save
    from autoalign.train.trainers_stable_alignment import StableAlignmentTrainer

    if any("margin" not in r for r in rows):
        raise ValueError("stable_alignment needs a margin (the rating gap) on every preference row")
    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    args = DPOConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        # no reference model enters the loss; precomputing (one pass) spares TRL loading a reference copy
        precompute_ref_log_probs=True,
    )
    data = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
             "margin": max(0.0, float(r["margin"]))} for r in rows]
    with no_tqdm():  # TRL draws a bar for the reference pass it runs while it is built
        trainer = StableAlignmentTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=to_dataset(data, out_dir / "data"),
            processing_class=tokenizer,
            peft_config=peft_config(lora),
            margin=margin,
            lam=lam,
        )
    return {**train_and_save(trainer, tokenizer, out_dir), "pairs": len(rows), "margin": margin, "lam": lam,
            "mean_rating_gap": sum(d["margin"] for d in data) / max(1, len(data))}
