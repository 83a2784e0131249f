"""Aligners with inspectors (Ngweta et al. 2024, "Aligners: Decoupling LLMs and Alignment"): per alignment
criterion, a small *inspector* decides whether an answer meets the criterion and a small *aligner* rewrites the
answers that do not; both are trained on synthetic data from a teacher and run after any policy, which is never
trained (``autoalign.decoding.aligners_inspectors`` applies them at inference).

The synthetic data, per criterion (default the three axes; a criterion names a principle of the constitution, by
id or by axis):

- **inspector labels**: the teacher judges every policy sample against the criterion's principle (the pointwise
  judge's P(Yes)); ``>= pass_threshold`` is *meets*, below is *fails*;
- **aligner targets**: the teacher revises each failing sample under the principle (the constitution's ``revise``
  template) and the revision is kept only when the teacher then judges it as meeting the principle
  (``critique_revise`` with ``critique: judge, keep: improved``, plus ``revision >= pass_threshold``).

The inspector is a Bradley-Terry scorer of (prompt, answer) trained by TRL's RewardTrainer on (meets, fails) pairs
(``inspector_pairs``: a failing answer against meeting answers, its own prompt's first), on a small trunk; it
becomes a binary classifier with a threshold calibrated on held-out prompts' teacher labels
(``calibrate_threshold``). The aligner is that trunk fine-tuned by TRL's SFTTrainer on (revise prompt -> kept
revision): it learns the teacher's rewrite in the very prompt the teacher answered.

Both are artifacts of the round's signals stage, one kind per criterion (``inspector.<criterion>``,
``aligner.<criterion>``: the wrapper asks for the newest of each), each a directory with ``model/`` and a JSON
description. A later round reuses them (``StageContext.artifacts``); a signal stage killed after some criteria were
trained reuses those whose saved inputs key matches. The signal emits no training data for the policy.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from autoalign.errors import UserError
from autoalign.models.base import LM, Message, Prompt, as_messages
from autoalign.records import Label, Sample, stable_id
from autoalign.records import Prompt as PromptRecord
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.model_feedback.common import ModelRef, check_choice, constitution_from, request_of
from autoalign.signals.model_feedback.constitution import Constitution, Principle
from autoalign.signals.model_feedback.critique_revise import Revision, critique_revise, drafts_of
from autoalign.signals.model_feedback.judges import PointwiseJudge
from autoalign.store import hash_json, read_json, write_json, write_jsonl

INSPECTOR, ALIGNER = "inspector", "aligner"
META = {INSPECTOR: "inspector.json", ALIGNER: "aligner.json"}
DEFAULT_CRITERIA = ("helpful", "harmless", "honest")


def artifact_kind(role: str, criterion: str) -> str:
    """``inspector.helpful``: one artifact kind per (role, criterion), so a wrapper asks for the newest of each."""
    return f"{role}.{criterion}"


# ---- pure functions ---------------------------------------------------------------------------------------------
def criterion_principle(constitution: Constitution, criterion: str) -> Principle:
    """The principle a criterion names: the constitution's principle with that id, else its first of that axis."""
    for p in constitution.principles:
        if p.id == criterion:
            return p
    for p in constitution.principles:
        if p.axis == criterion:
            return p
    known = sorted({p.id for p in constitution.principles} | {p.axis for p in constitution.principles})
    raise ValueError(f"criteria: {criterion!r} is neither a principle id nor an axis of the constitution "
                     f"(known: {', '.join(known)})")


def inspector_pairs(prompt_ids: Sequence[str], meets: Sequence[bool], per_fail: int, seed: int) -> list[tuple[int, int]]:
    """(meeting index, failing index) pairs for the Bradley-Terry inspector: each failing item against up to
    ``per_fail`` meeting items, those of its own prompt first (in index order: the contrast the answer alone makes),
    then others drawn at random (seeded per failing item, so the pairs do not depend on the item order)."""
    if per_fail < 1:
        raise ValueError("per_fail must be >= 1")
    good = [i for i, m in enumerate(meets) if m]
    pairs: list[tuple[int, int]] = []
    for j, m in enumerate(meets):
        if m:
            continue
        same = [i for i in good if prompt_ids[i] == prompt_ids[j]][:per_fail]
        others = [i for i in good if prompt_ids[i] != prompt_ids[j]]
        rng = random.Random(f"{seed}\x00{prompt_ids[j]}\x00{j}")
        drawn = rng.sample(others, min(per_fail - len(same), len(others)))
        pairs.extend((i, j) for i in [*same, *drawn])
    return pairs


def calibrate_threshold(scores: Sequence[float], meets: Sequence[bool],
                        objective: Literal["accuracy", "balanced"] = "accuracy") -> tuple[float, float]:
    """(threshold, its objective value): the decision ``meets = score >= threshold`` that maximises accuracy (or
    balanced accuracy, the mean of the per-class recalls) on labelled scores. Candidates are the midpoints between
    consecutive distinct scores and the two outer ends; among equals the lowest threshold wins (fewest answers
    flagged as failing: a needless rewrite is the costly error). An item list with one class gets the outer end
    that labels every item with it."""
    if len(scores) != len(meets) or not scores:
        raise ValueError("calibrate_threshold: scores and labels must be non-empty and of one length")
    xs = sorted(set(float(s) for s in scores))
    cands = [xs[0] - 1.0, *((a + b) / 2.0 for a, b in zip(xs, xs[1:])), xs[-1] + 1.0]
    pos = sum(meets)
    neg = len(meets) - pos

    def value(t: float) -> float:
        tp = sum(s >= t and m for s, m in zip(scores, meets))
        tn = sum(s < t and not m for s, m in zip(scores, meets))
        if objective == "accuracy":
            return (tp + tn) / len(scores)
        recalls = [r for r, n in ((tp / pos if pos else None, pos), (tn / neg if neg else None, neg)) if n]
        return sum(recalls) / len(recalls)  # type: ignore[arg-type]

    best = max(cands, key=lambda t: (value(t), -t))
    return best, value(best)


def decision_accuracy(scores: Sequence[float], meets: Sequence[bool], threshold: float) -> float:
    """The share of items where ``score >= threshold`` says what the label says (nan without items)."""
    if not scores:
        return float("nan")
    return sum((s >= threshold) == m for s, m in zip(scores, meets)) / len(scores)


def heldout_prompt(prompt_id: str, share: float, seed: int) -> bool:
    """Whether a prompt is held out (for calibration), by a hash of (seed, prompt id): a prompt's answers stay together."""
    return int(stable_id(str(seed), prompt_id), 16) / 16**16 < share


def aligner_messages(template: str, principle: str, question: str, answer: str) -> list[Message]:
    """The aligner's input: the constitution's ``revise`` template over (principle, question, answer), the prompt the
    teacher revised in (so the aligner imitates the teacher where the lab models were pretrained to revise)."""
    return [{"role": "user", "content": template.format(principle=principle, request=question, response=answer)}]


def question_of(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


# ---- trained parts, as the wrapper and evaluation load them -----------------------------------------------------
class Inspector:
    """A trained inspector directory: the Bradley-Terry scorer and its calibrated threshold."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        from autoalign.signals.model_feedback.reward_model import RewardModel

        self.path = Path(path)
        self.meta: dict[str, Any] = read_json(self.path / META[INSPECTOR])
        self.criterion: str = self.meta["criterion"]
        self.principle: str = self.meta["principle"]
        self.threshold: float = float(self.meta["threshold"])
        self.rm = RewardModel(self.path / "model", batch_size=batch_size)

    def fingerprint(self) -> str:
        return hash_json([self.rm.fingerprint(), self.threshold])[:16]

    def scores(self, prompts: Sequence[Prompt], answers: Sequence[str]) -> list[float]:
        """r(prompt, answer); the answer meets the criterion when r >= ``threshold``."""
        return self.rm.score([as_messages(p) for p in prompts], list(answers))

    def meets(self, prompts: Sequence[Prompt], answers: Sequence[str]) -> list[bool]:
        return [s >= self.threshold for s in self.scores(prompts, answers)]


class AlignerModel:
    """A trained aligner directory: the rewriting model and the prompt it was trained in."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        from autoalign.models.hf import HFModel

        self.path = Path(path)
        self.meta: dict[str, Any] = read_json(self.path / META[ALIGNER])
        self.criterion: str = self.meta["criterion"]
        self.principle: str = self.meta["principle"]
        self.template: str = self.meta["template"]
        self.lm: LM = HFModel(self.path / "model", batch_size=batch_size)

    def messages(self, prompt: Prompt, answer: str) -> list[Message]:
        return aligner_messages(self.template, self.principle, question_of(prompt), answer)


# ---- the signal -------------------------------------------------------------------------------------------------
class AlignersInspectors:
    """Per criterion, synthetic inspector labels and aligner targets from the teacher, and the two models trained
    on them (see the module docstring).

    ``teacher``: the model that judges and revises the policy's samples (a URI, or ``policy``; never the oracle).
    ``criteria``: the criteria, each a principle id or an axis of the constitution (null: helpful, harmless, honest).
    ``pass_threshold``: a teacher verdict P(Yes) at or above this meets the criterion; a kept revision must reach it.
    ``max_per_prompt``: distinct samples of each prompt judged per criterion at most.
    ``temperature``: the teacher's sampling temperature when it revises (0: greedy).
    ``max_new_tokens``: tokens per teacher revision at most (a revision cut at this length is dropped).
    ``inspector_base``: the inspector's trunk, given a fresh scalar head (a URI with local weights, or ``policy``).
    ``aligner_base``: the aligner's trunk (a URI with local weights, or ``policy``).
    ``pairs_per_fail``: meeting answers each failing answer is contrasted with in the inspector's training pairs.
    ``heldout``: share of prompts whose teacher labels calibrate the inspector's threshold instead of training it.
    ``calibrate``: the threshold maximises ``accuracy`` or ``balanced`` accuracy on those labels.
    ``min_pairs``: fewer (meets, fails) pairs than this and the criterion gets no inspector (said in stats).
    ``min_examples``: fewer kept revisions than this and the criterion gets no aligner (said in stats).
    ``inspector_epochs`` / ``inspector_learning_rate``: the inspector's schedule (TRL RewardTrainer).
    ``aligner_epochs`` / ``aligner_learning_rate``: the aligner's schedule (TRL SFTTrainer).
    ``batch_size`` / ``max_length``: both trainers' batch size and longest sequence in tokens.
    ``seed``: the seed of this method's random choices (held-out prompts, pairs, training), with the run's."""

    name = "aligners_inspectors"

    def __init__(
        self,
        teacher: str = "lab:teacher",
        criteria: list[str] | None = None,
        constitution: str | None = None,
        pass_threshold: float = 0.5,
        judge_mode: Literal["logprob", "generate"] = "logprob",
        judge_samples: int = 3,
        max_per_prompt: int = 2,
        temperature: float = 0.0,
        max_new_tokens: int = 64,
        inspector_base: str = "lab:tiny",
        aligner_base: str = "lab:tiny",
        pairs_per_fail: int = 2,
        heldout: float = 0.2,
        calibrate: Literal["accuracy", "balanced"] = "accuracy",
        min_pairs: int = 8,
        min_examples: int = 4,
        inspector_epochs: float = 2.0,
        inspector_learning_rate: float = 1e-4,
        aligner_epochs: float = 3.0,
        aligner_learning_rate: float = 5e-4,
        batch_size: int = 16,
        max_length: int = 320,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("judge_mode", judge_mode, ("logprob", "generate"))
        check_choice("calibrate", calibrate, ("accuracy", "balanced"))
        if not 0.0 < pass_threshold < 1.0:
            raise ValueError("pass_threshold must be in (0, 1)")
        if not 0.0 <= heldout < 1.0:
            raise ValueError("heldout must be in [0, 1)")
        if min(max_per_prompt, max_new_tokens, pairs_per_fail, min_pairs, min_examples, batch_size) < 1:
            raise ValueError("max_per_prompt, max_new_tokens, pairs_per_fail, min_pairs, min_examples and batch_size "
                             "must be >= 1")
        self.teacher = ModelRef(teacher, load_lm, "teacher")
        self.inspector_base = ModelRef(inspector_base, load_lm, "inspector_base")
        self.aligner_base = ModelRef(aligner_base, load_lm, "aligner_base")
        self.constitution = constitution_from(constitution)
        names = list(criteria) if criteria is not None else list(DEFAULT_CRITERIA)
        if not names or len(set(names)) != len(names):
            raise ValueError("criteria must be a non-empty list of distinct names")
        self.criteria = {c: criterion_principle(self.constitution, c) for c in names}
        self.pass_threshold, self.judge_mode, self.judge_samples = pass_threshold, judge_mode, judge_samples
        self.max_per_prompt, self.temperature, self.max_new_tokens = max_per_prompt, temperature, max_new_tokens
        self.pairs_per_fail, self.heldout, self.calibrate = pairs_per_fail, heldout, calibrate
        self.min_pairs, self.min_examples = min_pairs, min_examples
        self.inspector_train: dict[str, Any] = dict(epochs=inspector_epochs, learning_rate=inspector_learning_rate,
                                                    batch_size=batch_size, max_length=max_length)
        self.aligner_train: dict[str, Any] = dict(epochs=aligner_epochs, learning_rate=aligner_learning_rate,
                                                  batch_size=batch_size, max_length=max_length)
        self.seed = seed

    # ---- synthetic data ----------------------------------------------------------------------------------------
    def synthesise(self, prompts: Sequence[PromptRecord], samples: Sequence[Sample], policy: LM,
                   seed: int) -> dict[str, list[Revision]]:
        """Per criterion, every draft judged by the teacher and, when failing, revised and re-judged."""
        teacher = self.teacher.get(policy)
        drafts = drafts_of(prompts, samples, self.max_per_prompt)
        out = {}
        for c, principle in self.criteria.items():
            # a one-principle constitution: every draft is judged and revised under this criterion's principle
            const = Constitution(name=f"{self.constitution.name}:{c}", principles=[principle],
                                 templates=self.constitution.templates)
            judge = PointwiseJudge(teacher, const, mode=self.judge_mode, samples=self.judge_samples, seed=seed)
            revs = critique_revise(drafts, teacher, const, critique="judge", judge=judge, keep="improved",
                                   pass_threshold=self.pass_threshold, temperature=self.temperature,
                                   max_new_tokens=self.max_new_tokens, seed=seed)
            for r in revs:  # a kept revision must itself meet the principle, not merely beat its draft
                if r.status == "revised" and (r.revision_score is None or r.revision_score < self.pass_threshold):
                    r.status = "not_improved"
            out[c] = revs
        return out

    # ---- training ----------------------------------------------------------------------------------------------
    @staticmethod
    def _reusable(out: Path, role: str, key: str) -> bool:
        meta = out / META[role]
        return meta.is_file() and (out / "model" / "config.json").is_file() and read_json(meta).get("key") == key

    def train_inspector(self, c: str, revs: Sequence[Revision], policy: LM, out: Path, seed: int) -> dict[str, Any]:
        """Train (or reuse) criterion ``c``'s inspector in ``out``; its stats (``trained: False`` + why, if not)."""
        principle = self.criteria[c]
        judged = [r for r in revs if r.draft_score is not None]
        held = [heldout_prompt(r.prompt.id, self.heldout, seed) for r in judged]
        train = [r for r, h in zip(judged, held) if not h]
        meets = [r.draft_score >= self.pass_threshold for r in train]  # type: ignore[operator]
        idx = inspector_pairs([r.prompt.id for r in train], meets, self.pairs_per_fail, seed)
        # implicit-prompt conversational pairs (TRL's chosen/rejected): the two answers may answer different prompts
        rows = [{"chosen": [*train[i].prompt.messages, {"role": "assistant", "content": train[i].sample.text}],
                 "rejected": [*train[j].prompt.messages, {"role": "assistant", "content": train[j].sample.text}]}
                for i, j in idx]
        stats: dict[str, Any] = {"pairs": len(rows), "heldout_items": sum(held)}
        if len(rows) < self.min_pairs:
            return {**stats, "trained": False,
                    "reason": f"{len(rows)} (meets, fails) pairs < min_pairs {self.min_pairs}"}
        key = hash_json([rows, self.inspector_train, self.calibrate, self.heldout, seed, self.inspector_base.spec])
        if not self._reusable(out, INSPECTOR, key):
            base = self._base_path(self.inspector_base, policy)
            from autoalign.train.reward import train_reward_model

            metrics = train_reward_model(base, rows, out, seed=seed, **self.inspector_train)
            from autoalign.signals.model_feedback.reward_model import RewardModel

            rm = RewardModel(out / "model")
            scores = rm.score([r.prompt.messages for r in judged], [r.sample.text for r in judged])
            labels = [r.draft_score >= self.pass_threshold for r in judged]  # type: ignore[operator]
            ho = [(s, m) for s, m, h in zip(scores, labels, held) if h]
            tr = [(s, m) for s, m, h in zip(scores, labels, held) if not h]
            # calibrate on held-out prompts when they hold both classes, else (few prompts) on the training items
            on = ho if len({m for _, m in ho}) == 2 else tr
            threshold, objective = calibrate_threshold([s for s, _ in on], [m for _, m in on], self.calibrate)
            meta = {"criterion": c, "principle": principle.text, "principle_id": principle.id, "axis": principle.axis,
                    "key": key,
                    "threshold": threshold, "calibrated_on": "heldout" if on is ho else "train",
                    "calibration_objective": self.calibrate, "calibration_value": round(objective, 4),
                    "train_accuracy": round(decision_accuracy([s for s, _ in tr], [m for _, m in tr], threshold), 4),
                    "heldout_accuracy": (round(decision_accuracy([s for s, _ in ho], [m for _, m in ho], threshold), 4)
                                         if ho else None),
                    "train_loss": round(float(metrics["train_loss"]), 6), "steps": int(metrics["steps"])}
            write_jsonl(out / "inspector_data.jsonl",
                        [{"prompt_id": r.prompt.id, "sample": r.sample.index, "answer": r.sample.text,
                          "teacher_score": r.draft_score, "meets": m, "heldout": h, "score": round(s, 6)}
                         for r, m, h, s in zip(judged, labels, held, scores)])
            write_json(out / META[INSPECTOR], meta)  # last: its presence (with this key) marks the inspector done
        meta = read_json(out / META[INSPECTOR])
        return {**stats, "trained": True, **{k: meta[k] for k in (
            "threshold", "calibrated_on", "train_accuracy", "heldout_accuracy", "steps")}}

    def train_aligner(self, c: str, revs: Sequence[Revision], policy: LM, out: Path, seed: int) -> dict[str, Any]:
        """Train (or reuse) criterion ``c``'s aligner on its kept revisions; its stats."""
        principle = self.criteria[c]
        template = self.constitution.templates.revise
        kept = [r for r in revs if r.status == "revised" and r.revision]
        rows = [{"messages": [*aligner_messages(template, principle.text, request_of(r.prompt), r.sample.text),
                              {"role": "assistant", "content": r.revision}]} for r in kept]
        stats: dict[str, Any] = {"examples": len(rows)}
        if len(rows) < self.min_examples:
            return {**stats, "trained": False,
                    "reason": f"{len(rows)} kept revisions < min_examples {self.min_examples}"}
        key = hash_json([rows, self.aligner_train, seed, self.aligner_base.spec])
        if not self._reusable(out, ALIGNER, key):
            base = self._base_path(self.aligner_base, policy)
            from autoalign.train.sft import train_sft

            metrics = train_sft(base, rows, out, seed=seed, **self.aligner_train)
            write_jsonl(out / "aligner_data.jsonl", rows)
            write_json(out / META[ALIGNER], {"criterion": c, "principle": principle.text, "principle_id": principle.id,
                                             "template": template, "key": key, "examples": len(rows),
                                             "train_loss": round(float(metrics["train_loss"]), 6),
                                             "steps": int(metrics["steps"])})
        meta = read_json(out / META[ALIGNER])
        return {**stats, "trained": True, "steps": meta["steps"], "train_loss": meta["train_loss"]}

    @staticmethod
    def _base_path(ref: ModelRef, policy: LM) -> str:
        path = getattr(ref.get(policy), "path", None)
        if path is None:
            raise UserError(f"aligners_inspectors {ref.role} {ref.spec!r}: the model has no local weights to train from")
        return str(path)

    # ---- labels ------------------------------------------------------------------------------------------------
    def labels(self, data: dict[str, list[Revision]]) -> list[Label]:
        """One label per draft: the teacher's verdict under the criterion of the prompt's axis (kind ``unit``, its
        kept revision as ``detail["revision"]``, so evaluation measures both against the oracle); every criterion's
        verdict rides in ``detail["criteria"]``. A prompt whose axis no criterion names gets kind ``none``."""
        by_draft: dict[tuple[str, int], dict[str, Revision]] = {}
        for c, revs in data.items():
            for r in revs:
                by_draft.setdefault((r.prompt.id, r.sample.index), {})[c] = r
        out = []
        for (pid, index), per in by_draft.items():
            first = next(iter(per.values()))
            own = next((r for c, r in per.items() if self.criteria[c].axis == first.prompt.axis), None)
            crit = {c: {"score": r.draft_score, "status": r.status, "revision_score": r.revision_score}
                    for c, r in per.items()}
            if own is None or own.draft_score is None:
                out.append(Label(prompt_id=pid, sample_index=index, signal=self.name, verdict="no_criterion",
                                 score=0.0, kind="none", selected=False, detail={"criteria": crit}))
                continue
            kept = own.status == "revised"
            out.append(Label(prompt_id=pid, sample_index=index, signal=self.name,
                             verdict="meets" if own.status == "passed" else "fails",
                             score=float(own.draft_score), kind="unit", selected=kept,
                             detail={"criterion": own.principle.id, "revision": own.revision if kept else None,
                                     "criteria": crit}))
        return out

    def __call__(self, prompts: Sequence[PromptRecord], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        seed = self.seed if ctx is None else (ctx.seed + self.seed) % (2**31)
        kinds = {artifact_kind(role, c): (role, c) for c in self.criteria for role in (INSPECTOR, ALIGNER)}
        if ctx is not None and kinds and all(k in ctx.artifacts for k in kinds):  # trained in an earlier round
            return SignalResult(stats={"source": "earlier round", "reused": sorted(kinds)})
        data = self.synthesise(prompts, samples, policy, seed)
        root = ctx.dir if ctx is not None else Path(tempfile.mkdtemp(prefix="aligners-inspectors-"))
        stats: dict[str, Any] = {"source": "trained"}
        artifacts: dict[str, Artifact] = {}
        for c, revs in data.items():
            counts = Counter(r.status for r in revs)
            judged = [r for r in revs if r.draft_score is not None]
            failing = sum(r.draft_score < self.pass_threshold for r in judged)  # type: ignore[operator]
            st: dict[str, Any] = {"judged": len(judged), "failing": failing,
                                  "failing_share": round(failing / len(judged), 4) if judged else None,
                                  "revisions_kept": counts.get("revised", 0),
                                  **{s: counts.get(s, 0) for s in ("not_improved", "truncated", "empty", "unparseable")}}
            for role, train in ((INSPECTOR, self.train_inspector), (ALIGNER, self.train_aligner)):
                kind = artifact_kind(role, c)
                out = root / self.name / f"{role}-{c}"
                res = train(c, revs, policy, out, seed)
                st[role] = res
                if res["trained"]:
                    artifacts[kind] = Artifact(kind=kind, path=out.relative_to(root).as_posix())
            stats[c] = st
        missing = [k for k in kinds if k not in artifacts]
        if missing:
            stats["warning"] = f"not trained: {', '.join(missing)} (too few failing answers or kept revisions)"
        stats["mean_failing_share"] = _mean([stats[c]["failing_share"] for c in data])
        return SignalResult(labels=self.labels(data), stats=stats,
                            artifacts=artifacts if ctx is not None else {})


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and not math.isnan(x)]
    return round(sum(vals) / len(vals), 4) if vals else None


__all__ = ["ALIGNER", "INSPECTOR", "AlignerModel", "AlignersInspectors", "Inspector", "aligner_messages",
           "artifact_kind", "calibrate_threshold", "criterion_principle", "decision_accuracy", "heldout_prompt",
           "inspector_pairs"]
