"""Context distillation (Askell et al. 2021, sec. 3.3) and principle-driven Self-Align (Sun et al. 2023, sec. 3):
the policy answers with the constitution's principles and exemplars in its context, and is fine-tuned on those
answers without them, so the behaviour the context elicits becomes the policy's default.

Askell et al. distil the prompt's effect by matching the prompted model's distribution (a KL loss); Self-Align,
whose step this is, fine-tunes on the prompted model's answers (SFT, "principle engraving"). This signal writes
that SFT data: the context is ``system_prompt`` (for the lab: its ``SYSTEM_PROMPT``, under which the lab corpus
behaves better), optionally followed by the constitution's principles (``principles: true``) and ``exemplars``
(demonstration turns placed before the request, Self-Align's in-context exemplars). The gap it must close is
measured by evaluation: the recipe evaluates each round with and without the system prompt
(``autoalign.decoding.system_prompt``).
"""

from __future__ import annotations

from typing import Sequence

from autoalign.answers import normalise
from autoalign.models.base import LM, Sampling
from autoalign.records import Label, Prompt, Sample
from autoalign.signals.base import SignalResult, StageContext, group_samples
from autoalign.signals.model_feedback.common import constitution_from, sft_example


def in_context(messages: list[dict[str, str]], context: str, exemplars: Sequence[dict[str, str]] = ()) -> list[dict[str, str]]:
    """The chat the policy answers during distillation: the context as its system message, then the exemplars as
    (user, assistant) turns, then the request; the training example is the request alone."""
    turns: list[dict[str, str]] = [{"role": "system", "content": context}] if context else []
    for ex in exemplars:
        turns += [{"role": "user", "content": ex["user"]}, {"role": "assistant", "content": ex["assistant"]}]
    return [*turns, *[m for m in messages if m.get("role") != "system"]]


class ContextDistillation:
    """``system_prompt``: the context's text; ``principles``: also list the constitution's principles in it;
    ``exemplars``: ``[{user, assistant}]`` demonstrations; ``samples``: answers per prompt with the context.
    ``samples`` answers per prompt at ``temperature``
    (0: the greedy answer), each an SFT target (distinct texts). ``skip_same``: leave out prompts whose answer with
    the context equals the policy's own (first) sample without it: nothing to distil there, and an SFT step on it
    only sharpens what the model already does."""

    name = "context_distillation"

    def __init__(
        self,
        system_prompt: str = "",
        principles: bool = False,
        exemplars: list[dict[str, str]] | None = None,
        constitution: str | None = None,
        samples: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 48,
        skip_same: bool = False,
        seed: int = 0,
    ):
        if samples < 1 or max_new_tokens < 1:
            raise ValueError("samples and max_new_tokens must be >= 1")
        for ex in exemplars or []:
            if set(ex) != {"user", "assistant"}:
                raise ValueError("each exemplar is {user: ..., assistant: ...}")
        lines = [system_prompt.strip()] if system_prompt.strip() else []
        if principles:
            lines += [f"- {p.text}" for p in constitution_from(constitution).principles]
        if not lines:
            raise ValueError("context distillation needs a system_prompt or principles: true")
        self.context = "\n".join(lines)
        self.exemplars = list(exemplars or [])
        self.sampling = Sampling(n=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        self.skip_same = skip_same

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        groups = group_samples(samples)
        outs = policy.generate([in_context(p.messages, self.context, self.exemplars) for p in prompts], self.sampling)
        out = SignalResult()
        same = empty = 0
        for p, cs in zip(prompts, outs):
            own = groups.get(p.id, [])
            texts = list(dict.fromkeys(c.text.strip() for c in cs if c.text.strip()))
            empty += not texts
            is_same = bool(own and texts and normalise(texts[0]) == normalise(own[0].text))
            same += is_same
            keep = texts if not (self.skip_same and is_same) else []
            out.sft.extend(sft_example(p, t, self.name) for t in keep)
            if own:  # the target, read against the policy's own answer without the context
                out.labels.append(Label(prompt_id=p.id, sample_index=own[0].index, signal=self.name,
                                        verdict="same" if is_same else "distilled", score=0.0, kind="none",
                                        selected=bool(keep),
                                        detail={"revision": keep[0] if keep else None, "context_answers": texts}))
        n = len(prompts)
        out.stats = {"prompts": n, "sft": len(out.sft), "empty": empty,
                     "same_as_without_context": same, "changed_share": round(1 - same / n, 4) if n else 0.0}
        return out
