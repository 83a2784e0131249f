"""Odds Ratio Preference Optimisation (Hong et al. 2024): SFT on the chosen response plus a log-odds-ratio penalty
on the rejected one, with no reference model, through TRL's ORPOTrainer. TRL 1.16 ships it under
``trl.experimental.orpo`` (an API TRL may change without deprecation), on ``prompt/chosen/rejected`` rows.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from autoalign.train.phase import PhaseConfig


class ORPOPhase(PhaseConfig):
    """``kind: orpo``: TRL's ORPOTrainer. ``beta``: the weight lambda of the odds-ratio term (TRL's ``beta``)."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "preferences"
    kind: Literal["orpo"] = "orpo"
    learning_rate: float = Field(1e-4, gt=0)
    beta: float = Field(0.1, gt=0)


def run(cfg: ORPOPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_orpo(policy, rows, out_dir, seed=seed, beta=cfg.beta, **cfg.schedule())


def train_orpo(
    model_path: str | Path,
    rows: list[dict],
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
    lora: dict | None = None,
) -> dict:
    """Train on conversational ``prompt/chosen/rejected`` rows; save the policy to ``out_dir/model``."""
    with warnings.catch_warnings():  # the "experimental API" notice, once per import: said in this module's doc
        warnings.simplefilter("ignore")
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    from autoalign.train.common import common_args, load_policy, peft_config, to_dataset, train_and_save

    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    args = ORPOConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        beta=beta,
        remove_unused_columns=False,  # ORPO's collator needs the raw columns (TRL sets it, with a warning, if not)
    )
    trainer = ORPOTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows],
                                 out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(lora),
    )
    return {**train_and_save(trainer, tokenizer, out_dir), "pairs": len(rows)}
