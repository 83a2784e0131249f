"""A multi-head 3H reward model through TRL's RewardTrainer: one trunk, one scalar reward head per axis (helpful,
harmless, honest), each preference pair trained on its own axis's head (Ouyang et al. 2022, eq. 1 per head:
``autoalign.train.losses.multihead_bradley_terry_loss``).

Why one trunk and K heads: the three axes disagree on what a good response is (a refusal is harmless and unhelpful),
so one scalar reward has to average them away; K heads keep them apart while every pair, whatever its axis, trains
the shared trunk.

The model is a plain Hugging Face sequence-classification model of the policy's architecture with ``num_labels = K``
(the trunk is the architecture's ``AutoModel``, the heads are the K rows of its ``score`` layer), and its
``config.json`` names the heads (``id2label``): saved with safetensors, loadable anywhere with
``AutoModelForSequenceClassification.from_pretrained(DIR)`` (no ``trust_remote_code``), head k's reward being
``logits[:, k]``. ``autoalign.signals.model_feedback.multihead_rm.MultiHeadRewardModel`` scores with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from autoalign.store import write_json
from autoalign.train.common import common_args, quiet, save_policy, to_dataset
from autoalign.train.losses import multihead_bradley_terry_loss

HEADS: tuple[str, ...] = ("helpful", "harmless", "honest")
ALL = "all"  # the name of the one head of a shared single-head model: every axis's pairs train it


def head_index(heads: Sequence[str], axis: str) -> int:
    """The head a pair of ``axis`` trains: its own, or the one ``all`` head of a single shared head."""
    if list(heads) == [ALL]:
        return 0
    if axis not in heads:
        raise ValueError(f"a pair of axis {axis!r} has no head (heads: {', '.join(heads)})")
    return list(heads).index(axis)


def init_multihead_model(base_path: str | Path, heads: Sequence[str], seed: int, dtype: torch.dtype) -> Any:
    """The trunk of ``base_path`` (a causal-LM directory) with ``len(heads)`` fresh reward heads, named in the
    config's ``id2label``. Seeded: the heads' initialisation is a random choice."""
    set_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(
        str(base_path), num_labels=len(heads), id2label=dict(enumerate(heads)),
        label2id={h: i for i, h in enumerate(heads)}, dtype=dtype, use_safetensors=True)


@dataclass
class AxisPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, plus each pair's head index (``head``), which its loss reads."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().torch_call(examples)
        out["head"] = torch.tensor([int(ex["head"]) for ex in examples], dtype=torch.long)
        return out


class MultiHeadRewardTrainer(RewardTrainer):
    """TRL's RewardTrainer holding a K-head model. Three small overrides, each because TRL assumes one head:

    - ``__init__``: TRL refuses a model with ``num_labels != 1``; the check is passed by showing it one label for
      the time of the constructor (``id2label`` is all ``num_labels`` reads), then the K names are put back;
    - ``_set_signature_columns_if_needed``: keeps the ``head`` column (TRL drops columns it does not know);
    - ``compute_loss``: the Bradley-Terry loss on each pair's own head (``multihead_bradley_terry_loss``), with
      TRL's reward centring (Eisenstein et al. 2023, eq. 2) on that head, and TRL's logged accuracy and margin."""

    def __init__(self, model: Any, *args: Any, **kwargs: Any):
        config = model.config
        id2label, label2id = dict(config.id2label), dict(config.label2id)
        config.id2label, config.label2id = {0: "reward"}, {"reward": 0}
        try:
            super().__init__(model, *args, **kwargs)
        finally:
            config.id2label, config.label2id = id2label, label2id

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "head"]  # type: ignore[assignment]

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        mode = "train" if model.training else "eval"
        head = inputs.pop("head")
        margin = inputs.pop("margin", None)
        inputs["use_cache"] = False
        outputs = model(**inputs)
        r_chosen, r_rejected = torch.chunk(outputs.logits, chunks=2)  # (B, K) each: chosen rows first (TRL's collator)
        loss = multihead_bradley_terry_loss(r_chosen, r_rejected, head, margin)
        idx = head.long().view(-1, 1)
        own_c, own_r = r_chosen.gather(1, idx).squeeze(1), r_rejected.gather(1, idx).squeeze(1)
        centre = getattr(self.args, "center_rewards_coefficient", None)  # a RewardConfig's
        if centre is not None:
            loss = loss + centre * torch.mean((own_c + own_r) ** 2)  # Eisenstein et al. 2023, eq. 2
        with torch.no_grad():
            acc = self.accelerator.gather_for_metrics((own_c > own_r).float().mean()).mean().item()
            gap = self.accelerator.gather_for_metrics((own_c - own_r).mean()).mean().item()
            self._metrics[mode]["accuracy"].append(acc)
            self._metrics[mode]["margin"].append(gap)
        return (loss, outputs) if return_outputs else loss


def train_multihead_reward_model(
    model_path: str | Path,
    rows: list[dict],
    out_dir: str | Path,
    *,
    heads: Sequence[str] = HEADS,
    seed: int = 0,
    epochs: float = 2.0,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    grad_accum: int = 1,
    max_length: int = 256,
    max_steps: int | None = None,
    center_rewards: float | None = 0.01,
) -> dict:
    """Train on preference rows (TRL's ``prompt/chosen/rejected``) that each carry an ``axis``; a pair trains the
    head of its axis (``heads = ("all",)``: one head for every axis). The model starts from the trunk of
    ``model_path`` and is saved to ``out_dir/model``; ``out_dir/reward_metrics.json`` keeps the metrics, which
    count the training pairs per head (``pairs_per_head``)."""
    out_dir = Path(out_dir)
    heads = list(heads)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    data = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
             "head": head_index(heads, r["axis"])} for r in rows]
    args = RewardConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        activation_checkpointing=False,  # small models: recomputation costs more than it saves
        center_rewards_coefficient=center_rewards,
        eval_strategy="no",
    )
    model = init_multihead_model(model_path, heads, seed, dtype)
    trainer = MultiHeadRewardTrainer(
        model,
        args=args,
        train_dataset=to_dataset(data, out_dir / "data"),
        processing_class=tokenizer,
        data_collator=AxisPreferenceCollator(pad_token_id=tokenizer.pad_token_id),
    )
    result = quiet(trainer).train()
    counts = {h: sum(d["head"] == i for d in data) for i, h in enumerate(heads)}
    metrics: dict = {"train_loss": float(result.training_loss), "steps": int(result.global_step), "pairs": len(rows),
                     "heads": heads, "pairs_per_head": counts}
    path = save_policy(trainer.model, tokenizer, out_dir / "model")
    write_json(out_dir / "reward_metrics.json", metrics)
    metrics["model_dir"] = str(path)
    return metrics
