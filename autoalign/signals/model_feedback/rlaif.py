"""RL from AI feedback (Lee et al. 2023) / RL-CAI (Bai et al. 2022, sec. 4): an AI judge states which of two
responses better follows a principle sampled from the constitution; its preferences become DPO pairs.

``mode``:

- ``pairwise``: pairs of distinct samples of a prompt are compared. ``compare: ab`` asks the constitution's
  ``compare`` template in both orders (position bias cancelled, ``judges.swap_aggregate``); ``compare:
  pointwise`` scores each response under the same principle and reads the pair as a Bradley-Terry comparison of
  the two verdicts (``judges.pair_from_scores``): what a judge trained only on pointwise verdicts, like the lab
  model, can give. Pairs within ``tie_margin`` of 1/2 are recorded as ties and yield no training pair.
- ``direct`` (d-RLAIF, Lee et al. 2023, sec. 2.4): the judge's pointwise score is used as the reward directly, with
  no reward model; here the best-vs-worst scored response of each prompt becomes a pair whose margin is the score
  gap, and every score is kept in the labels (an RL trainer can read them as rewards).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Literal, Sequence

from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample
from autoalign.scoring import spread_check
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    best_vs_worst,
    check_choice,
    constitution_from,
    item_rng,
    judge_label,
    known_samples,
    principle_for,
    request_of,
    score_samples,
    tally,
)
from autoalign.signals.model_feedback.judges import (
    JudgeItem,
    PairItem,
    PairVerdict,
    PairwiseJudge,
    PointwiseJudge,
    Verdict,
    pair_from_scores,
    pair_outcome,
)


def choose_pairs(group: Sequence[Sample], count: int, seed: int, prompt_id: str) -> list[tuple[Sample, Sample]]:
    """Up to ``count`` pairs of samples with distinct texts, drawn without replacement (seeded per prompt)."""
    distinct: list[Sample] = []
    seen: set[str] = set()
    for s in group:
        if s.text.strip() not in seen:
            seen.add(s.text.strip())
            distinct.append(s)
    pairs = [(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    item_rng(seed, "pairs", prompt_id).shuffle(pairs)
    return pairs[:count]


class RLAIF:
    """AI preferences under a sampled principle -> DPO pairs (see the module docstring for the modes).
    ``judge``: ``policy`` or a model URI. ``judge_mode``: ``logprob`` or ``generate`` (``samples`` verdicts
    averaged per order). ``mode``: ``pairwise`` (pairs of samples compared) or ``direct`` (pointwise scores as
    rewards, best vs worst); ``compare``: ``ab`` (the compare template in both orders) or ``pointwise`` (two
    pointwise verdicts read as a Bradley-Terry comparison); ``format``: ``yes_no`` (the constitution's judge
    template) or ``rubric5`` (an additive 5-point rubric); ``samples``: sampled verdicts per order when the judge
    generates; ``tie_margin``: a pair whose preference is within this of 1/2 is a tie and makes no pair."""

    name = "rlaif"

    def __init__(
        self,
        judge: str = "policy",
        mode: Literal["pairwise", "direct"] = "pairwise",
        compare: Literal["ab", "pointwise"] = "ab",
        format: Literal["yes_no", "rubric5"] = "yes_no",
        judge_mode: Literal["logprob", "generate"] = "logprob",
        samples: int = 3,
        temperature: float = 1.0,
        max_new_tokens: int = 8,
        pairs_per_prompt: int = 1,
        tie_margin: float = 0.1,
        min_gap: float = 0.1,
        noise_floor: float = 0.0,
        principles: Literal["axis", "any"] = "axis",
        constitution: str | None = None,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("mode", mode, ("pairwise", "direct"))
        check_choice("compare", compare, ("ab", "pointwise"))
        check_choice("format", format, ("yes_no", "rubric5"))
        check_choice("judge_mode", judge_mode, ("logprob", "generate"))
        check_choice("principles", principles, ("axis", "any"))
        if pairs_per_prompt < 1:
            raise ValueError("pairs_per_prompt must be >= 1")
        if not 0.0 <= tie_margin < 0.5:
            raise ValueError("tie_margin must be in [0, 0.5)")
        self.judge = ModelRef(judge, load_lm, "judge")
        self.constitution = constitution_from(constitution)
        self.mode, self.compare, self.format, self.judge_mode = mode, compare, format, judge_mode
        self.ask: dict[str, Any] = dict(samples=samples, temperature=temperature, max_new_tokens=max_new_tokens,
                                        seed=seed)
        self.pairs_per_prompt, self.tie_margin, self.min_gap = pairs_per_prompt, tie_margin, min_gap
        self.principles, self.seed, self.noise_floor = principles, seed, noise_floor

    def _pointwise(self, lm: LM) -> PointwiseJudge:
        return PointwiseJudge(lm, self.constitution, format=self.format, mode=self.judge_mode, **self.ask)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        lm = self.judge.get(policy)
        if self.mode == "direct":
            judge = self._pointwise(lm)
            scored = score_samples(judge, prompts, samples, self.seed, self.principles)
            prefs, reasons = best_vs_worst(scored, prompts, self.name, self.min_gap)
            stats = {**tally([x.verdict for x in scored]), "judge": lm.uri, "pairs": len(prefs),
                     **{f"no_pair_{k}": v for k, v in reasons.items()},
                     **spread_check([x.verdict.value for x in scored], self.noise_floor)}
            if stats["below_noise_floor"]:  # the judge's differences are noise: no pair
                prefs, stats["pairs"] = [], 0
            return SignalResult(labels=[judge_label(x, self.name, lm.uri) for x in scored], preferences=prefs,
                                stats=stats)
        return self._pairwise(prompts, samples, lm)

    def _pairwise(self, prompts: Sequence[Prompt], samples: Sequence[Sample], lm: LM) -> SignalResult:
        by_id = {p.id: p for p in prompts}
        jobs: list[tuple[Prompt, Sample, Sample, str, str]] = []
        for pid, group in known_samples(prompts, samples).items():
            for a, b in choose_pairs(group, self.pairs_per_prompt, self.seed, pid):
                pr = principle_for(self.constitution, by_id[pid], self.seed, self.principles, a.index, b.index)
                jobs.append((by_id[pid], a, b, pr.id, pr.text))
        verdicts = self._verdicts(lm, jobs)
        prefs: list[Preference] = []
        labels: list[Label] = []
        outcomes: Counter = Counter()
        for (prompt, a, b, pid_, _), v in zip(jobs, verdicts):
            outcomes[v.outcome or "unparseable"] += 1
            verdict = {"a": "win", "b": "loss", "tie": "tie", None: "unparseable"}[v.outcome]
            labels.append(Label(prompt_id=prompt.id, sample_index=a.index, signal=self.name, verdict=verdict,
                                score=v.p_a if v.p_a is not None else 0.0,
                                kind="pairwise" if v.p_a is not None else "none",
                                detail={"versus": b.index, "principle": pid_, "judge": lm.uri, **v.detail()}))
            if v.outcome in ("a", "b"):
                win, lose = (a, b) if v.outcome == "a" else (b, a)
                prefs.append(Preference(prompt_id=prompt.id, prompt=prompt.messages, chosen=win.text,
                                        rejected=lose.text, signal=self.name,
                                        margin=abs(2.0 * v.p_a - 1.0)))  # type: ignore[operator]
        judged = [v for v in verdicts if v.p_a is not None]
        # P(a better) spreads around 1/2 when the judge prefers anything; a constant judge gives 1/2 throughout
        noise = spread_check([v.p_a for v in judged] + [1.0 - v.p_a for v in judged], self.noise_floor)  # type: ignore[operator]
        if noise["below_noise_floor"]:
            prefs = []
        stats = {**noise, "judge": lm.uri, "compare": self.compare, "pairs_judged": len(jobs), "pairs": len(prefs),
                 "ties": outcomes["tie"], "unparseable": outcomes["unparseable"],
                 "position_consistent": (round(sum(v.consistent for v in judged) / len(judged), 4)
                                         if judged and self.compare == "ab" else None),
                 "unparsed_samples": sum(v.forward.unparsed + v.backward.unparsed for v in verdicts)}
        return SignalResult(labels=labels, preferences=prefs, stats=stats)

    def _verdicts(self, lm: LM, jobs: list[tuple[Prompt, Sample, Sample, str, str]]) -> list[PairVerdict]:
        if self.compare == "ab":
            judge = PairwiseJudge(lm, self.constitution, mode=self.judge_mode, tie_margin=self.tie_margin, **self.ask)
            return judge.compare([PairItem(request_of(p), a.text, b.text, text) for p, a, b, _, text in jobs])
        # pointwise: each (sample, principle) judged once, the pair read as Bradley-Terry on the two verdicts
        keys: dict[tuple[str, int, str], int] = {}
        items: list[JudgeItem] = []
        for p, a, b, _, text in jobs:
            for s in (a, b):
                k = (p.id, s.index, text)
                if k not in keys:
                    keys[k] = len(items)
                    items.append(JudgeItem(request_of(p), s.text, text))
        scores = self._pointwise(lm).score(items)
        out = []
        for p, a, b, _, text in jobs:
            va, vb = scores[keys[(p.id, a.index, text)]], scores[keys[(p.id, b.index, text)]]
            if va.value is None or vb.value is None:
                out.append(PairVerdict(None, None, False, va, vb))
                continue
            p_a = pair_from_scores(va.value, vb.value)
            out.append(PairVerdict(p_a, pair_outcome(p_a, self.tie_margin), True, va, vb))
        return out


__all__ = ["RLAIF", "choose_pairs", "Verdict"]
