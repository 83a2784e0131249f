"""Constitutional AI, supervised stage (Bai et al. 2022, sec. 3): sample a response, critique it against a sampled
principle, revise it; fine-tune on the revised responses.

The critique step has three forms (``critique``):

- ``generate``: the critic writes a critique (the constitution's ``critique`` template) and the reviser rewrites
  with it (``revise_with_critique``): the paper's form, for models that can critique;
- ``none``: the reviser rewrites every draft directly (``revise``): the form the lab model was pretrained on;
- ``judge``: the critique is a verdict: a judge scores the draft under the principle, drafts that pass
  (score >= ``pass_threshold``) are kept as they are, the others are revised.

``keep: improved`` re-judges each revision and keeps it only when it scores above its draft: a guard against a
reviser that makes things worse (off by default, as in the paper, which keeps every revision).
The (prompt, draft, revision) triples also train the Aligner correction model (``aligner.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from autoalign.models.base import LM, Sampling
from autoalign.records import Label, Prompt, Sample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    check_choice,
    constitution_from,
    known_samples,
    principle_for,
    request_of,
    sft_example,
)
from autoalign.signals.model_feedback.constitution import Constitution, Principle
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge

Status = Literal["revised", "passed", "not_improved", "truncated", "empty", "unparseable"]


@dataclass
class Revision:
    """One draft through critique and revision. ``status``: ``revised`` (use ``revision``), ``passed`` (the judge
    found the draft fine: use the draft), or why it was dropped."""

    prompt: Prompt
    sample: Sample
    principle: Principle
    status: Status = "revised"
    critique: str | None = None
    revision: str | None = None
    draft_score: float | None = None
    revision_score: float | None = None
    judge: dict = field(default_factory=dict)

    @property
    def target(self) -> str | None:
        """The corrected response: the revision, the draft itself when it passed, None when dropped."""
        return self.revision if self.status == "revised" else self.sample.text if self.status == "passed" else None

    def label(self, signal: str) -> Label:
        score = self.revision_score if self.revision_score is not None else self.draft_score
        return Label(
            prompt_id=self.prompt.id, sample_index=self.sample.index, signal=signal, verdict=self.status,
            score=float(score) if score is not None else (1.0 if self.target is not None else 0.0),
            # the score judges the draft (the labelled sample) only when no revision was scored
            kind="unit" if self.revision_score is None and self.draft_score is not None else "none",
            selected=self.target is not None,
            detail={"principle": self.principle.id, "draft": self.sample.text, "critique": self.critique,
                    "revision": self.revision, "draft_score": self.draft_score,
                    "revision_score": self.revision_score, **self.judge},
        )


def drafts_of(prompts: Sequence[Prompt], samples: Sequence[Sample], per_prompt: int) -> list[tuple[Prompt, Sample]]:
    """Up to ``per_prompt`` samples of each prompt, distinct texts, in sample order."""
    by_id = {p.id: p for p in prompts}
    out = []
    for pid, group in known_samples(prompts, samples).items():
        seen: set[str] = set()
        for s in group:
            if len(seen) >= per_prompt:
                break
            if s.text.strip() in seen:
                continue
            seen.add(s.text.strip())
            out.append((by_id[pid], s))
    return out


def critique_revise(
    drafts: Sequence[tuple[Prompt, Sample]],
    reviser: LM,
    constitution: Constitution,
    *,
    critique: Literal["none", "generate", "judge"] = "none",
    critic: LM | None = None,
    judge: PointwiseJudge | None = None,
    keep: Literal["all", "improved"] = "all",
    pass_threshold: float = 0.5,
    principles: Literal["axis", "any"] = "axis",
    temperature: float = 0.0,
    max_new_tokens: int = 64,
    seed: int = 0,
) -> list[Revision]:
    """Run every draft through (critique ->) revision; returns one ``Revision`` per draft, in order."""
    if (critique == "judge" or keep == "improved") and judge is None:
        raise ValueError("critique='judge' and keep='improved' need a judge")
    revs = [Revision(p, s, principle_for(constitution, p, seed, principles, s.index)) for p, s in drafts]
    if judge is not None and (critique == "judge" or keep == "improved"):
        verdicts = judge.score([JudgeItem(request_of(r.prompt), r.sample.text, r.principle.text) for r in revs])
        for r, v in zip(revs, verdicts):
            r.draft_score = v.value
            r.judge["draft_verdict"] = v.detail()
            if critique == "judge":
                if v.value is None:
                    r.status = "unparseable"
                elif v.value >= pass_threshold:
                    r.status = "passed"
    todo = [r for r in revs if r.status == "revised"]
    sampling = Sampling(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    t = constitution.templates
    if critique == "generate" and todo:
        asks = [[{"role": "user", "content": t.critique.format(principle=r.principle.text, request=request_of(r.prompt),
                                                                response=r.sample.text)}] for r in todo]
        for r, out in zip(todo, (critic or reviser).generate(asks, sampling)):
            r.critique = out[0].text.strip()
    if todo:
        asks = []
        for r in todo:
            fields = dict(principle=r.principle.text, request=request_of(r.prompt), response=r.sample.text)
            text = (t.revise_with_critique.format(critique=r.critique, **fields) if critique == "generate"
                    else t.revise.format(**fields))
            asks.append([{"role": "user", "content": text}])
        for r, out in zip(todo, reviser.generate(asks, sampling)):
            c = out[0]
            r.revision = c.text.strip()
            if not r.revision:
                r.status = "empty"
            elif c.finish_reason == "length":
                r.status = "truncated"
    if keep == "improved" and judge is not None:
        check = [r for r in revs if r.status == "revised"]
        verdicts = judge.score([JudgeItem(request_of(r.prompt), r.revision or "", r.principle.text) for r in check])
        for r, v in zip(check, verdicts):
            r.revision_score = v.value
            r.judge["revision_verdict"] = v.detail()
            if v.value is None or r.draft_score is None:
                r.status = "unparseable"
            elif v.value <= r.draft_score:
                r.status = "not_improved"
    return revs


class ConstitutionalAI:
    """The supervised stage of Constitutional AI as a signal: SFT examples are the revised responses (plus the
    drafts a judge passed, with ``include_passed``). ``reviser``/``critic``/``judge``: ``policy`` or a model URI
    (critic and judge default to the reviser). Labels record every draft's fate; ``stats`` counts them.

    ``reviser``: the model that rewrites drafts (``policy`` or a URI); ``critic``: the model that writes critiques
    with ``critique: generate`` (null: the reviser); ``critique``: ``none`` (revise every draft directly),
    ``generate`` (a written critique, then a revision with it) or ``judge`` (revise only drafts the judge fails);
    ``keep``: ``all`` revisions, or only those the judge scores above their draft (``improved``);
    ``pass_threshold``: with ``critique: judge``, a draft scoring at least this passes unrevised;
    ``include_passed``: passed drafts are SFT targets too."""

    name = "constitutional_ai"

    def __init__(
        self,
        reviser: str = "policy",
        critic: str | None = None,
        judge: str | None = None,
        constitution: str | None = None,
        principles: Literal["axis", "any"] = "axis",
        critique: Literal["none", "generate", "judge"] = "none",
        keep: Literal["all", "improved"] = "all",
        pass_threshold: float = 0.5,
        include_passed: bool = True,
        judge_mode: Literal["logprob", "generate"] = "logprob",
        judge_samples: int = 3,
        max_per_prompt: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 64,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("critique", critique, ("none", "generate", "judge"))
        check_choice("keep", keep, ("all", "improved"))
        check_choice("principles", principles, ("axis", "any"))
        check_choice("judge_mode", judge_mode, ("logprob", "generate"))
        if max_per_prompt < 1 or max_new_tokens < 1:
            raise ValueError("max_per_prompt and max_new_tokens must be >= 1")
        self.reviser = ModelRef(reviser, load_lm, "reviser")
        self.critic = ModelRef(critic or reviser, load_lm, "critic")
        self.judge = ModelRef(judge or reviser, load_lm, "judge")
        self.constitution = constitution_from(constitution)
        self.options: dict[str, Any] = dict(critique=critique, keep=keep, pass_threshold=pass_threshold,
                                            principles=principles, temperature=temperature,
                                            max_new_tokens=max_new_tokens, seed=seed)
        self.judge_mode, self.judge_samples = judge_mode, judge_samples
        self.include_passed, self.max_per_prompt, self.seed = include_passed, max_per_prompt, seed

    def revisions(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM) -> list[Revision]:
        needs_judge = self.options["critique"] == "judge" or self.options["keep"] == "improved"
        judge = (PointwiseJudge(self.judge.get(policy), self.constitution, mode=self.judge_mode,
                                samples=self.judge_samples, seed=self.seed) if needs_judge else None)
        critic = self.critic.get(policy) if self.options["critique"] == "generate" else None
        return critique_revise(drafts_of(prompts, samples, self.max_per_prompt), self.reviser.get(policy),
                               self.constitution, critic=critic, judge=judge, **self.options)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        revs = self.revisions(prompts, samples, policy)
        sft = [sft_example(r.prompt, r.target, self.name) for r in revs  # type: ignore[arg-type]
               if r.status == "revised" or (r.status == "passed" and self.include_passed)]
        counts = Counter(r.status for r in revs)
        stats = {"drafts": len(revs), **{s: counts.get(s, 0) for s in
                 ("revised", "passed", "not_improved", "truncated", "empty", "unparseable")},
                 "changed": sum(r.status == "revised" and r.revision != r.sample.text.strip() for r in revs),
                 "sft": len(sft)}
        return SignalResult(labels=[r.label(self.name) for r in revs], sft=sft, stats=stats)
