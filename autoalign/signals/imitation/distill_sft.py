"""Distilled SFT (strong-to-weak distillation; the dSFT step of Zephyr, Tunstall et al. 2023, sec. 3.1): a
stronger teacher model answers the round's prompts and the policy (the student) imitates the answers.

The policy's own samples are not used (evaluation still grades them); the teacher's answers are the targets. On
the lab the teacher is ``lab:teacher``, never the oracle: what it knows better it learned from its own corpus.
"""

from __future__ import annotations

from typing import Callable, Sequence

from autoalign.models.base import LM, Sampling
from autoalign.records import Prompt, Sample
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.model_feedback.common import ModelRef, sft_example


class DistilledSFT:
    """``teacher``: a model URI (or ``policy``, which makes this plain self-distillation). ``samples`` answers
    per prompt (greedy when ``temperature`` is 0, then one is enough); each distinct, non-empty answer becomes an
    SFT example of weight 1. ``samples``: the teacher's answers per prompt."""

    name = "distill_sft"

    def __init__(
        self,
        teacher: str = "lab:teacher",
        samples: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        if samples < 1 or max_new_tokens < 1:
            raise ValueError("samples and max_new_tokens must be >= 1")
        self.teacher = ModelRef(teacher, load_lm, "teacher")
        self.sampling = Sampling(n=samples, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                 seed=seed)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        teacher = self.teacher.get(policy)
        outs = teacher.generate([p.messages for p in prompts], self.sampling) if prompts else []
        result = SignalResult()
        empty = duplicate = 0
        for p, comps in zip(prompts, outs, strict=True):
            seen: set[str] = set()
            for c in comps:
                text = c.text.strip()
                if not text:
                    empty += 1
                elif text in seen:
                    duplicate += 1
                else:
                    seen.add(text)
                    result.sft.append(sft_example(p, text, self.name))
        result.stats = {"teacher": getattr(teacher, "uri", self.teacher.spec), "prompts": len(prompts),
                        "answers": sum(len(c) for c in outs), "sft": len(result.sft), "empty": empty,
                        "duplicate": duplicate}
        return result
