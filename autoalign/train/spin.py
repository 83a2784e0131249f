"""SPIN's training step (Chen et al. 2024, arXiv 2401.01335): theta_{t+1} minimises L_SPIN against the previous
iterate theta_t on (SFT target, theta_t's own answer) pairs. L_SPIN is the logistic loss
ell(t) = log(1 + exp(-t)) on lam * (target log-ratio - own-answer log-ratio): exactly TRL's DPO ``sigmoid`` loss
with beta = lam and the round's starting policy as the reference (``losses.spin_loss`` restates it; a test checks
the two agree on a hand example), so the phase is TRL's DPOTrainer with those settings.

What it adds to ``kind: dpo``: the figures SPIN's stopping question needs, from TRL's own logged metrics
(``rewards/accuracies``, ``rewards/margins``): how well theta_{t+1} tells the targets from theta_t's answers. When
that accuracy is near chance (``indistinguishable``: at most ``stop_accuracy``), p_theta_t has reached the target
distribution (SPIN's fixed point, Theorem 5.4) and further rounds have nothing to learn; the ``spin`` signal reads
this verdict of the previous round and stops writing pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from autoalign.train.phase import PhaseConfig


class SPINPhase(PhaseConfig):
    """``kind: spin``: ``lam`` is SPIN's lambda (TRL's beta); ``stop_accuracy``: the reward accuracy at or below
    which the round's pairs count as indistinguishable."""

    consumes: ClassVar[Literal["sft", "preferences"]] = "preferences"
    kind: Literal["spin"] = "spin"
    learning_rate: float = Field(1e-4, gt=0)
    lam: float = Field(0.1, gt=0)  # SPIN's lambda (Chen et al. 2024, sec. 4, L_SPIN), passed as TRL's DPO beta
    stop_accuracy: float = Field(0.55, ge=0.0, le=1.0)


def logged_separation(log_history: list[dict]) -> dict:
    """TRL's logged ``rewards/accuracies`` and ``rewards/margins`` over the phase: mean over the logged steps and
    the last value (None when no step logged them)."""
    acc = [float(h["rewards/accuracies"]) for h in log_history if "rewards/accuracies" in h]
    mar = [float(h["rewards/margins"]) for h in log_history if "rewards/margins" in h]
    return {"reward_accuracy": round(sum(acc) / len(acc), 6) if acc else None,
            "reward_accuracy_last": round(acc[-1], 6) if acc else None,
            "reward_margin": round(sum(mar) / len(mar), 6) if mar else None,
            "reward_margin_last": round(mar[-1], 6) if mar else None}


def run(cfg: SPINPhase, policy: str | Path, rows: list[dict], out_dir: Path, seed: int) -> dict:
    from trl import DPOConfig, DPOTrainer

    from autoalign.train.common import common_args, load_policy, no_tqdm, peft_config, to_dataset, train_and_save

    s = cfg.schedule()
    out_dir = Path(out_dir)
    model, tokenizer = load_policy(policy)
    args = DPOConfig(**common_args(out_dir / "trainer", seed, s["epochs"], s["learning_rate"], s["batch_size"],
                                   s["grad_accum"], s["max_steps"]),
                     max_length=s["max_length"], beta=cfg.lam, loss_type=["sigmoid"], precompute_ref_log_probs=True)
    with no_tqdm():  # the reference pass TRL runs while the trainer is built draws a bar
        trainer = DPOTrainer(model=model, ref_model=None, args=args, processing_class=tokenizer,
                             train_dataset=to_dataset([{k: r[k] for k in ("prompt", "chosen", "rejected")}
                                                       for r in rows], out_dir / "data"),
                             peft_config=peft_config(s["lora"]))
    metrics = train_and_save(trainer, tokenizer, out_dir)
    sep = logged_separation(trainer.state.log_history)
    acc = sep["reward_accuracy"]
    return {**metrics, "pairs": len(rows), "lam": cfg.lam, **sep,
            "indistinguishable": None if acc is None else acc <= cfg.stop_accuracy}
