"""Thin subclasses of TRL trainers, for what TRL 1.16 lacks; each only routes a dataset column to a loss of
``autoalign.train.losses``. Imported only when a phase needs one (the default paths are TRL's own trainers)."""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer

from autoalign.train.losses import weighted_sft_loss


class KeepColumn:
    """Wrap a TRL collator so one numeric dataset column (``weight``) reaches the batch as a (B,) float tensor;
    TRL's collators drop columns they do not know."""

    def __init__(self, collator: Any, column: str) -> None:
        self.collator, self.column = collator, column

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator([{k: v for k, v in e.items() if k != self.column} for e in examples])
        batch[self.column] = torch.tensor([float(e[self.column]) for e in examples], dtype=torch.float32)
        return batch


class WeightedSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer with a ``weight`` column: each example's token losses are scaled by its weight
    (``losses.weighted_sft_loss``), normalised as TRL normalises (tokens of the optimizer step), so all-ones
    weights train exactly as TRL does. TRL's entropy / token-accuracy metrics are not logged on this path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = KeepColumn(self.data_collator, "weight")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns: list[str] = list(self._signature_columns or [])
        if "weight" not in columns:  # keep the column through Trainer's remove_unused_columns
            self._signature_columns = [*columns, "weight"]  # type: ignore[assignment]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight = inputs.pop("weight")
        outputs = model(**inputs, use_cache=False, fused_lm_head=True)  # per-token log-probs, as TRL's own path
        loss = weighted_sft_loss(outputs.log_probs, outputs.label_mask, weight, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # as TRL: num_items_in_batch counts every rank's tokens, and DDP averages the gradients across ranks
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        return (loss, outputs) if return_outputs else loss
