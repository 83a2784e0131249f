"""The weak-to-strong trainer: TRL's SFTTrainer with ``compute_loss`` replaced by the confidence loss
(``losses.confidence_loss``, Burns et al. 2023, eq. 1) on the two answer tokens' log-odds. Imported only when a
``w2s`` phase runs."""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer

from autoalign.train.losses import confidence_alpha, confidence_loss
from autoalign.train.trainers import KeepColumn


def answer_logodds(logits: torch.Tensor, labels: torch.Tensor, choice_ids: tuple[int, int]) -> torch.Tensor:
    """z(x) = logit(Yes) - logit(No) at the position that predicts each row's first completion token.
    ``logits``: (B, T, V); ``labels``: (B, T), -100 outside the completion. Returns (B,)."""
    active = labels != -100
    first = active.float().argmax(dim=1)  # index of the first completion token of each row
    pos = (first - 1).clamp(min=0)  # token t is predicted at position t - 1
    rows = torch.arange(logits.shape[0], device=logits.device)
    at = logits[rows, pos].float()  # (B, V)
    return at[:, choice_ids[0]] - at[:, choice_ids[1]]


class ConfidenceTrainer(SFTTrainer):
    """SFTTrainer whose loss is the confidence loss of the Yes/No classifier; the ``weak`` column (soft labels)
    reaches the batch through ``KeepColumn``. alpha warms up over the first ``warmup`` share of the steps."""

    def __init__(self, *args: Any, choice_ids: tuple[int, int], alpha: float, warmup: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = KeepColumn(self.data_collator, "weak")
        self.choice_ids, self.alpha, self.warmup = choice_ids, alpha, warmup

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns: list[str] = list(self._signature_columns or [])
        if "weak" not in columns:  # keep the column through Trainer's remove_unused_columns
            self._signature_columns = [*columns, "weak"]  # type: ignore[assignment]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weak = inputs.pop("weak")
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False)
        labels = inputs["labels"]
        kept = (labels != -100).any(dim=1)  # a row truncated before its answer (max_length) has nothing to learn
        z = answer_logodds(outputs.logits, labels, self.choice_ids)[kept]
        alpha = confidence_alpha(self.state.global_step, self.state.max_steps, self.alpha, self.warmup)
        loss = confidence_loss(z, weak.to(z.device)[kept], alpha) if bool(kept.any()) else outputs.logits.sum() * 0.0
        return (loss, outputs) if return_outputs else loss
