"""Self-Refine (Madaan et al. 2023, arXiv 2303.17651): the model drafts an answer, critiques it itself (FEEDBACK),
and rewrites it with that feedback (REFINE), until its critique says no change is needed or a budget is spent
(sec. 2, Algorithm 1: ``stop(fb_t, t)``). Filed under the inductive-bias source: one model plays all three parts.

Here the loop is one function (``self_refine``) shared by the inference wrapper (``autoalign.decoding.self_refine``)
and this signal, which persists what refinement finds by SFT on the final revisions (expert iteration: the policy
is trained to answer, in one pass, what it reaches by refining).

Critique forms (``critique``):

- ``judge``: the critique is the policy's own verdict under each principle (the constitution's yes/no judge
  template, the form the lab model was pretrained on): the answer needs no change when every principle passes
  (P(Yes) >= ``threshold``); otherwise it is rewritten under the principle that scored lowest;
- ``generate``: a written critique (the constitution's critique template) read by the rewrite
  (``revise_with_critique``); it needs no change when the critique says so (``NO_CHANGE``).

Stopping rule (``stop_reason``, pure): no change needed; or the revision equals the answer it revises (a fixed
point: another round would repeat it); or ``max_iterations`` revisions made.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Sequence

from autoalign.answers import normalise
from autoalign.models.base import LM, Sampling
from autoalign.records import Label, Prompt, Sample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import check_choice, constitution_from, known_samples, sft_example
from autoalign.signals.model_feedback.constitution import Constitution, Principle
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge

Stop = Literal["no_change_needed", "unchanged", "max_iterations"]
NO_CHANGE = re.compile(r"\b(no (changes?|issues?|problems?|improvements?) (is |are )?(needed|required)|"
                       r"nothing to (change|improve|fix)|already follows)\b", re.IGNORECASE)


def stop_reason(needs_change: bool, answer: str, revision: str | None, revisions_made: int,
                max_iterations: int) -> Stop | None:
    """Madaan et al. 2023, Alg. 1, ``stop(fb_t, t)``: why refinement stops after this step, None to go on.
    ``needs_change``: the critique of ``answer``; ``revision``: its rewrite (None when none was asked for);
    ``revisions_made``: revisions so far, this one included."""
    if not needs_change:
        return "no_change_needed"
    if revision is not None and normalise(revision) == normalise(answer):
        return "unchanged"
    if revisions_made >= max_iterations:
        return "max_iterations"
    return None


@dataclass
class Refinement:
    """One draft through the loop: ``final`` is the last answer kept (the draft when nothing changed);
    ``steps`` records each critique (its score or text, the principle) and revision."""

    request: str
    draft: str
    principles: list[Principle]
    final: str = ""
    revisions: int = 0
    stop: Stop | None = None
    first_score: float | None = None
    steps: list[dict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return normalise(self.final) != normalise(self.draft)


def self_refine(
    lm: LM,
    items: Sequence[tuple[str, str, list[Principle]]],
    constitution: Constitution,
    *,
    critique: Literal["judge", "generate"] = "judge",
    threshold: float = 0.5,
    max_iterations: int = 2,
    max_new_tokens: int = 64,
    seed: int = 0,
) -> list[Refinement]:
    """(request, draft, principles) -> a ``Refinement`` each, in order. All critiques and revisions are greedy
    (``seed`` only keys the calls); a batch holds every item still refining."""
    if max_iterations < 1:
        raise ValueError("self-refine: max_iterations must be >= 1")
    refs = [Refinement(r, d, list(ps), final=d) for r, d, ps in items]
    judge = PointwiseJudge(lm, constitution, seed=seed)
    t = constitution.templates
    sampling = Sampling(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed)
    active = list(range(len(refs)))
    while active:
        # FEEDBACK: which active answers need a change, and under which principle
        needs: dict[int, tuple[Principle, str | None]] = {}
        if critique == "judge":
            asks = [(i, p) for i in active for p in refs[i].principles]
            verdicts = judge.score([JudgeItem(refs[i].request, refs[i].final, p.text) for i, p in asks])
            by_item: dict[int, list[tuple[float, Principle]]] = {}
            for (i, p), v in zip(asks, verdicts):
                by_item.setdefault(i, []).append((v.value if v.value is not None else 0.0, p))
            for i in active:
                score, worst = min(by_item[i], key=lambda sp: sp[0])
                refs[i].first_score = score if refs[i].first_score is None else refs[i].first_score
                refs[i].steps.append({"critique_score": round(score, 6), "principle": worst.id})
                if score < threshold:
                    needs[i] = (worst, None)
        else:
            asks_g = [[{"role": "user", "content": t.critique.format(
                principle=refs[i].principles[0].text, request=refs[i].request, response=refs[i].final)}]
                for i in active]
            for i, out in zip(active, lm.generate(asks_g, sampling) if asks_g else []):
                text = out[0].text.strip()
                refs[i].steps.append({"critique": text, "principle": refs[i].principles[0].id})
                if not NO_CHANGE.search(text):
                    needs[i] = (refs[i].principles[0], text)
        # REFINE: rewrite the answers that need it
        todo = [i for i in active if i in needs]
        prompts = []
        for i in todo:
            p, crit = needs[i]
            fields = dict(principle=p.text, request=refs[i].request, response=refs[i].final)
            text = t.revise_with_critique.format(critique=crit, **fields) if crit is not None else t.revise.format(**fields)
            prompts.append([{"role": "user", "content": text}])
        revised = {i: out[0].text.strip() for i, out in zip(todo, lm.generate(prompts, sampling) if prompts else [])}
        still = []
        for i in active:
            r = refs[i]
            rev = revised.get(i)
            if rev is not None:
                r.revisions += 1
                r.steps[-1]["revision"] = rev
            reason = stop_reason(i in needs, r.final, rev, r.revisions, max_iterations)
            if rev and reason != "unchanged":
                r.final = rev  # an empty rewrite is never kept
            if reason is None and not rev:
                reason = "unchanged"
            if reason is None:
                still.append(i)
            else:
                r.stop = reason
        active = still
    return refs


def request_text(prompt) -> str:
    """The request a critique quotes: the last user turn of a chat, a raw prompt as it is."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")


class SelfRefine:
    """Self-Refine persisted by SFT: each draft (up to ``max_per_prompt`` per prompt) is refined by the policy,
    and the final answers become SFT targets (``keep: changed``: only those refinement changed; ``all``: also the
    drafts the critique passed). ``principles``: ``axis`` (the prompt's axis's principles) or ``all``
    (every principle, as the inference wrapper does, which sees no axis). Labels: the policy's first verdict on
    the draft (``judge`` critique) and the final answer as ``detail["revision"]``. ``critique``: ``judge`` (the
    policy's P(Yes) that the answer follows the principles decides) or ``generate`` (the policy writes a critique,
    and one that asks for no change stops); ``threshold``: with the ``judge`` critique, an answer scoring below this
    is rewritten; ``max_iterations``: rewrites per draft at most; ``keep``: ``changed`` or ``all`` (above)."""

    name = "self_refine"

    def __init__(
        self,
        critique: Literal["judge", "generate"] = "judge",
        principles: Literal["axis", "all"] = "axis",
        threshold: float = 0.5,
        max_iterations: int = 2,
        keep: Literal["changed", "all"] = "changed",
        max_per_prompt: int = 1,
        max_new_tokens: int = 64,
        constitution: str | None = None,
        seed: int = 0,
    ):
        check_choice("critique", critique, ("judge", "generate"))
        check_choice("principles", principles, ("axis", "all"))
        check_choice("keep", keep, ("changed", "all"))
        if max_iterations < 1 or max_per_prompt < 1 or max_new_tokens < 1:
            raise ValueError("max_iterations, max_per_prompt and max_new_tokens must be >= 1")
        self.critique, self.principles, self.threshold = critique, principles, threshold
        self.max_iterations, self.keep, self.max_per_prompt = max_iterations, keep, max_per_prompt
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.constitution = constitution_from(constitution)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        by_id = {p.id: p for p in prompts}
        drafts: list[tuple[Prompt, Sample]] = []
        for pid, group in known_samples(prompts, samples).items():
            seen: set[str] = set()
            for s in group:
                if len(seen) < self.max_per_prompt and s.text.strip() and s.text.strip() not in seen:
                    seen.add(s.text.strip())
                    drafts.append((by_id[pid], s))
        pool = (lambda p: self.constitution.for_axis(p.axis)) if self.principles == "axis" else (
            lambda p: list(self.constitution.principles))
        refs = self_refine(policy, [(p.text, s.text, pool(p)) for p, s in drafts], self.constitution,
                           critique=self.critique, threshold=self.threshold, max_iterations=self.max_iterations,
                           max_new_tokens=self.max_new_tokens, seed=self.seed)
        out = SignalResult()
        for (p, s), r in zip(drafts, refs):
            selected = r.changed or self.keep == "all"
            if selected:
                out.sft.append(sft_example(p, r.final, self.name))
            scored = r.first_score is not None
            out.labels.append(Label(
                prompt_id=p.id, sample_index=s.index, signal=self.name,
                verdict="refined" if r.changed else str(r.stop), score=r.first_score if scored else 0.0,
                kind="unit" if scored else "none", selected=selected,
                detail={"revision": r.final if r.changed else None, "stop": r.stop, "revisions": r.revisions,
                        "steps": r.steps}))
        stops = Counter(str(r.stop) for r in refs)
        out.stats = {"drafts": len(refs), "changed": sum(r.changed for r in refs), "sft": len(out.sft),
                     "stop": dict(sorted(stops.items())),
                     "mean_revisions": round(sum(r.revisions for r in refs) / len(refs), 4) if refs else 0.0}
        return out
