"""Distilled DPO from AI feedback, UltraFeedback-style (Cui et al. 2023; dDPO of Zephyr, Tunstall et al. 2023,
sec. 3.2-3.3): several models answer each prompt, a teacher judge rates every answer, and the best-rated answer
against the worst (or, as Zephyr does, against a random other) is a DPO pair. The best answer, when the judge
rates it well, is also an SFT target, so a recipe's ``[sft, dpo]`` phases run dDPO on the distilled-SFT student.

The answer pool of a prompt: the policy's samples of the round (``include_policy``) and ``per_model`` samples from
each model of ``models``. Judged pointwise by the yes/no judge under a principle of the prompt's axis (all answers
of a prompt under the same principle, so their scores compare). Labels are written for the policy's own samples
only (the others are not samples of the round). On the lab: ``models: [lab:teacher, lab:tiny]``, judge
``lab:teacher``; never the oracle.
"""

from __future__ import annotations

import random
from typing import Callable, Literal, Sequence

from autoalign.models.base import LM, Sampling
from autoalign.records import Preference, Prompt, Sample
from autoalign.scoring import spread_check
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    Scored,
    best_vs_worst,
    check_choice,
    constitution_from,
    judge_label,
    score_samples,
    sft_example,
    tally,
)
from autoalign.signals.model_feedback.judges import PointwiseJudge

OTHER_INDEX = 1000  # answers of models[m] get sample indices OTHER_INDEX * (m + 1) + j


def best_vs_random(scored: Sequence[Scored], prompts: Sequence[Prompt], signal: str, min_gap: float,
                   seed: int) -> tuple[list[Preference], dict[str, int]]:
    """Zephyr's pairs (Tunstall et al. 2023, sec. 3.2): the best-scored answer against one other drawn at random
    among those scored at least ``min_gap`` lower (seeded per prompt); counts of prompts without a pair."""
    by_id = {p.id: p for p in prompts}
    groups: dict[str, list[Scored]] = {}
    for x in scored:
        groups.setdefault(x.sample.prompt_id, []).append(x)
    prefs: list[Preference] = []
    counts = {"no_gap": 0, "too_few_scored": 0}
    for pid, items in sorted(groups.items()):
        valid = sorted((x for x in items if x.verdict.value is not None), key=lambda x: x.sample.index)
        if len(valid) < 2:
            counts["too_few_scored"] += 1
            continue
        best = max(valid, key=lambda x: (x.verdict.value, -x.sample.index))
        top: float = best.verdict.value  # type: ignore[assignment]
        others = [x for x in valid if x.sample.text != best.sample.text and top - x.verdict.value >= min_gap]  # type: ignore[operator]
        if not others:
            counts["no_gap"] += 1
            continue
        other = random.Random(f"{seed}\x00{pid}").choice(others)
        prefs.append(Preference(prompt_id=pid, prompt=by_id[pid].messages, chosen=best.sample.text,
                                rejected=other.sample.text, signal=signal,
                                margin=float(top - other.verdict.value)))  # type: ignore[operator]
    return prefs, counts


class DistilledDPO:
    """``models``: URIs that answer besides the policy (``per_model`` samples each, at ``temperature``);
    ``judge``: the rater (a URI, or ``policy``); ``pair``: ``best_vs_worst`` or ``best_vs_random`` (Zephyr);
    ``min_gap``: the least score gap of a pair; ``sft_best``: also the best answer as an SFT target when it scores
    at least ``sft_threshold``; ``per_model``: answers each of ``models`` writes per prompt; ``include_policy``:
    the policy's own samples of the round compete too (false: only the other models' answers)."""

    name = "distill_dpo"

    def __init__(
        self,
        judge: str = "lab:teacher",
        models: list[str] | None = None,
        per_model: int = 1,
        include_policy: bool = True,
        temperature: float = 0.9,
        top_p: float = 0.95,
        max_new_tokens: int = 48,
        pair: Literal["best_vs_worst", "best_vs_random"] = "best_vs_worst",
        min_gap: float = 0.1,
        sft_best: bool = True,
        sft_threshold: float = 0.5,
        principles: Literal["axis", "any"] = "axis",
        constitution: str | None = None,
        noise_floor: float = 0.0,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("pair", pair, ("best_vs_worst", "best_vs_random"))
        check_choice("principles", principles, ("axis", "any"))
        if per_model < 1 or max_new_tokens < 1:
            raise ValueError("per_model and max_new_tokens must be >= 1")
        uris = ["lab:teacher"] if models is None else list(models)
        if not uris and not include_policy:
            raise ValueError("distill_dpo needs answers: list some models or set include_policy")
        self.judge = ModelRef(judge, load_lm, "judge")
        self.models = [ModelRef(u, load_lm, "model") for u in uris]
        self.constitution = constitution_from(constitution)
        self.sampling = Sampling(n=per_model, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                 seed=seed)
        self.include_policy, self.pair, self.min_gap = include_policy, pair, min_gap
        self.sft_best, self.sft_threshold = sft_best, sft_threshold
        self.principles, self.noise_floor, self.seed = principles, noise_floor, seed

    def answer_pool(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM) -> list[Sample]:
        """The policy's samples (when included) and each listed model's answers, as Samples of that model."""
        ids = {p.id for p in prompts}
        pool = [s for s in samples if s.prompt_id in ids] if self.include_policy else []
        for m, ref in enumerate(self.models):
            lm = ref.get(policy)
            outs = lm.generate([p.messages for p in prompts], self.sampling) if prompts else []
            uri = getattr(lm, "uri", ref.spec)
            pool.extend(Sample(prompt_id=p.id, index=OTHER_INDEX * (m + 1) + j, text=c.text, model=uri)
                        for p, comps in zip(prompts, outs, strict=True) for j, c in enumerate(comps))
        return pool

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        pool = self.answer_pool(prompts, samples, policy)
        judge = PointwiseJudge(self.judge.get(policy), self.constitution)
        scored = score_samples(judge, prompts, pool, self.seed, self.principles)
        own = {(s.prompt_id, s.index) for s in samples}
        result = SignalResult(labels=[judge_label(x, self.name, judge.lm.uri) for x in scored
                                      if (x.sample.prompt_id, x.sample.index) in own])
        stats: dict = {**tally([x.verdict for x in scored]), "judge": judge.lm.uri, "pool": len(pool)}
        valid = [x.verdict.value for x in scored if x.verdict.value is not None]
        stats.update(spread_check(valid, self.noise_floor))
        model_of = {(x.sample.prompt_id, x.sample.text): x.sample.model for x in scored}
        if stats["below_noise_floor"]:  # the judge's differences are noise: no pair, no target
            result.stats = {**stats, "pairs": 0, "sft": 0}
            return result
        if self.pair == "best_vs_worst":
            prefs, reasons = best_vs_worst(scored, prompts, self.name, self.min_gap)
        else:
            prefs, reasons = best_vs_random(scored, prompts, self.name, self.min_gap, self.seed)
        result.preferences.extend(prefs)
        chosen_from: dict[str, int] = {}
        rejected_from: dict[str, int] = {}
        for pref in prefs:
            for table, text in ((chosen_from, pref.chosen), (rejected_from, pref.rejected)):
                src = model_of.get((pref.prompt_id, text), "?")
                table[src] = table.get(src, 0) + 1
        stats.update({"pairs": len(prefs), **{f"no_pair_{k}": v for k, v in reasons.items()},
                      "chosen_from": chosen_from, "rejected_from": rejected_from})
        if self.sft_best:
            by_id = {p.id: p for p in prompts}
            best: dict[str, Scored] = {}
            for x in scored:
                v = x.verdict.value
                if v is None or v < self.sft_threshold:
                    continue
                cur = best.get(x.sample.prompt_id)
                if cur is None or (v, -x.sample.index) > (cur.verdict.value, -cur.sample.index):
                    best[x.sample.prompt_id] = x
            result.sft.extend(sft_example(by_id[pid], x.sample.text, self.name) for pid, x in sorted(best.items()))
            stats["sft"] = len(result.sft)
        result.stats = stats
        return result
