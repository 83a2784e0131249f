"""The training phases a recipe's ``train.phases`` lists, in one visible table: kind -> its config and trainer.

A round's training runs its phases in order (``autoalign.train.run``); each trains the previous phase's output on
the round's dataset its kind ``consumes`` (``sft``: TRL ``messages``; ``preferences``: TRL
``prompt/chosen/rejected``, which KTO unpairs; ``prompts``: the round's prompts, on which online RL generates and
rewards its own completions), and a phase with no data is skipped. A new kind is one module
(a ``PhaseConfig`` subclass with ``kind: Literal[...]`` and a ``run``) and one entry here and in ``Phase``.

Not a policy phase: the Bradley-Terry reward model (``autoalign.train.reward``), which signals train and keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Union

from pydantic import Field, TypeAdapter, ValidationError

from autoalign.train import dpo, grpo, kto, orpo, ppo_ptx, sft, spin
from autoalign.train import weak_to_strong as w2s
from autoalign.train.dpo import DPOLoss, DPOPhase
from autoalign.train.gkd import GKDPhase
from autoalign.train.gkd import run as run_gkd
from autoalign.train.grpo import GRPOPhase, RLOOPhase
from autoalign.train.kto import KTOPhase
from autoalign.train.orpo import ORPOPhase
from autoalign.train.phase import LoraConfig, PhaseConfig, numbered
from autoalign.train.ppo_ptx import PPOPtxPhase
from autoalign.train.sft import SFTPhase
from autoalign.train.spin import SPINPhase
from autoalign.train.stable_alignment import StableAlignmentPhase
from autoalign.train.stable_alignment import run as run_stable_alignment
from autoalign.train.weak_to_strong import WeakToStrongPhase

__all__ = ["PHASES", "Phase", "PhaseKind", "LoraConfig", "PhaseConfig", "SFTPhase", "DPOPhase", "KTOPhase",
           "ORPOPhase", "GRPOPhase", "RLOOPhase", "PPOPtxPhase", "WeakToStrongPhase", "DPOLoss", "default_phases", "parse_phases", "phase_names", "apply_shorthand"]


@dataclass(frozen=True)
class PhaseKind:
    config: type[PhaseConfig]
    run: Callable[[Any, str | Path, list[dict], Path, int], dict]  # (config, policy dir, rows, out dir, seed)


PHASES: dict[str, PhaseKind] = {
    "sft": PhaseKind(SFTPhase, sft.run),    # TRL SFTTrainer; per-example weights (losses.weighted_sft_loss)
    "dpo": PhaseKind(DPOPhase, dpo.run),    # TRL DPOTrainer, any TRL loss_type; opt-in ODPO margin offset
    "kto": PhaseKind(KTOPhase, kto.run),    # TRL KTOTrainer on the pairs unpaired
    "orpo": PhaseKind(ORPOPhase, orpo.run),  # TRL (experimental) ORPOTrainer
    "grpo": PhaseKind(GRPOPhase, grpo.run_grpo),  # TRL GRPOTrainer on the round's prompts, Scorers as rewards
    "rloo": PhaseKind(RLOOPhase, grpo.run_rloo),  # TRL RLOOTrainer, the same rewards
    "ppo_ptx": PhaseKind(PPOPtxPhase, ppo_ptx.run),  # GRPOTrainer + InstructGPT's pretraining-mix term (eq. 2)
    "spin": PhaseKind(SPINPhase, spin.run),  # TRL DPOTrainer, sigmoid loss = SPIN's logistic loss, beta = lambda
    "w2s": PhaseKind(WeakToStrongPhase, w2s.run),  # SFTTrainer + Burns et al.'s confidence loss (eq. 1)
    "gkd": PhaseKind(GKDPhase, run_gkd),  # TRL (experimental) GKDTrainer: on-policy distillation, generalized JSD
    "stable_alignment": PhaseKind(StableAlignmentPhase, run_stable_alignment),  # DPOTrainer, SFT + rating hinge
}

# A recipe's phase: validated against its kind's own config (a wrong field names train.phases.N.<kind>.<field>).
Phase = Annotated[Union[SFTPhase, DPOPhase, KTOPhase, ORPOPhase, GRPOPhase, RLOOPhase, PPOPtxPhase,
                        SPINPhase, WeakToStrongPhase, GKDPhase, StableAlignmentPhase], Field(discriminator="kind")]

_PHASE_LIST: TypeAdapter[list[Any]] = TypeAdapter(list[Phase])


def default_phases() -> list[Phase]:
    """A recipe without ``train.phases``: one sft phase with its defaults (what ``method: sft`` meant)."""
    return [SFTPhase.model_validate({})]


def parse_phases(raw: list[dict]) -> list[PhaseConfig]:
    """Phase configs from their plain form (``TrainConfig.model_dump()["phases"]``, as the accelerate worker gets)."""
    return _PHASE_LIST.validate_python(raw)


def phase_names(phases: list[PhaseConfig]) -> list[str]:
    """Each phase's directory under the round's train stage: its kind, then ``kind-2``, ``kind-3`` on repeats."""
    return numbered([p.kind for p in phases])


# ---- the shorthand of recipes written before phases: train.method and flat keys ------------------------------
METHODS = {"sft": ("sft",), "dpo": ("dpo",), "sft+dpo": ("sft", "dpo")}
SHARED_KEYS = ("epochs", "batch_size", "grad_accum", "max_length", "lora")  # set on every phase
KIND_KEYS = {"sft": {"learning_rate": "learning_rate"},  # shorthand key -> that kind's field
             "dpo": {"dpo_learning_rate": "learning_rate", "beta": "beta", "dpo_loss": "loss_type"}}


def apply_shorthand(phases: Sequence[PhaseConfig], given: dict[str, Any], method: str | None) -> list[PhaseConfig]:
    """``method`` picks the phases (an entry of ``phases`` of that kind is reused, else the kind's defaults);
    each key of ``given`` sets that knob on the phases it applies to (``SHARED_KEYS`` on all, ``KIND_KEYS`` on
    their kind). ``method: sft+dpo`` with the flat keys gives exactly the hyperparameters it gave before phases.
    Raises ValueError (one line) when the result is not a valid phase."""
    if method is not None:
        first: dict[str, PhaseConfig] = {}
        for p in phases:
            first.setdefault(p.kind, p)
        phases = [first.get(k) or PHASES[k].config.model_validate({}) for k in METHODS[method]]
    out = []
    for p in phases:
        update = {k: given[k] for k in SHARED_KEYS if k in given}
        update.update({field: given[k] for k, field in KIND_KEYS.get(p.kind, {}).items() if k in given})
        if not update:
            out.append(p)
            continue
        try:
            out.append(type(p).model_validate({**p.model_dump(), **update}))
        except ValidationError as err:
            first_err = err.errors()[0]
            where = ".".join(str(x) for x in first_err["loc"]) or p.kind
            raise ValueError(f"{p.kind} phase: {where}: {first_err['msg']}") from None
    return out
