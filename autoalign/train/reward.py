"""A Bradley-Terry reward model through TRL's RewardTrainer (Ouyang et al. 2022, eq. 1:
loss = -log sigma(r(x, y_w) - r(x, y_l))), initialised from a causal LM directory with a fresh scalar head.

Saved as a plain Hugging Face sequence-classification directory (safetensors, ``num_labels=1``), usable outside
autoalign; ``autoalign.signals.model_feedback.reward_model.RewardModel`` scores with it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer
from trl import RewardConfig, RewardTrainer

from autoalign.store import write_json
from autoalign.train.common import common_args, peft_config, quiet, save_policy, to_dataset


def train_reward_model(
    model_path: str | Path,
    rows: list[dict],
    out_dir: str | Path,
    *,
    eval_rows: list[dict] | None = None,
    seed: int = 0,
    epochs: float = 2.0,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    grad_accum: int = 1,
    max_length: int = 256,
    center_rewards: float | None = 0.01,
    margin: bool = False,
    lora: dict | None = None,
) -> dict:
    """Train on preference rows (TRL's ``prompt/chosen/rejected``, conversational or plain). With ``margin``, the
    rows' ``margin`` column is Llama 2's margin (Touvron et al. 2023, eq. 2); without, the column is dropped (rows
    from ``records.preference_rows`` always carry one). The model is saved to ``out_dir/model``; the returned
    metrics include the pairwise accuracy on ``eval_rows`` when given.

    ``center_rewards``: the auxiliary loss keeping rewards near zero (Eisenstein et al. 2023, eq. 2), so scores
    from different runs are on one scale."""
    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    args = RewardConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum),
        max_length=max_length,
        activation_checkpointing=False,  # (TRL defaults it on) small models: recomputation costs more than it saves
        center_rewards_coefficient=center_rewards,
        model_init_kwargs={"dtype": dtype},
        eval_strategy="no",
    )
    lora_cfg = peft_config(lora)
    if lora_cfg is not None:
        lora_cfg.task_type = "SEQ_CLS"
        lora_cfg.modules_to_save = ["score"]  # the fresh reward head must train in full
    if not margin:
        rows = [{k: v for k, v in r.items() if k != "margin"} for r in rows]
        eval_rows = [{k: v for k, v in r.items() if k != "margin"} for r in eval_rows] if eval_rows else eval_rows
    trainer = RewardTrainer(
        model=str(model_path),
        args=args,
        train_dataset=to_dataset(rows, out_dir / "data"),
        processing_class=tokenizer,
        peft_config=lora_cfg,
    )
    result = quiet(trainer).train()
    metrics: dict = {"train_loss": float(result.training_loss), "steps": int(result.global_step), "pairs": len(rows)}
    if eval_rows:
        ev = trainer.evaluate(to_dataset(eval_rows, out_dir / "eval_data"))
        metrics.update({"eval_pairs": len(eval_rows), "eval_loss": float(ev.get("eval_loss", float("nan"))),
                        "eval_accuracy": float(ev.get("eval_accuracy", float("nan")))})
    path = save_policy(trainer.model, tokenizer, out_dir / "model")
    write_json(out_dir / "reward_metrics.json", metrics)
    metrics["model_dir"] = str(path)
    return metrics
