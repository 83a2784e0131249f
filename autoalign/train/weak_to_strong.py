"""Weak-to-strong fine-tuning (Burns et al. 2023): the policy, as a binary classifier read from its own answer
tokens, learns a weak supervisor's soft labels with the auxiliary confidence loss (``losses.confidence_loss``).

The classifier is the one a logprob judge reads (``signals.model_feedback.judges``, ``yes_no`` format): after the
judge prompt, f(x) = P(Yes) / (P(Yes) + P(No)), whose log-odds z(x) is the logit of ``Yes`` minus the logit of
``No`` at the answer position. So the trained student is scored exactly as any judge is, and evaluation
(``autoalign.evaluate.weak_to_strong``) measures it with the judge code.

Rows are the round's SFT rows as the ``weak_to_strong`` signal writes them: a judge prompt, an assistant answer
``Yes`` or ``No`` (the weak label, hardened) and ``weight`` = the weak supervisor's confidence in that answer
(P_w of it, >= 0.5). The soft label is recovered losslessly: f_w = weight for ``Yes``, 1 - weight for ``No``.
The trainer is TRL's SFTTrainer with ``compute_loss`` replaced (``ConfidenceTrainer``, in ``trainers_w2s``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from autoalign.train.phase import PhaseConfig

POSITIVE, NEGATIVE = "Yes", "No"


class WeakToStrongPhase(PhaseConfig):
    """``kind: w2s``: fit the weak labels of the round's Yes/No rows with the confidence loss. ``alpha``: its
    weight alpha_max (Burns et al. use 0.5, and 0.75 for their largest students; 0 = naive fine-tuning on the soft
    weak labels); ``warmup``: the share of training over which alpha rises linearly from 0."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "sft"
    kind: Literal["w2s"] = "w2s"
    learning_rate: float = Field(1e-4, gt=0)
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    warmup: float = Field(0.2, ge=0.0, le=1.0)


def soft_label(row: dict) -> float:
    """f_w(x) = P_w(Yes) of one row (see the module docstring); ValueError when the answer is not Yes/No."""
    msgs = row["messages"]
    answer = msgs[-1]["content"].strip() if msgs and msgs[-1]["role"] == "assistant" else ""
    if answer not in (POSITIVE, NEGATIVE):
        raise ValueError(f"a w2s row must end with an assistant answer {POSITIVE!r} or {NEGATIVE!r}, not {answer!r}")
    w = min(1.0, max(0.0, float(row.get("weight", 1.0))))
    return w if answer == POSITIVE else 1.0 - w


def classifier_rows(rows: list[dict]) -> list[dict]:
    """TRL prompt/completion rows with a ``weak`` column (the soft label)."""
    out = []
    for r in rows:
        weak = soft_label(r)
        out.append({"prompt": r["messages"][:-1], "completion": [r["messages"][-1]], "weak": weak})
    return out


def run(cfg: WeakToStrongPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    return train_w2s(policy, rows, out_dir, seed=seed, alpha=cfg.alpha, warmup=cfg.warmup, **cfg.schedule())


def train_w2s(
    model_path: str | Path,
    rows: list[dict],
    out_dir: str | Path,
    *,
    seed: int = 0,
    alpha: float = 0.5,
    warmup: float = 0.2,
    epochs: float = 2.0,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    grad_accum: int = 1,
    max_length: int = 256,
    max_steps: int | None = None,
    lora: dict | None = None,
) -> dict:
    """Fine-tune the classifier of the module docstring on ``rows``; save to ``out_dir/model``. Also used by
    evaluation for the ceiling (oracle labels, weight 1) and the naive student (``alpha=0``)."""
    from trl import SFTConfig

    from autoalign.train.common import common_args, load_policy, peft_config, to_dataset, train_and_save
    from autoalign.train.trainers_w2s import ConfidenceTrainer

    out_dir = Path(out_dir)
    model, tokenizer = load_policy(model_path)
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in (POSITIVE, NEGATIVE)]
    if any(len(x) != 1 for x in ids):
        raise ValueError(f"w2s needs {POSITIVE!r} and {NEGATIVE!r} to be single tokens of the policy's tokenizer")
    args = SFTConfig(
        **common_args(out_dir / "trainer", seed, epochs, learning_rate, batch_size, grad_accum, max_steps),
        max_length=max_length,
        packing=False,
        completion_only_loss=True,
    )
    trainer = ConfidenceTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(classifier_rows(rows), out_dir / "data"),
        processing_class=tokenizer,
        peft_config=peft_config(lora),
        choice_ids=(ids[0][0], ids[1][0]),
        alpha=alpha,
        warmup=warmup,
    )
    return {**train_and_save(trainer, tokenizer, out_dir), "examples": len(rows), "alpha": alpha}
