"""PPO-ptx as InstructGPT defines it (Ouyang et al. 2022, sec. 3.5, eq. 2): the RL objective plus gamma times the
policy's log-likelihood on pretraining text, so that RL on a reward does not cost the model what pretraining
taught it (the "alignment tax").

TRL 1.16 has no PPOTrainer. This phase is the thinnest subclass of TRL's ``GRPOTrainer``: GRPO's loss *is* PPO's
clipped surrogate (ratio clipping with ``epsilon``, a KL to the reference weighted by ``beta``), with the group's
reward statistics in place of a learned value function, which TRL no longer ships. The subclass overrides
``compute_loss`` only: TRL's loss, plus ``losses.ptx_loss`` on the next batch of pretraining-like text (scaled for
gradient accumulation as TRL scales its own loss). Everything else (generation, rewards, the reward log) is the
``grpo`` phase's.

The pretraining-like text (``ptx``) is named by ``source`` in ``autoalign.methods.PTX_SOURCES``: ``lab`` draws
documents and transcripts from the lab corpus generator (the lab policy's pretraining distribution, good and bad
behaviour mixed as it was pretrained); ``file`` reads a user's JSONL of ``{"text": ...}`` rows.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from autoalign.train.grpo import GRPOPhase, online_metrics, online_trainer


class PtxData(BaseModel):
    """The pretraining batch: ``count`` texts from ``source`` (``path`` for ``file``), ``batch_size`` of them per
    micro-batch, each cut to ``max_length`` tokens."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["lab", "file"] = "lab"  # ``lab``: the lab corpus's documents; ``file``: a JSONL of texts
    path: str | None = None  # the JSONL of ``{"text": ...}`` rows, for the ``file`` source
    count: int = Field(256, ge=1)  # texts drawn (seeded)
    batch_size: int = Field(4, ge=1)  # texts per pretraining micro-batch
    max_length: int = Field(128, ge=8)

    @model_validator(mode="after")
    def _path(self) -> PtxData:
        if self.source == "file" and not self.path:
            raise ValueError("path: the file source needs a JSONL of {\"text\": ...} rows")
        if self.source != "file" and self.path is not None:
            raise ValueError(f"path: the {self.source} source takes no path")
        return self


class PPOPtxPhase(GRPOPhase):
    """``kind: ppo_ptx``: the ``grpo`` phase's knobs, plus ``gamma`` (the pretraining-mix coefficient of eq. 2)
    and ``ptx`` (the pretraining-like text). ``loss_type: grpo`` is PPO's per-sequence mean of token losses."""

    kind: Literal["ppo_ptx"] = "ppo_ptx"  # type: ignore[assignment]
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "grpo"
    gamma: float = Field(0.5, ge=0, allow_inf_nan=False)  # the pretraining log-likelihood's coefficient (Ouyang et al. 2022, eq. 2)
    ptx: PtxData = Field(default_factory=PtxData)  # the pretraining-like text mixed in


def file_texts(count: int, seed: int = 0, path: str | None = None) -> list[str]:
    """Up to ``count`` texts of a JSONL file of ``{"text": ...}`` rows, drawn with ``seed``; a row without a text
    or a file without rows is one line naming the file."""
    from autoalign.errors import UserError

    if not path or not Path(path).is_file():
        raise UserError(f"ptx.path: file not found: {path}")
    texts = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"ptx file {path}: line {n}: not JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise UserError(f"ptx file {path}: line {n}: expected {{\"text\": \"...\"}}")
        texts.append(row["text"])
    if not texts:
        raise UserError(f"ptx file {path}: no texts")
    return random.Random(seed).sample(texts, min(count, len(texts)))


def ptx_texts(cfg: PtxData, seed: int) -> list[str]:
    from autoalign.methods import PTX_SOURCES, resolve

    return resolve(PTX_SOURCES[cfg.source])(cfg.count, seed, cfg.path)


def ptx_batches(texts: list[str], tokenizer: Any, batch_size: int, max_length: int, seed: int) -> Iterator[dict]:
    """Endless micro-batches of the texts, reshuffled each pass (seeded): ``input_ids`` and ``attention_mask``,
    (B, T), right-padded (positions start at 0 for every text)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rng = random.Random(seed)
    order = list(range(len(texts)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            ids = [tokenizer(texts[i], truncation=True, max_length=max_length)["input_ids"]
                   for i in order[start:start + batch_size]]
            width = max(len(x) for x in ids)
            yield {"input_ids": torch.tensor([x + [pad] * (width - len(x)) for x in ids]),
                   "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])}


def token_logps(model: Any, batch: dict) -> tuple[Any, Any]:
    """(log pi(x_t | x_<t), mask), both (B, T-1): each next token's log-probability under ``model``."""
    import torch

    device = next(model.parameters()).device
    ids, attn = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    logps = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logps, attn[:, 1:]


def ptx_trainer_class() -> type:
    """``GRPOTrainer`` with eq. 2's pretraining term added to its loss (built on demand: TRL loads when run)."""
    from trl import GRPOTrainer

    from autoalign.train.losses import ptx_loss

    class PtxGRPOTrainer(GRPOTrainer):
        """TRL's GRPO (PPO-clip) loss + ``ptx_loss`` on the next pretraining micro-batch."""

        def __init__(self, *args: Any, ptx: Iterator[dict], gamma: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.ptx, self.gamma = ptx, gamma

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if self.gamma == 0:
                return loss
            mode = "train" if self.model.training else "eval"
            logps, mask = token_logps(model, next(self.ptx))
            term = ptx_loss(logps, mask, self.gamma)  # Ouyang et al. 2022, eq. 2: - gamma E_pretrain[log pi(x)]
            self._metrics[mode]["ptx/loglik"].append(-term.item() / self.gamma)
            # TRL divides its own loss by the accumulation steps in training (its HF auto-scaling is off)
            normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            return loss + term / normalizer

    return PtxGRPOTrainer


def run(cfg: PPOPtxPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int,
        scorers: list[Any] | None = None) -> dict:
    """Train ``policy`` on the round's prompts with PPO-ptx; save it to ``out_dir/model``. Metrics: the ``grpo``
    phase's, plus ``ptx_texts`` and ``ptx_log`` (the pretraining log-likelihood per logged step)."""
    from transformers import AutoTokenizer

    from autoalign.train.common import train_and_save

    out_dir = Path(out_dir)
    texts = ptx_texts(cfg.ptx, seed)
    tokenizer = AutoTokenizer.from_pretrained(str(policy))
    batches = ptx_batches(texts, tokenizer, cfg.ptx.batch_size, cfg.ptx.max_length, seed)
    trainer, tokenizer = online_trainer(cfg, policy, rows, out_dir, seed, scorers, trainer_class=ptx_trainer_class(),
                                        trainer_kwargs={"ptx": batches, "gamma": cfg.gamma})
    trained = train_and_save(trainer, tokenizer, out_dir)
    ptx_log = [{"step": int(h.get("step", i + 1)), "loglik": float(h["ptx/loglik"])}
               for i, h in enumerate(trainer.state.log_history) if h.get("ptx/loglik") is not None]
    return {**online_metrics(cfg, trainer, trained, rows), "gamma": cfg.gamma, "ptx_texts": len(texts),
            "ptx_log": ptx_log}
