"""Aligner (Ji et al. 2024, "Aligner: efficient alignment by learning to correct"): a small correction model
learns to rewrite a policy's draft answer into an aligned one, from (question, draft, corrected) triples; at
inference it runs after any upstream policy, which is never trained.

Here the triples come from constitutional critique-and-revision (``critique_revise.py``): the draft is a sample of
the round's policy, the correction its revision; drafts a judge passes become identity corrections (copy the
draft), the paper's "residual" warm-up, so the corrector learns to leave good answers alone. The signal emits the
triples as SFT examples in the corrector's format; the loop trains the corrector as it trains any policy, and
evaluation wraps an upstream policy with it (``AlignedLM``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Callable, Literal, Sequence, cast

from autoalign.models.base import LM, Completion, Message, Prompt, Sampling, prompt_key
from autoalign.records import Prompt as PromptRecord
from autoalign.records import Sample, SFTExample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.critique_revise import ConstitutionalAI

# The correction query, after the paper's "Edit the following Question-Answer pair to make it more helpful and
# harmless: {question} | {answer}", with the third H.
ALIGNER_TEMPLATE = (
    "Edit the following Question-Answer pair to make it more helpful, harmless and honest.\n"
    "Question: {question}\nAnswer: {answer}"
)


def question_of(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


def aligner_prompt(question: str, draft: str, template: str = ALIGNER_TEMPLATE) -> list[Message]:
    return [{"role": "user", "content": template.format(question=question, answer=draft)}]


class AlignerData(ConstitutionalAI):
    """Correction triples as SFT examples for the corrector: user = ``template`` over (question, draft),
    assistant = the revision (or the draft itself when the judge passed it and ``include_passed``). Parameters
    as ``ConstitutionalAI``; ``max_per_prompt`` drafts per prompt (default 2: more triples per prompt).

    ``reviser``: the model that rewrites drafts (``policy`` or a URI); ``critic``: the model that writes critiques
    with ``critique: generate`` (null: the reviser); ``critique``: ``none`` (revise every draft directly),
    ``generate`` (a written critique, then a revision with it) or ``judge`` (revise only drafts the judge fails);
    ``keep``: ``all`` revisions, or only those the judge scores above their draft (``improved``);
    ``pass_threshold``: with ``critique: judge``, a draft scoring at least this passes unrevised;
    ``include_passed``: passed drafts become identity corrections (draft -> draft); ``template``: the corrector's
    input, over ``{question}`` and ``{draft}`` (the ``aligner`` wrapper must use the same)."""

    name = "aligner"

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
        max_per_prompt: int = 2,
        temperature: float = 0.0,
        max_new_tokens: int = 64,
        template: str = ALIGNER_TEMPLATE,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        super().__init__(reviser=reviser, critic=critic, judge=judge, constitution=constitution,
                         principles=principles, critique=critique, keep=keep, pass_threshold=pass_threshold,
                         include_passed=include_passed, judge_mode=judge_mode, judge_samples=judge_samples,
                         max_per_prompt=max_per_prompt, temperature=temperature, max_new_tokens=max_new_tokens,
                         seed=seed, load_lm=load_lm)
        if "{question}" not in template or "{answer}" not in template:
            raise ValueError("aligner template must contain {question} and {answer}")
        self.template = template

    def __call__(self, prompts: Sequence[PromptRecord], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        revs = self.revisions(prompts, samples, policy)
        sft = []
        for r in revs:
            if r.status == "revised" or (r.status == "passed" and self.include_passed):
                msgs = aligner_prompt(r.prompt.text, r.sample.text, self.template)
                target = cast(str, r.target)  # a revised or passed draft has its target
                sft.append(SFTExample(prompt_id=r.prompt.id, messages=[*msgs, {"role": "assistant", "content": target}],
                                      signal=self.name))
        counts = Counter(r.status for r in revs)
        stats = {"triples": len(sft), "identity": sum(r.target == r.sample.text for r in revs if r.target is not None),
                 **{s: counts.get(s, 0) for s in ("revised", "passed", "not_improved", "truncated", "empty",
                                                  "unparseable")}}
        return SignalResult(labels=[r.label(self.name) for r in revs], sft=sft, stats=stats)


class AlignedLM:
    """An upstream policy followed by a correction model, as one ``LM`` (what evaluation measures).

    ``generate``: the policy drafts (with the requested sampling), the corrector rewrites each draft (greedy by
    default: ``correct_temperature``). A completion's ``logprob`` is the corrector's log-probability of its
    correction given the draft. ``logprobs(prompt, continuation)``: the corrector's log-probability of the
    continuation given the policy's greedy draft, an approximation of the pipeline's likelihood (the exact one sums
    over all drafts)."""

    def __init__(self, policy: LM, corrector: LM, template: str = ALIGNER_TEMPLATE, correct_temperature: float = 0.0,
                 draft_tokens: int | None = None):
        self.policy, self.corrector, self.template = policy, corrector, template
        self.correct_temperature, self.draft_tokens = correct_temperature, draft_tokens
        self.uri = f"aligned:{policy.uri}+{corrector.uri}"

    def fingerprint(self) -> str:
        key = json.dumps([self.policy.fingerprint(), self.corrector.fingerprint(), self.template,
                          self.correct_temperature, self.draft_tokens])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def _correct_sampling(self, sampling: Sampling) -> Sampling:
        return Sampling(n=1, temperature=self.correct_temperature, top_p=sampling.top_p,
                        max_new_tokens=sampling.max_new_tokens, seed=sampling.seed, stop=sampling.stop)

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        draft_sampling = sampling if self.draft_tokens is None else Sampling(
            **{**sampling.__dict__, "max_new_tokens": self.draft_tokens})
        drafts = self.policy.generate(list(prompts), draft_sampling)
        asks = [aligner_prompt(question_of(p), c.text, self.template) for p, cs in zip(prompts, drafts) for c in cs]
        fixed = self.corrector.generate(asks, self._correct_sampling(sampling))
        out, pos = [], 0
        for cs in drafts:
            out.append([fixed[pos + j][0] for j in range(len(cs))])
            pos += len(cs)
        return out

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        greedy = Sampling(n=1, temperature=0.0, max_new_tokens=self.draft_tokens or 64)
        uniq = {prompt_key(p): p for p in prompts}  # multiple-choice scoring repeats a prompt per choice
        drafted = dict(zip(uniq, (cs[0].text for cs in self.policy.generate(list(uniq.values()), greedy))))
        asks = [aligner_prompt(question_of(p), drafted[prompt_key(p)], self.template) for p in prompts]
        return self.corrector.logprobs(asks, list(continuations))
