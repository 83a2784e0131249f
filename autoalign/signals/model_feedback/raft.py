"""RAFT: reward-ranked fine-tuning (Dong et al. 2023): sample K responses per prompt, keep the top by a reward
model, fine-tune on them, repeat (each round of the loop is one RAFT iteration; the loop samples the K).

The reward model is a Bradley-Terry model (``autoalign.train.reward``). Give a trained one (``reward_model:
DIR``), or let the signal train one on AI preferences the first time it runs: a pointwise judge (``judge``:
``policy`` or a URI) scores the samples under each prompt's principle, every pair of a prompt's samples with a
score gap of at least ``min_gap`` becomes a preference (capped per prompt), a held-out share of prompts measures
the model's pairwise accuracy on AI labels, and TRL's RewardTrainer fits the model, initialised from ``rm_base``.
The trained model is an artifact of the round's signals stage (``round-k/signals/raft/reward_model``, declared
in the stage manifest as kind ``reward_model``); every later round finds it there through ``StageContext.artifacts``,
so a resumed run uses the very model an uninterrupted one would, never one retrained on another round's samples.
Outside a run (no context) the model is trained in a temporary directory and kept in memory.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from autoalign.errors import UserError
from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample, preference_rows, stable_id
from autoalign.scoring import spread_check, top_k
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    Scored,
    check_choice,
    constitution_from,
    known_samples,
    score_samples,
    sft_example,
    tally,
)
from autoalign.signals.model_feedback.judges import PointwiseJudge
from autoalign.signals.model_feedback.reward_model import RewardModel, pairwise_accuracy
from autoalign.store import write_json

REWARD_MODEL = "reward_model"


def rm_model_dir(path: Path) -> Path:
    """A reward-model directory as RAFT saves it (``DIR/model``) or the model directory itself."""
    return path / "model" if (path / "model" / "config.json").is_file() else path


def ai_preferences(scored: Sequence[Scored], prompts: Sequence[Prompt], signal: str, min_gap: float,
                   per_prompt: int) -> list[Preference]:
    """All pairs of a prompt's scored samples (distinct texts) whose judge scores differ by ``min_gap`` or more
    (and by something: equal scores never make a pair),
    widest gaps first, at most ``per_prompt`` per prompt."""
    by_id = {p.id: p for p in prompts}
    groups: dict[str, list[Scored]] = {}
    for x in scored:
        if x.verdict.value is not None:
            groups.setdefault(x.sample.prompt_id, []).append(x)
    prefs = []
    for pid, items in sorted(groups.items()):
        items.sort(key=lambda x: x.sample.index)
        pairs = []
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                gap = a.verdict.value - b.verdict.value  # type: ignore[operator]
                if abs(gap) >= max(min_gap, 1e-12) and a.sample.text.strip() != b.sample.text.strip():
                    w, l_ = (a, b) if gap > 0 else (b, a)
                    pairs.append((abs(gap), w.sample.index, l_.sample.index, w, l_))
        pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
        for gap, _, _, w, l_ in pairs[:per_prompt]:
            prefs.append(Preference(prompt_id=pid, prompt=by_id[pid].messages, chosen=w.sample.text,
                                    rejected=l_.sample.text, signal=signal, margin=float(gap)))
    return prefs


def split_heldout(prefs: Sequence[Preference], share: float, seed: int) -> tuple[list[Preference], list[Preference]]:
    """(train, held-out) split by prompt (a prompt's pairs stay together), by a hash of (seed, prompt id)."""
    def held(pid: str) -> bool:
        return int(stable_id(str(seed), pid), 16) / 16**16 < share

    return [p for p in prefs if not held(p.prompt_id)], [p for p in prefs if held(p.prompt_id)]


class RAFT:
    """Keep the ``top_k`` samples of each prompt by reward (and only those with reward >= ``min_reward`` when
    set) as SFT examples. See the module docstring for where the reward model comes from.

    ``reward_model``: a trained Bradley-Terry model directory (null: train one on the judge's preferences in the
    first round); ``top_k``: samples kept per prompt, best reward first; ``min_reward``: keep only samples whose
    reward is at least this (null: no floor); ``judge``: the pointwise judge that labels the reward model's pairs
    (``policy`` or a model URI); ``heldout``: the share of prompts held out to measure the reward model's pairwise
    accuracy on the judge's labels; ``rm_base``: the model the reward model starts from (``policy`` or a URI);
    ``rm_max_length``: tokens per (prompt, response) the reward model reads at most."""

    name = "raft"

    def __init__(
        self,
        reward_model: str | None = None,
        top_k: int = 1,
        min_reward: float | None = None,
        judge: str = "policy",
        judge_mode: Literal["logprob", "generate"] = "logprob",
        judge_samples: int = 3,
        principles: Literal["axis", "any"] = "axis",
        constitution: str | None = None,
        min_gap: float = 0.2,
        pairs_per_prompt: int = 4,
        heldout: float = 0.1,
        noise_floor: float = 0.0,
        rm_base: str = "policy",
        rm_epochs: float = 2.0,
        rm_learning_rate: float = 1e-4,
        rm_batch_size: int = 16,
        rm_max_length: int = 256,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("judge_mode", judge_mode, ("logprob", "generate"))
        check_choice("principles", principles, ("axis", "any"))
        if top_k < 1 or pairs_per_prompt < 1:
            raise ValueError("top_k and pairs_per_prompt must be >= 1")
        if not 0.0 <= heldout < 1.0:
            raise ValueError("heldout must be in [0, 1)")
        if reward_model is not None and not Path(reward_model).expanduser().is_dir():
            raise ValueError(f"reward_model {reward_model!r} is not a directory")
        self.reward_model_path = reward_model
        self.k, self.min_reward = top_k, min_reward
        self.judge = ModelRef(judge, load_lm, "judge")
        self.rm_base = ModelRef(rm_base, load_lm, "rm_base")
        self.constitution = constitution_from(constitution)
        self.judge_mode, self.judge_samples, self.principles = judge_mode, judge_samples, principles
        self.min_gap, self.pairs_per_prompt, self.heldout = min_gap, pairs_per_prompt, heldout
        self.noise_floor = noise_floor
        self.rm_train: dict[str, Any] = dict(epochs=rm_epochs, learning_rate=rm_learning_rate,
                                             batch_size=rm_batch_size, max_length=rm_max_length)
        self.seed = seed
        self._rm: RewardModel | None = None  # only without a run context (a unit test, a notebook)

    # ---- the reward model ---------------------------------------------------------------------------------------
    def reward_model(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                     ctx: StageContext | None) -> tuple[RewardModel, dict, dict[str, Artifact]]:
        """(the reward model, its stats, the artifacts this call produced): the user's model, the one an earlier
        round of this run trained (found from the stage manifest through ``ctx``), or a new one trained now."""
        if self.reward_model_path:
            path = Path(self.reward_model_path).expanduser()
            return RewardModel(rm_model_dir(path)), {"reward_model": str(path), "source": "given"}, {}
        if ctx is not None and REWARD_MODEL in ctx.artifacts:
            path = ctx.artifacts[REWARD_MODEL]
            return RewardModel(path), {"reward_model": str(path), "source": "earlier round"}, {}
        if ctx is None and self._rm is not None:
            return self._rm, {"reward_model": self._rm.path, "source": "earlier call"}, {}
        out = ctx.artifact_dir(f"{self.name}/{REWARD_MODEL}") if ctx is not None else Path(tempfile.mkdtemp(prefix="raft-rm-"))
        rm, stats = self._train(prompts, samples, policy, out)
        if ctx is None:
            self._rm = rm
            return rm, stats, {}
        rel = (out / "model").relative_to(ctx.dir).as_posix()
        return rm, stats, {REWARD_MODEL: Artifact(kind="reward_model", path=rel)}

    def _train(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
               out: Path) -> tuple[RewardModel, dict]:
        judge = PointwiseJudge(self.judge.get(policy), self.constitution, mode=self.judge_mode,
                               samples=self.judge_samples, seed=self.seed)
        scored = score_samples(judge, prompts, samples, self.seed, self.principles)
        prefs = ai_preferences(scored, prompts, self.name, self.min_gap, self.pairs_per_prompt)
        train, held = split_heldout(prefs, self.heldout, self.seed)
        base = self.rm_base.get(policy)
        base_path = getattr(base, "path", None)
        if base_path is None:
            raise UserError(f"raft rm_base {self.rm_base.spec!r}: the model has no local weights to start a reward model from")
        stats: dict[str, Any] = {"ai_pairs": len(train), "ai_pairs_heldout": len(held),
                                 **tally([x.verdict for x in scored]),
                                 **spread_check([x.verdict.value for x in scored], self.noise_floor)}
        if stats["below_noise_floor"]:
            raise UserError(f"raft: the judge's scores spread by {stats['score_spread']:.4f}, below the recipe's "
                            f"noise_floor {self.noise_floor}: no reward model can be trained on its noise "
                            "(use a judge that knows better, e.g. signals.N.params.judge=URI)")
        if len(train) < 2:
            raise UserError(f"raft: only {len(train)} AI preference pairs to train a reward model on "
                            "(use more prompts or samples, or a smaller signals.N.params.min_gap)")
        from autoalign.train.reward import train_reward_model

        metrics = train_reward_model(base_path, preference_rows(train), out, seed=self.seed, **self.rm_train)
        rm = RewardModel(out / "model")
        if held:
            rc = rm.score([p.prompt for p in held], [p.chosen for p in held])
            rr = rm.score([p.prompt for p in held], [p.rejected for p in held])
            metrics["heldout_accuracy"] = round(pairwise_accuracy(rc, rr), 4)
        write_json(out / "reward_metrics.json", {k: v for k, v in metrics.items() if k != "model_dir"})
        stats.update({k: v for k, v in metrics.items() if k != "model_dir"}, source="trained")
        return rm, stats

    # ---- the signal -----------------------------------------------------------------------------------------------
    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        rm, rm_stats, artifacts = self.reward_model(prompts, samples, policy, ctx)
        by_id = {p.id: p for p in prompts}
        groups = known_samples(prompts, samples)
        flat = [s for g in groups.values() for s in g]
        rewards = [float(sc.value) for sc in rm([by_id[s.prompt_id] for s in flat], [s.text for s in flat])]  # type: ignore[arg-type]
        reward_of = {(s.prompt_id, s.index): r for s, r in zip(flat, rewards)}
        labels: list[Label] = []
        sft: list[SFTExample] = []
        verdicts: Counter = Counter()
        for pid, group in groups.items():
            scores = [reward_of[(pid, s.index)] for s in group]
            # the selection rule: the top k distinct texts by reward (Dong et al. 2023), above min_reward
            keep = set(top_k(scores, self.k, texts=[s.text for s in group], min_value=self.min_reward))
            for i, s in enumerate(group):
                verdict = "kept" if i in keep else "dropped"
                verdicts[verdict] += 1
                labels.append(Label(prompt_id=pid, sample_index=s.index, signal=self.name, verdict=verdict,
                                    score=scores[i], kind="reward", selected=i in keep,
                                    detail={"reward_model": rm_stats["source"]}))
            sft.extend(sft_example(by_id[pid], group[i].text, self.name) for i in sorted(keep))
        kept = [reward_of[(lab.prompt_id, lab.sample_index)] for lab in labels if lab.verdict == "kept"]
        stats = {**rm_stats, "scored": len(flat), "kept": verdicts["kept"], "sft": len(sft),
                 "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else None,
                 "mean_reward_kept": round(sum(kept) / len(kept), 4) if kept else None}
        return SignalResult(labels=labels, sft=sft, stats=stats, artifacts=artifacts)
