"""Best-of-n at inference (Nakano et al. 2021, sec. 3.3): each answer is the highest-reward of ``n`` policy samples
under a reward model. The reward model is the user's (``reward_model: DIR``) or the newest one a signal of the run
declared as an artifact of kind ``reward_model`` (RAFT's), else of kind ``multihead_reward_model`` (scored by the
mean of its heads: an evaluation prompt names no axis); a round with neither is not wrapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autoalign.errors import UserError


class BestOfNConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["best_of_n"] = "best_of_n"
    n: int = Field(4, ge=2)  # samples drawn per prompt; the one the reward model scores highest is the answer
    # a reward model directory (null: the newest reward model the run trained, e.g. RAFT's or multihead_rm's)
    reward_model: str | None = None
    temperature: float | None = Field(None, ge=0.0)  # None: the recipe's sampling temperature
    suites: list[str] = Field(default_factory=lambda: ["lab"])  # the suites the variant is measured on


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
        # a multi-head 3H reward model (``multihead_rm``) when the run trained no single-head one
        return env.artifact("reward_model", k) or env.artifact("multihead_reward_model", k)

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        rm_dir = self.reward_model_dir(k, env)
        if rm_dir is None:
            return None
        from autoalign.signals.model_feedback.multihead_rm import MultiHeadRewardModel, is_multihead
        from autoalign.signals.model_feedback.reward_model import BestOfNLM, RewardModel

        rm = MultiHeadRewardModel(rm_dir) if is_multihead(rm_dir) else RewardModel(rm_dir)
        return BestOfNLM(policy_lm, rm, n=self.cfg.n, temperature=self.temperature)
