"""What the model-feedback signals share: resolving the judge model, sampling a principle per item, scoring
samples pointwise, and picking best-vs-worst pairs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from autoalign import scoring
from autoalign.errors import UserError
from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample
from autoalign.signals.base import group_samples
from autoalign.signals.model_feedback.constitution import Constitution, Principle, load_constitution
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge, Verdict

POLICY = ("policy", "self")


class ModelRef:
    """A model named in a signal's params: ``policy`` (the policy of the round, passed at call time, so each round's
    judge is the newly trained policy) or a URI loaded once through the run's ``load_lm``."""

    def __init__(self, spec: str | None, load_lm: Callable | None, role: str):
        self.spec = spec or "policy"
        self.load_lm = load_lm
        self.role = role
        self._lm: LM | None = None

    @property
    def is_policy(self) -> bool:
        return self.spec in POLICY

    def get(self, policy: LM) -> LM:
        if self.is_policy:
            return policy
        if self._lm is None:
            if self.load_lm is None:
                raise UserError(f"{self.role} {self.spec!r}: no model loader given (build the signal through the catalog)")
            self._lm = self.load_lm(self.spec)
        return self._lm


def item_rng(seed: int, *parts: object) -> random.Random:
    """A random stream per item, a function of the signal's seed and the item only (never of batch layout)."""
    return random.Random("\x00".join(map(str, (seed, *parts))))


def principle_for(constitution: Constitution, prompt: Prompt, seed: int, choose: Literal["axis", "any"], *key) -> Principle:
    return constitution.sample(prompt, item_rng(seed, "principle", prompt.id, *key), choose)


def request_of(prompt: Prompt) -> str:
    return prompt.text


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


@dataclass(frozen=True)
class Scored:
    sample: Sample
    principle: Principle
    verdict: Verdict


def score_samples(
    judge: PointwiseJudge,
    prompts: Sequence[Prompt],
    samples: Sequence[Sample],
    seed: int,
    choose: Literal["axis", "any"] = "axis",
    per_prompt_principle: bool = True,
) -> list[Scored]:
    """Judge every sample of a known prompt. With ``per_prompt_principle`` all samples of a prompt are judged
    under the same sampled principle (so their scores compare); otherwise each sample draws its own."""
    by_id = {p.id: p for p in prompts}
    todo: list[tuple[Sample, Principle]] = []
    for s in samples:
        p = by_id.get(s.prompt_id)
        if p is None:
            continue
        key = () if per_prompt_principle else (s.index,)
        todo.append((s, principle_for(judge.constitution, p, seed, choose, *key)))
    verdicts = judge.score([JudgeItem(request_of(by_id[s.prompt_id]), s.text, pr.text) for s, pr in todo])
    return [Scored(s, pr, v) for (s, pr), v in zip(todo, verdicts)]


def judge_label(scored: Scored, signal: str, judge_uri: str) -> Label:
    """A Label per judged sample: verdict ``scored`` with the value, or ``unparseable`` (score 0, raw kept)."""
    v = scored.verdict
    return Label(
        prompt_id=scored.sample.prompt_id,
        sample_index=scored.sample.index,
        signal=signal,
        verdict="scored" if v.value is not None else "unparseable",
        score=float(v.value) if v.value is not None else 0.0,
        kind="unit" if v.value is not None else "none",
        detail={"principle": scored.principle.id, "judge": judge_uri, **v.detail()},
    )


def best_worst(scores: Sequence[float | None], texts: Sequence[str], min_gap: float) -> tuple[int, int] | None:
    """(best, worst) positions: ``autoalign.scoring.best_vs_worst``, the selection rule (Self-Rewarding LMs,
    Yuan et al. 2024, sec. 2.3)."""
    return scoring.best_vs_worst(scores, texts, min_gap)


def best_vs_worst(
    scored: Sequence[Scored], prompts: Sequence[Prompt], signal: str, min_gap: float
) -> tuple[list[Preference], dict[str, int]]:
    """One preference pair per prompt from pointwise scores; counts of prompts without a pair, by reason."""
    by_id = {p.id: p for p in prompts}
    groups: dict[str, list[Scored]] = {}
    for x in scored:
        groups.setdefault(x.sample.prompt_id, []).append(x)
    prefs: list[Preference] = []
    counts = {"no_gap": 0, "too_few_scored": 0}
    for pid, items in groups.items():
        items.sort(key=lambda x: x.sample.index)
        scores = [x.verdict.value for x in items]
        if sum(s is not None for s in scores) < 2:
            counts["too_few_scored"] += 1
            continue
        pick = best_worst(scores, [x.sample.text for x in items], min_gap)
        if pick is None:
            counts["no_gap"] += 1
            continue
        b, w = items[pick[0]], items[pick[1]]
        prefs.append(Preference(prompt_id=pid, prompt=by_id[pid].messages, chosen=b.sample.text,
                                rejected=w.sample.text, signal=signal,
                                margin=float(b.verdict.value - w.verdict.value)))  # type: ignore[operator]
    return prefs, counts


def tally(verdicts: Sequence[Verdict]) -> dict[str, int]:
    """Counts for the stage manifest: judged items, unreadable verdicts (items skipped) and unreadable samples."""
    return {
        "judged": len(verdicts),
        "unparseable": sum(v.value is None for v in verdicts),
        "unparsed_samples": sum(v.unparsed for v in verdicts),
    }


def sft_example(prompt: Prompt, text: str, signal: str, weight: float = 1.0) -> SFTExample:
    return SFTExample(prompt_id=prompt.id, messages=[*prompt.messages, {"role": "assistant", "content": text}],
                      signal=signal, weight=weight)


def constitution_from(path: str | None) -> Constitution:
    return load_constitution(path)


def known_samples(prompts: Sequence[Prompt], samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    ids = {p.id for p in prompts}
    return {k: v for k, v in group_samples(samples).items() if k in ids}
