"""Aligners with inspectors at inference (Ngweta et al. 2024): every answer of the wrapped policy is scored by each
criterion's inspector; the criteria it fails are routed (``route``) to their aligners, applied one after the other
in a fixed order, each rewriting the answer the previous one left. The policy is used only through the ``LM``
protocol (its ``generate``), so it may be any model, one served over an OpenAI-compatible endpoint included.

The order, by default harmless -> honest -> helpful: harmlessness decides whether the request is answered at all
(refuse, or help with a harmless one), honesty then whether what is said can be stated (abstain, correct a false
premise), and helpfulness last fixes the content of the answer the first two let stand; a content fix made first
could be thrown away by a later refusal. Routing reads the inspectors on the policy's draft only (one inspection
per answer; an aligner's output is not re-inspected), so an answer's aligners are known before any of them runs.

The inspectors and aligners are the newest artifacts of kinds ``inspector.<criterion>`` / ``aligner.<criterion>``
(the ``aligners_inspectors`` signal); a criterion missing either is never applied. Role ``variant`` measures the
wrapped policy beside the plain one as ``<suite>@<tag>``; ``replace`` measures it instead of the policy (the plain
policy in a round that has no trained criterion yet)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.models.base import LM, Completion, Prompt, Sampling

DEFAULT_ORDER = ["harmless", "honest", "helpful"]


def route(scores: Mapping[str, float], thresholds: Mapping[str, float], order: Sequence[str]) -> list[str]:
    """The criteria whose aligner an answer needs, in application order: those of ``order`` whose inspector score
    is below its threshold (the inspector says the answer fails it). A criterion without a score or a threshold
    (no inspector) is never routed; one outside ``order`` is not applied."""
    return [c for c in order if c in scores and c in thresholds and scores[c] < thresholds[c]]


@dataclass
class RoutedAnswer:
    """One answer through the wrapper: the inspectors' scores on the draft, the aligners that ran (in order), the
    draft and final text, and its cost (tokens the policy and the aligners generated)."""

    draft: str
    final: str
    scores: dict[str, float]
    applied: list[str]
    draft_tokens: int | None
    aligner_tokens: int = 0
    steps: list[str] = field(default_factory=list)  # the text after each applied aligner

    def record(self) -> dict[str, Any]:
        return {"draft": self.draft, "final": self.final, "scores": {k: round(v, 6) for k, v in self.scores.items()},
                "applied": self.applied, "steps": self.steps, "draft_tokens": self.draft_tokens,
                "aligner_tokens": self.aligner_tokens}


class AlignersInspectorsLM:
    """The policy followed by inspectors and aligners, as one ``LM``. ``inspectors`` / ``aligners``: criterion ->
    ``Inspector`` / ``AlignerModel`` (``autoalign.signals.model_feedback.aligners_inspectors``). Aligners rewrite
    greedily with ``max_new_tokens`` (default: the request's). ``logprobs`` is the policy's own; a rewritten
    completion's ``logprob`` is None. ``records`` keeps every answer's routing; ``stats`` counts them, with the
    seconds spent in the policy and in inspecting and aligning."""

    def __init__(self, policy: LM, inspectors: Mapping[str, Any], aligners: Mapping[str, Any],
                 order: Sequence[str] = tuple(DEFAULT_ORDER), max_new_tokens: int | None = None):
        self.policy, self.order, self.max_new_tokens = policy, list(order), max_new_tokens
        usable = [c for c in self.order if c in inspectors and c in aligners]
        self.inspectors = {c: inspectors[c] for c in usable}
        self.aligners = {c: aligners[c] for c in usable}
        self.uri = f"aligners-inspectors:{policy.uri}"
        self.records: list[RoutedAnswer] = []
        self.stats: dict[str, Any] = {"answers": 0, "rewritten": 0, **{f"applied.{c}": 0 for c in usable},
                                      "policy_seconds": 0.0, "wrapper_seconds": 0.0}

    def fingerprint(self) -> str:
        key = json.dumps([self.policy.fingerprint(), self.order, self.max_new_tokens,
                          {c: i.fingerprint() for c, i in self.inspectors.items()},
                          {c: [a.lm.fingerprint(), a.template, a.principle] for c, a in self.aligners.items()}])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        start = time.monotonic()
        drafts = self.policy.generate(list(prompts), sampling)
        middle = time.monotonic()
        flat = [(p, c) for p, cs in zip(prompts, drafts) for c in cs]
        scores = {c: insp.scores([p for p, _ in flat], [d.text for _, d in flat])
                  for c, insp in self.inspectors.items()}
        thresholds = {c: insp.threshold for c, insp in self.inspectors.items()}
        answers = [RoutedAnswer(draft=d.text, final=d.text, scores={c: s[i] for c, s in scores.items()},
                                applied=[], draft_tokens=d.num_tokens) for i, (_, d) in enumerate(flat)]
        for a in answers:
            a.applied = route(a.scores, thresholds, self.order)
        greedy = Sampling(n=1, temperature=0.0, top_p=1.0, max_new_tokens=self.max_new_tokens or sampling.max_new_tokens,
                          seed=sampling.seed, stop=sampling.stop)
        for c in self.order:  # each aligner rewrites, in one batch, the answers routed to it
            todo = [i for i, a in enumerate(answers) if c in a.applied]
            if not todo or c not in self.aligners:
                continue
            aligner = self.aligners[c]
            outs = aligner.lm.generate([aligner.messages(flat[i][0], answers[i].final) for i in todo], greedy)
            for i, out in zip(todo, outs):
                text = out[0].text.strip()
                answers[i].final = text or answers[i].final  # an empty rewrite leaves the answer as it was
                answers[i].steps.append(text)
                answers[i].aligner_tokens += out[0].num_tokens or 0
        self.stats["policy_seconds"] += middle - start
        self.stats["wrapper_seconds"] += time.monotonic() - middle
        result, pos = [], 0
        for cs in drafts:
            row = []
            for d in cs:
                a = answers[pos]
                pos += 1
                self.records.append(a)
                self.stats["answers"] += 1
                for c in a.applied:
                    self.stats[f"applied.{c}"] += 1
                if a.final != d.text:
                    self.stats["rewritten"] += 1
                    d = Completion(text=a.final, finish_reason="stop", logprob=None,
                                   num_tokens=(a.draft_tokens or 0) + a.aligner_tokens)
                row.append(d)
            result.append(row)
        return result

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        return self.policy.logprobs(prompts, continuations)


class AlignersInspectorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["aligners_inspectors"] = "aligners_inspectors"
    order: list[str] = Field(default_factory=lambda: list(DEFAULT_ORDER), min_length=1, description=(
        "the criteria applied, in this order (each needs an inspector and an aligner the aligners_inspectors "
        "signal trained); default harmless, honest, helpful: whether to answer first, the content last"))
    role: Literal["variant", "replace"] = Field("variant", description=(
        "``variant``: measured beside the plain policy as ``<suite>@<tag>``; ``replace``: instead of it"))
    max_new_tokens: int | None = Field(None, ge=1, description=(
        "tokens an aligner generates per rewrite at most (default: the evaluation's max_new_tokens)"))
    tag: str = Field("aligners", description="the variant's suite tag: ``lab@aligners``")
    suites: list[str] = Field(default_factory=lambda: ["lab"], description="the suites the variant is measured on")


class AlignersInspectors:
    def __init__(self, cfg: AlignersInspectorsConfig, where: str, sampling_temperature: float = 0.8):
        self.cfg, self.where, self.tag, self.suites = cfg, where, cfg.tag, cfg.suites
        self.role: Literal["variant", "replace"] = cfg.role
        self.last: AlignersInspectorsLM | None = None  # the latest wrapped model (its records and stats)

    def evaluated_uri(self, k: int, policy_uri: str) -> str:
        return policy_uri if self.role == "variant" or k == 0 else f"aligners-inspectors:{policy_uri}"

    def parts(self, k: int, env: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The inspectors and aligners of round ``k`` (newest artifacts by then), for the criteria of ``order``."""
        from autoalign.signals.model_feedback.aligners_inspectors import (
            ALIGNER,
            INSPECTOR,
            AlignerModel,
            Inspector,
            artifact_kind,
        )

        inspectors, aligners = {}, {}
        for c in self.cfg.order:
            ins, ali = env.artifact(artifact_kind(INSPECTOR, c), k), env.artifact(artifact_kind(ALIGNER, c), k)
            if ins is not None and ali is not None:
                inspectors[c], aligners[c] = Inspector(ins), AlignerModel(ali)
        return inspectors, aligners

    def wrap(self, k: int, policy_lm: Any, env: Any) -> Any | None:
        inspectors, aligners = self.parts(k, env)
        if not inspectors:
            return policy_lm if self.role == "replace" else None
        max_new = self.cfg.max_new_tokens or getattr(getattr(env, "eval", None), "max_new_tokens", None)
        self.last = AlignersInspectorsLM(policy_lm, inspectors, aligners, self.cfg.order, max_new)
        return self.last
