"""Supervised fine-tuning through TRL's SFTTrainer, loss on the assistant turn only.

Each example's ``weight`` (``SFTExample.weight``) reaches the loss: when some weight differs from 1, a thin
SFTTrainer subclass (``autoalign.train.trainers.WeightedSFTTrainer``, loss ``losses.weighted_sft_loss``) trains
instead; with every weight 1 (all shipped signals today) the trainer is TRL's own, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from autoalign.train.phase import PhaseConfig


class SFTPhase(PhaseConfig):
    """``kind: sft``: imitate the round's SFT examples (TRL ``messages``). ``use_weights``: weight each example's
    loss by its ``weight`` (only matters when some weight is not 1)."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "sft"
    kind: Literal["sft"] = "sft"
    learning_rate: float = Field(5e-4, gt=0)
    use_weights: bool = True
    # Per-phase data (LAB's multi-phase tuning, Sudalairaj et al. 2024, sec. 3.2): left out of the dump when unset,
    # so the train stage's key of a recipe without them is what it was.
    data: str | None = Field(None, min_length=1, exclude_if=lambda v: v is None, description=(
        "train only on the rows of this data slice (an SFT example's ``subset``, e.g. ``knowledge`` selects "
        "``knowledge`` and ``knowledge/...``); null: every row"))
    replay: float = Field(0.0, ge=0.0, le=1.0, exclude_if=lambda v: v == 0.0, description=(
        "add this fraction of the rows the earlier phases (of the same dataset) selected, drawn with the round's "
        "seed: LAB's replay of the knowledge data while tuning skills"))


def run(cfg: SFTPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    weighted = cfg.use_weights and any(float(r.get("weight", 1.0)) != 1.0 for r in rows)
    return train_sft(policy, rows, out_dir, seed=seed, weighted=weighted, **cfg.schedule())


def to_prompt_completion(rows: list[dict], weighted: bool = False) -> list[dict]:
    """``{"messages": [...]}`` -> conversational prompt/completion, so TRL masks the prompt out of the loss; with
    ``weighted``, each row keeps its ``weight`` (default 1)."""
    out = []
    for r in rows:
        msgs = r["messages"]
        if not msgs or msgs[-1]["role"] != "assistant":
            raise ValueError("an SFT example must end with an assistant message")
        row = {"prompt": msgs[:-1], "completion": [msgs[-1]]}
        if weighted:
            row["weight"] = float(r.get("weight", 1.0))
        out.append(row)
    return out


def train_sft(
    model_path: str | Path,
    rows: list[dict],
    out_dir: str | Path,
    *,
    seed: int = 0,
    epochs: float = 2.0,
    learning_rate: float = 5e-4,
    batch_size: int = 16,
    grad_accum: int = 1,
    max_length: int = 256,
    max_steps: int | None = None,
    lora: dict | None = None,
    weighted: bool = False,
) -> dict:
    """Fine-tune on TRL ``messages`` rows; save the policy to ``out_dir/model``. Returns training metrics.
    ``weighted``: scale each example's loss by its ``weight`` column (``WeightedSFTTrainer``)."""
    from trl import SFTConfig, SFTTrainer

    from autoalign.train.common import common_args, load_policy, peft_config, to_dataset, train_and_save

    trainer_cls = SFTTrainer
    if weighted:
        from autoalign.train.trainers import WeightedSFTTrainer

        trainer_cls = WeightedSFTTrainer
    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    args = SFTConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        packing=False,
        completion_only_loss=True,
    )
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=to_dataset(to_prompt_completion(rows, weighted), out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(lora),
    )
    return {**train_and_save(trainer, tokenizer, out_dir), "examples": len(rows), "weighted": weighted}
