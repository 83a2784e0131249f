"""Best-of-n at inference (Nakano et al. 2021, sec. 3.3): each answer is the highest-reward of ``n`` policy samples
under a reward model. The reward model is the user's (``reward_model: DIR``) or the newest one a signal of the run
declared as an artifact of kind ``reward_model`` (RAFT's); a round with neither is not wrapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autoalign.errors import UserError


class BestOfNConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["best_of_n"] = "best_of_n"
    n: int = Field(4, ge=2)
    reward_model: str | None = None
    temperature: float | None = Field(None, ge=0.0)  # None: the recipe's sampling temperature
    suites: list[str] = Field(default_factory=lambda: ["lab"])


class BestOfN:
    role = "variant"

    def __init__(self, cfg: BestOfNConfig, where: str, sampling_temperature: float = 0.8):
        self.cfg, self.where = cfg, where
        self.temperature = cfg.temperature if cfg.temperature is not None else sampling_temperature
        self.tag, self.suites = f"best-of-{cfg.n}", cfg.suites

    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return policy_uri

    def reward_model_dir(self, k: int, env: Any) -> Path | None:
        if self.cfg.reward_model:
            from autoalign.signals.model_feedback.raft import rm_model_dir

            path = Path(self.cfg.reward_model).expanduser()
            if not path.is_dir():
                raise UserError(f"recipe {self.where}.reward_model: not a directory: {path}")
            return rm_model_dir(path)
        return env.artifact("reward_model", k)

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        rm_dir = self.reward_model_dir(k, env)
        if rm_dir is None:
            return None
        from autoalign.signals.model_feedback.reward_model import BestOfNLM, RewardModel

        return BestOfNLM(policy_lm, RewardModel(rm_dir), n=self.cfg.n, temperature=self.temperature)
