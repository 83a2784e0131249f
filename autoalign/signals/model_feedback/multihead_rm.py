"""A multi-head 3H reward model as a signal and as a Scorer: one trunk, one reward head per axis (helpful,
harmless, honest), trained on per-axis AI preferences (``autoalign.train.multihead_rm``).

The signal (``multihead_rm``): a pointwise judge (``judge``, by default ``lab:teacher``) scores the round's samples
under a principle of each prompt's axis; per prompt, its best and worst sample with a judged gap of at least
``min_gap`` make a pair of that prompt's axis (``pairs_per_prompt`` widest-gap pairs); a held-out share of prompts
measures each head's pairwise accuracy on the judge's labels, and the rest trains the model (TRL's RewardTrainer,
initialised from ``rm_base``). The model is trained once, in the first round that runs the signal, as an artifact
of that round's signals stage (kind ``multihead_reward_model``); every later round, a resumed run included, finds
it through ``StageContext.artifacts``. Then each prompt's samples are ranked by the head of the prompt's axis:
``select: sft`` keeps the ``top_k`` as SFT targets (RAFT's rule, Dong et al. 2023), ``select: dpo`` makes the best
vs the worst a DPO pair (their reward gap at least ``pair_min_gap``).

The Scorer (``MultiHeadRewardModel``, scale ``reward``) reads one head per item: ``axis: prompt`` (each prompt's
own axis), a fixed axis (``helpful`` ...), or a weighted sum of the heads (``{"helpful": 0.5, "harmless": 0.5}``).
A prompt with no axis (a plain chat, as best-of-n at evaluation and the evaluation suites pass) is scored by the
mean of the heads under ``axis: prompt``. It is an online-RL reward (``REWARD_SCORERS["multihead_reward_model"]``)
and best-of-n's reward model when the run's newest reward model is this one.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import torch

from autoalign.errors import UserError
from autoalign.models.base import LM, Prompt
from autoalign.records import Label, Preference, Sample, SFTExample, preference_rows
from autoalign.records import Prompt as PromptRecord
from autoalign.scoring import Score, as_prompts, best_vs_worst, spread_check, top_k
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    check_choice,
    constitution_from,
    known_samples,
    score_samples,
    sft_example,
    tally,
)
from autoalign.signals.model_feedback.judges import PointwiseJudge
from autoalign.signals.model_feedback.raft import ai_preferences, rm_model_dir, split_heldout
from autoalign.signals.model_feedback.reward_model import RewardModel
from autoalign.store import write_json

KIND = "multihead_reward_model"
AxisChoice = str | dict[str, float]


# ---- pure functions -------------------------------------------------------------------------------------------
def head_weights(heads: Sequence[str], axis: AxisChoice, prompt_axis: str | None = None) -> list[float]:
    """The weight of each head in an item's reward. ``axis``: ``prompt`` (one-hot on ``prompt_axis``; the mean of
    the heads when the prompt has no axis or no head of it), a head's name (one-hot), or ``{head: weight}``
    (unnamed heads weigh 0)."""
    if isinstance(axis, Mapping):
        unknown = sorted(set(axis) - set(heads))
        if unknown:
            raise ValueError(f"axis weights name no head of the model: {', '.join(unknown)} (heads: {', '.join(heads)})")
        return [float(axis.get(h, 0.0)) for h in heads]
    name = prompt_axis if axis == "prompt" else axis
    if name in heads:
        return [1.0 if h == name else 0.0 for h in heads]
    if axis != "prompt":
        raise ValueError(f"axis {axis!r}: not a head of the model (heads: {', '.join(heads)}) nor 'prompt'")
    return [1.0 / len(heads)] * len(heads)


def combine_heads(rewards: Sequence[float], weights: Sequence[float]) -> float:
    """r(x, y) = sum_k w_k r_k(x, y): the item's reward from its heads' rewards."""
    return float(sum(w * r for w, r in zip(weights, rewards, strict=True)))


def is_multihead(model_dir: str | Path) -> bool:
    """Whether a reward-model directory has more than one head (its config names ``num_labels`` > 1 labels)."""
    cfg = Path(model_dir) / "config.json"
    if not cfg.is_file():
        return False
    return len(json.loads(cfg.read_text()).get("id2label") or {"0": "reward"}) > 1


# ---- the Scorer -----------------------------------------------------------------------------------------------
class MultiHeadRewardModel(RewardModel):
    """Scores (prompt, response) with a K-head directory (``train_multihead_reward_model``); see the module
    docstring for ``axis``. The text is built as the single-head ``RewardModel`` builds it (TRL's RewardTrainer)."""

    scale = "reward"

    def __init__(self, path: str | Path, axis: AxisChoice = "prompt", device: str | None = None,
                 batch_size: int = 32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = str(rm_model_dir(Path(path).expanduser()))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(self.path, dtype=dtype, use_safetensors=True)
        labels = self.model.config.id2label
        self.heads = [str(labels[i]) for i in range(len(labels))]
        head_weights(self.heads, axis)  # a bad axis fails here, not at the first call
        self.axis = axis
        tag = axis if isinstance(axis, str) else ",".join(f"{h}={w:g}" for h, w in sorted(axis.items()))
        self.uri = f"mhrm:{self.path}#{tag}"
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(self.device).eval()
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None) or 4096

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256((super().fingerprint() + self.uri).encode()).hexdigest()[:16]

    @torch.inference_mode()
    def head_scores(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[list[float]]:
        """Every head's reward r_k(x, y) of each aligned pair: one row of K floats per item."""
        if len(prompts) != len(responses):
            raise ValueError("head_scores: prompts and responses must have the same length")
        seqs = [self._ids(p, r) for p, r in zip(prompts, responses)]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out: list[list[float]] = [[] for _ in seqs]
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(seqs[i]) for i in rows)
            ids = torch.tensor([seqs[i] + [pad] * (width - len(seqs[i])) for i in rows], device=self.device)
            mask = torch.tensor([[1] * len(seqs[i]) + [0] * (width - len(seqs[i])) for i in rows], device=self.device)
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            for i, v in zip(rows, logits.tolist()):
                out[i] = v
        return out

    def score(self, prompts: Sequence[Any], responses: Sequence[str], axes: Sequence[str | None] | None = None) -> list[float]:
        """r(x, y) per item under ``self.axis``; ``axes``: the prompts' axes (default: read from ``Prompt`` records,
        None for a plain chat or string)."""
        if axes is None:
            axes = [p.axis if isinstance(p, PromptRecord) else None for p in prompts]
        messages = [p.messages if isinstance(p, PromptRecord) else p for p in prompts]
        rows = self.head_scores(messages, responses)
        return [combine_heads(r, head_weights(self.heads, self.axis, a)) for r, a in zip(rows, axes)]

    def __call__(self, prompts: Sequence, responses: Sequence[str]) -> list[Score]:
        """The ``Scorer`` shape: value = the item's reward under ``axis``; ``detail`` has every head's reward."""
        records = as_prompts(prompts)
        rows = self.head_scores([p.messages for p in records], responses)
        out = []
        for p, r in zip(records, rows):
            value = combine_heads(r, head_weights(self.heads, self.axis, p.axis))
            out.append(Score(value, detail={"heads": dict(zip(self.heads, (round(x, 6) for x in r)))}))
        return out


# ---- the signal -----------------------------------------------------------------------------------------------
class MultiHeadRM:
    """Per-axis AI preferences -> a multi-head reward model -> SFT targets or DPO pairs by the prompt's head.

    ``reward_model``: a trained multi-head directory (null: train one in the first round); ``select``: ``sft``
    (the best samples of each prompt become SFT targets) or ``dpo`` (its best vs its worst sample, a DPO pair);
    ``top_k``: SFT targets kept per prompt, best reward first; ``min_reward``: keep only SFT targets whose reward
    is at least this (null: no floor); ``pair_min_gap``: the reward gap a DPO pair needs; ``judge``: the pointwise judge that labels the pairs (``policy`` or a model URI);
    ``min_gap``: the judged gap a training pair needs; ``pairs_per_prompt``: the widest-gap pairs kept per prompt
    (1: best vs worst); ``heldout``: the share of prompts held out to measure each head on the judge's labels;
    ``noise_floor``: no model from a judge whose scores spread less than this; ``rm_base``: the model whose trunk
    the reward model starts from (``policy`` or a URI); ``rm_max_length``: tokens per (prompt, response) read."""

    name = "multihead_rm"

    def __init__(
        self,
        reward_model: str | None = None,
        select: Literal["sft", "dpo"] = "sft",
        top_k: int = 1,
        min_reward: float | None = None,
        pair_min_gap: float = 0.0,
        judge: str = "lab:teacher",
        judge_mode: Literal["logprob", "generate"] = "logprob",
        judge_samples: int = 3,
        constitution: str | None = None,
        min_gap: float = 0.2,
        pairs_per_prompt: int = 1,
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
        check_choice("select", select, ("sft", "dpo"))
        check_choice("judge_mode", judge_mode, ("logprob", "generate"))
        if top_k < 1 or pairs_per_prompt < 1:
            raise ValueError("top_k and pairs_per_prompt must be >= 1")
        if not 0.0 <= heldout < 1.0:
            raise ValueError("heldout must be in [0, 1)")
        if reward_model is not None and not Path(reward_model).expanduser().is_dir():
            raise ValueError(f"reward_model {reward_model!r} is not a directory")
        self.reward_model_path = reward_model
        self.select, self.k, self.min_reward, self.pair_min_gap = select, top_k, min_reward, pair_min_gap
        self.judge = ModelRef(judge, load_lm, "judge")
        self.rm_base = ModelRef(rm_base, load_lm, "rm_base")
        self.constitution = constitution_from(constitution)
        self.judge_mode, self.judge_samples = judge_mode, judge_samples
        self.min_gap, self.pairs_per_prompt, self.heldout, self.noise_floor = min_gap, pairs_per_prompt, heldout, noise_floor
        self.rm_train: dict[str, Any] = dict(epochs=rm_epochs, learning_rate=rm_learning_rate,
                                             batch_size=rm_batch_size, max_length=rm_max_length)
        self.seed = seed
        self._rm: MultiHeadRewardModel | None = None  # only without a run context (a unit test, a notebook)

    # ---- the reward model ---------------------------------------------------------------------------------------
    def reward_model(self, prompts: Sequence[PromptRecord], samples: Sequence[Sample], policy: LM,
                     ctx: StageContext | None) -> tuple[MultiHeadRewardModel, dict, dict[str, Artifact]]:
        """(the model, its stats, the artifacts this call produced): the user's, an earlier round's (from the
        stage manifest through ``ctx``), or one trained now."""
        if self.reward_model_path:
            return MultiHeadRewardModel(self.reward_model_path), {"source": "given"}, {}
        if ctx is not None and KIND in ctx.artifacts:
            return MultiHeadRewardModel(ctx.artifacts[KIND]), {"source": "earlier round"}, {}
        if ctx is None and self._rm is not None:
            return self._rm, {"source": "earlier call"}, {}
        seed = ctx.seed if ctx is not None else self.seed
        out = ctx.artifact_dir(f"{self.name}/{KIND}") if ctx is not None else Path(tempfile.mkdtemp(prefix="mhrm-"))
        rm, stats = self._train(prompts, samples, policy, out, seed)
        if ctx is None:
            self._rm = rm
            return rm, stats, {}
        return rm, stats, {KIND: Artifact(kind=KIND, path=(out / "model").relative_to(ctx.dir).as_posix())}

    def _train(self, prompts: Sequence[PromptRecord], samples: Sequence[Sample], policy: LM, out: Path,
               seed: int) -> tuple[MultiHeadRewardModel, dict]:
        from autoalign.train.losses import per_axis_accuracy
        from autoalign.train.multihead_rm import HEADS, train_multihead_reward_model

        judge = PointwiseJudge(self.judge.get(policy), self.constitution, mode=self.judge_mode,
                               samples=self.judge_samples, seed=seed)
        with_axis = [p for p in prompts if p.axis is not None]
        scored = score_samples(judge, with_axis, samples, seed, "axis")
        axis_of = {p.id: str(p.axis) for p in with_axis}
        prefs = ai_preferences(scored, with_axis, self.name, self.min_gap, self.pairs_per_prompt)
        train, held = split_heldout(prefs, self.heldout, seed)
        stats: dict[str, Any] = {"no_axis_prompts": len(prompts) - len(with_axis), **tally([x.verdict for x in scored]),
                                 **spread_check([x.verdict.value for x in scored], self.noise_floor),
                                 "ai_pairs": dict(Counter(axis_of[p.prompt_id] for p in train)),
                                 "ai_pairs_heldout": dict(Counter(axis_of[p.prompt_id] for p in held))}
        if stats["below_noise_floor"]:
            raise UserError(f"multihead_rm: the judge's scores spread by {stats['score_spread']:.4f}, below the "
                            f"recipe's noise_floor {self.noise_floor} (use a judge that knows better, "
                            "signals.N.params.judge=URI)")
        if len(train) < 2:
            raise UserError(f"multihead_rm: only {len(train)} AI preference pairs to train a reward model on "
                            "(use more prompts or samples, or a smaller signals.N.params.min_gap)")
        base_path = getattr(self.rm_base.get(policy), "path", None)
        if base_path is None:
            raise UserError(f"multihead_rm rm_base {self.rm_base.spec!r}: the model has no local weights to start a "
                            "reward model from")
        rows = [{**row, "axis": axis_of[p.prompt_id]} for row, p in zip(preference_rows(train), train)]
        metrics = train_multihead_reward_model(base_path, rows, out, heads=HEADS, seed=seed, **self.rm_train)
        metrics.pop("model_dir", None)
        rm = MultiHeadRewardModel(out / "model")
        if held:
            axes = [axis_of[p.prompt_id] for p in held]
            rc = rm.score([p.prompt for p in held], [p.chosen for p in held], axes)
            rr = rm.score([p.prompt for p in held], [p.rejected for p in held], axes)
            counts = per_axis_accuracy(rc, rr, axes)
            metrics["heldout_accuracy"] = round(sum(h for h, _ in counts.values()) / len(held), 4)
            metrics["heldout_accuracy_per_axis"] = {a: round(h / n, 4) for a, (h, n) in counts.items()}
        write_json(out / "reward_metrics.json", metrics)
        stats.update(metrics, source="trained")
        return rm, stats

    # ---- the signal -----------------------------------------------------------------------------------------------
    def __call__(self, prompts: Sequence[PromptRecord], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        rm, rm_stats, artifacts = self.reward_model(prompts, samples, policy, ctx)
        by_id = {p.id: p for p in prompts}
        groups = known_samples(prompts, samples)
        flat = [s for g in groups.values() for s in g]
        rewards = rm.score([by_id[s.prompt_id] for s in flat], [s.text for s in flat])
        reward_of = {(s.prompt_id, s.index): r for s, r in zip(flat, rewards)}
        labels: list[Label] = []
        sft: list[SFTExample] = []
        prefs: list[Preference] = []
        per_axis: dict[str, list[float]] = {}
        for pid, group in groups.items():
            prompt = by_id[pid]
            head = prompt.axis or "mean"
            scores = [reward_of[(pid, s.index)] for s in group]
            per_axis.setdefault(head, []).extend(scores)
            texts = [s.text for s in group]
            if self.select == "sft":  # RAFT's rule on the prompt's head (Dong et al. 2023)
                keep = set(top_k(scores, self.k, texts=texts, min_value=self.min_reward))
                sft.extend(sft_example(prompt, group[i].text, self.name) for i in sorted(keep))
            else:  # best vs worst by the prompt's head (Yuan et al. 2024, sec. 2.3)
                pick = best_vs_worst(scores, texts, self.pair_min_gap)
                keep = {pick[0]} if pick else set()
                if pick:
                    prefs.append(Preference(prompt_id=pid, prompt=prompt.messages, chosen=texts[pick[0]],
                                            rejected=texts[pick[1]], signal=self.name,
                                            margin=float(scores[pick[0]] - scores[pick[1]])))
            labels.extend(Label(prompt_id=pid, sample_index=s.index, signal=self.name,
                                verdict="kept" if i in keep else "dropped", score=scores[i], kind="reward",
                                selected=i in keep, detail={"head": head, "reward_model": rm_stats["source"]})
                          for i, s in enumerate(group))
        stats = {**rm_stats, "select": self.select, "scored": len(flat), "sft": len(sft), "preferences": len(prefs),
                 "kept": sum(lab.selected is True for lab in labels),
                 "mean_reward_per_head": {h: round(sum(v) / len(v), 4) for h, v in sorted(per_axis.items())
                                          if v and not any(math.isnan(x) for x in v)}}
        return SignalResult(labels=labels, sft=sft, preferences=prefs, stats=stats, artifacts=artifacts)
