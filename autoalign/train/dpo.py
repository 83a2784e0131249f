"""Direct Preference Optimisation (Rafailov et al. 2023, eq. 7) through TRL's DPOTrainer.

The reference log-probs are precomputed once before training (``precompute_ref_log_probs``), so the frozen
reference model is not run at every step; with LoRA the reference is the adapter-free base, no copy is held.
"""

from __future__ import annotations

from pathlib import Path

from trl import DPOConfig, DPOTrainer

from autoalign.train.common import common_args, load_policy, peft_config, save_policy, to_dataset


def train_dpo(
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
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    lora: dict | None = None,
) -> dict:
    """Train on conversational ``prompt/chosen/rejected`` rows; save the policy to ``out_dir/model``."""
    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    args = DPOConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum),
        max_length=max_length,
        beta=beta,
        loss_type=[loss_type],
        precompute_ref_log_probs=True,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=to_dataset(rows, out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(lora),
    )
    result = trainer.train()
    save_policy(trainer.model, tokenizer, out_dir / "model")
    return {"train_loss": float(result.training_loss), "steps": int(result.global_step), "pairs": len(rows)}
