"""Direct Preference Optimisation (Rafailov et al. 2023, eq. 7) and TRL's other pairwise losses (``loss_type``:
IPO, hinge, robust, BCO, APO, ... ) through TRL's DPOTrainer.

The reference log-probs are precomputed once before training (``precompute_ref_log_probs``), so the frozen
reference model is not run at every step; with LoRA the reference is the adapter-free base, no copy is held.

``margin: offset`` makes each pair's ``margin`` (``Preference.margin``) an ODPO offset (Amini et al. 2024):
TRL 1.16 has no per-pair offset, so it is folded into the precomputed reference log-probs
(``losses.offset_reference_logps``), which turns TRL's sigmoid loss into ODPO exactly. Off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from autoalign.train.phase import PhaseConfig

DPOLoss = Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]


class DPOPhase(PhaseConfig):
    """``kind: dpo``: TRL's DPOTrainer on the round's preference pairs. ``loss_type``: one of TRL's losses, or a
    list of them combined with ``loss_weights`` (e.g. MPO). ``margin``: ``ignore`` (DPO) or ``offset`` (ODPO, the
    pair's margin times ``margin_scale`` as the offset; sigmoid loss only)."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "preferences"
    kind: Literal["dpo"] = "dpo"
    learning_rate: float = Field(1e-4, gt=0)
    beta: float = Field(0.1, gt=0)  # DPO's beta: the KL penalty's strength (larger: stay nearer the reference)
    loss_type: DPOLoss | list[DPOLoss] = "sigmoid"
    loss_weights: list[float] | None = None  # one weight per entry of a list ``loss_type``
    margin: Literal["ignore", "offset"] = "ignore"
    margin_scale: float = Field(1.0, ge=0)  # with ``margin: offset``: the pair's margin times this is ODPO's offset

    @model_validator(mode="after")
    def _consistent(self) -> DPOPhase:
        losses = [self.loss_type] if isinstance(self.loss_type, str) else self.loss_type
        if self.loss_weights is not None and len(self.loss_weights) != len(losses):
            raise ValueError(f"loss_weights: {len(self.loss_weights)} weights for {len(losses)} loss types")
        if self.margin == "offset" and losses != ["sigmoid"]:
            raise ValueError("margin: offset (ODPO) needs loss_type: sigmoid")
        return self


def run(cfg: DPOPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_dpo(policy, rows, out_dir, seed=seed, beta=cfg.beta, loss_type=cfg.loss_type,
                     loss_weights=cfg.loss_weights, margin_offset=cfg.margin_scale if cfg.margin == "offset" else None,
                     **cfg.schedule())


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
    max_steps: int | None = None,
    beta: float = 0.1,
    loss_type: str | Sequence[str] = "sigmoid",
    loss_weights: list[float] | None = None,
    margin_offset: float | None = None,
    lora: dict | None = None,
) -> dict:
    """Train on conversational ``prompt/chosen/rejected`` rows; save the policy to ``out_dir/model``.
    ``margin_offset``: alpha of ODPO's offset alpha * margin (rows need a ``margin``); None: plain DPO."""
    from trl import DPOConfig, DPOTrainer

    from autoalign.train.common import common_args, load_policy, no_tqdm, peft_config, to_dataset, train_and_save

    out_dir = Path(out_dir)
    keep = ("prompt", "chosen", "rejected") + (("margin",) if margin_offset is not None else ())
    if margin_offset is not None and any("margin" not in r for r in rows):
        raise ValueError("margin: offset needs a margin on every preference row")
    model, tokenizer = load_policy(model_path)
    args = DPOConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        beta=beta,
        loss_type=[loss_type] if isinstance(loss_type, str) else list(loss_type),
        loss_weights=loss_weights,
        precompute_ref_log_probs=True,
    )
    with no_tqdm():  # the reference pass TRL runs while the trainer is built draws a bar
        trainer = DPOTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=to_dataset([{k: r[k] for k in keep} for r in rows], out_dir / "data"),
            processing_class=tokenizer,
            peft_config=peft_config(lora),
        )
    if margin_offset is not None:
        trainer.train_dataset = _offset_references(trainer.train_dataset, margin_offset, beta)
    return {**train_and_save(trainer, tokenizer, out_dir), "pairs": len(rows), "margin_offset": margin_offset}


def _offset_references(dataset, scale: float, beta: float):
    """The precomputed ``ref_chosen_logps`` shifted by each pair's ODPO offset / beta (in memory: every rank
    holds its own copy, no shared cache file to race on)."""
    import torch

    from autoalign.train.losses import odpo_offset, offset_reference_logps

    def shift(batch: dict) -> dict:
        offset = odpo_offset(torch.tensor(batch["margin"], dtype=torch.float32), scale)
        ref = torch.tensor(batch["ref_chosen_logps"], dtype=torch.float32)
        return {"ref_chosen_logps": offset_reference_logps(ref, offset, beta).tolist()}

    return dataset.map(shift, batched=True, keep_in_memory=True)
