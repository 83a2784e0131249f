"""Supervised fine-tuning through TRL's SFTTrainer, loss on the assistant turn only."""

from __future__ import annotations

from pathlib import Path

from trl import SFTConfig, SFTTrainer

from autoalign.train.common import common_args, load_policy, peft_config, save_policy, to_dataset


def to_prompt_completion(rows: list[dict]) -> list[dict]:
    """``{"messages": [...]}`` -> conversational prompt/completion, so TRL masks the prompt out of the loss."""
    out = []
    for r in rows:
        msgs = r["messages"]
        if not msgs or msgs[-1]["role"] != "assistant":
            raise ValueError("an SFT example must end with an assistant message")
        out.append({"prompt": msgs[:-1], "completion": [msgs[-1]]})
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
    lora: dict | None = None,
) -> dict:
    """Fine-tune on TRL ``messages`` rows; save the policy to ``out_dir/model``. Returns training metrics."""
    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    args = SFTConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum),
        max_length=max_length,
        packing=False,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(to_prompt_completion(rows), out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(lora),
    )
    result = trainer.train()
    save_policy(trainer.model, tokenizer, out_dir / "model")
    return {"train_loss": float(result.training_loss), "steps": int(result.global_step), "examples": len(rows)}
