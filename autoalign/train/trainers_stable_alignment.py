"""The Stable Alignment trainer: TRL's DPOTrainer with ``compute_loss`` replaced by Stable Alignment's objective
(``losses.stable_alignment_loss``, Liu et al. 2024, sec. 3.2) on each (best-rated, lower-rated) pair, the pair's
rating gap arriving as the ``margin`` column. DPOTrainer is the nearest TRL trainer: it already tokenizes
conversational prompt/chosen/rejected rows and runs chosen and rejected in one forward pass. Imported only when a
``stable_alignment`` phase runs."""

from __future__ import annotations

from typing import Any

from trl import DPOTrainer

from autoalign.train.losses import mean_token_nll, stable_alignment_loss
from autoalign.train.trainers import KeepColumn


class StableAlignmentTrainer(DPOTrainer):
    """DPOTrainer whose loss is L_SFT + lambda * L_Diff; no reference model enters the loss (Stable Alignment has
    none), so the reference log-probs TRL computes are unused."""

    def __init__(self, *args: Any, margin: float, lam: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = KeepColumn(self.data_collator, "margin")
        self.sa_margin, self.sa_lambda = margin, lam

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns: list[str] = list(self._signature_columns or [])
        if "margin" not in columns:  # keep the rating gap through Trainer's remove_unused_columns
            self._signature_columns = [*columns, "margin"]  # type: ignore[assignment]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        gap = inputs.pop("margin")
        completion_mask = inputs["completion_mask"]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels,
                        use_cache=False, fused_lm_head=True)  # per-token log-probs, as TRL's own DPO path
        shift_mask = completion_mask[..., 1:]
        token_logps = outputs.log_probs[:, -shift_mask.size(1):]
        nll = mean_token_nll(token_logps, shift_mask)
        best_nll, low_nll = nll.chunk(2, dim=0)  # the batch is [chosen, rejected]
        loss = stable_alignment_loss(best_nll, low_nll, gap.to(nll.device), self.sa_margin, self.sa_lambda)
        return (loss, outputs) if return_outputs else loss
