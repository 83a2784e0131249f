"""What every training phase shares: the config base (the knobs each phase has, with today's defaults) and LoRA.

Light on purpose (pydantic only): ``autoalign.recipe`` imports the phase configs to validate a recipe, so nothing
here, nor at the top level of a phase module, imports torch or TRL; a phase's trainer imports them when it runs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field


def numbered(keys: Sequence[str]) -> list[str]:
    """Names for keys that may repeat: the key itself, then ``key-2``, ``key-3`` ... on its later repeats (a
    phase's directory under the train stage, a reward's name in TRL's logs)."""
    seen: dict[str, int] = {}
    names = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        names.append(key if seen[key] == 1 else f"{key}-{seen[key]}")
    return names


class LoraConfig(BaseModel):
    """LoRA adapters (PEFT) instead of full fine-tuning; merged into the saved policy, so every phase's output is a
    plain Hugging Face directory."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"


class PhaseConfig(BaseModel):
    """One phase of a round's training. Each kind (``autoalign.train.phases.PHASES``) subclasses this with
    ``kind: Literal[...]``, its own defaults and parameters; ``consumes`` names the round's dataset it trains on:
    ``sft`` (TRL ``messages`` rows) or ``preferences`` (TRL ``prompt/chosen/rejected`` rows)."""

    model_config = ConfigDict(extra="forbid")
    consumes: ClassVar[Literal["sft", "preferences", "prompts"]]

    kind: str
    epochs: float = Field(2.0, gt=0)
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)  # per device
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(256, ge=16)
    max_steps: int | None = Field(None, ge=1)  # stop after this many optimizer steps (overrides epochs)
    lora: LoraConfig | None = None

    def schedule(self) -> dict[str, Any]:
        """The knobs every trainer takes, as plain keyword arguments (``train_sft``, ``train_dpo``, ...)."""
        return dict(epochs=self.epochs, learning_rate=self.learning_rate, batch_size=self.batch_size,
                    grad_accum=self.grad_accum, max_length=self.max_length, max_steps=self.max_steps,
                    lora=self.lora.model_dump() if self.lora else None)
