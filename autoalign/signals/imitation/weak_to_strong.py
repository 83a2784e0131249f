"""Weak-to-strong generalisation (Burns et al. 2023) on the lab's binary judgement: "does this response follow
the principle?" (the yes/no judge question of the constitution, asked of the round's samples under a principle of
their prompt's axis). A weak supervisor (``lab:tiny``) answers it; its soft labels train the strong student (the
policy, ``lab:small``) through the ``w2s`` training phase with the auxiliary confidence loss
(``autoalign.train.losses.confidence_loss``, their eq. 1).

The items are split by prompt (``heldout`` of the prompts, seeded): the training split becomes the round's SFT
rows (the judge prompt, the weak label ``Yes``/``No`` hardened, ``weight`` = the weak supervisor's confidence in
it: the soft label, see ``autoalign.train.weak_to_strong``); the held-out split trains nothing. Both are saved as
the ``w2s_items`` artifact (judge prompt, response, split, the weak P(Yes)), so evaluation
(``autoalign.evaluate.weak_to_strong``) grades them against the lab oracle and computes the performance gap
recovered. Nothing here reads a label: the weak supervisor is used zero-shot (Burns et al. fine-tune it on a
labelled split first; a signal has no labels to do that with, so the weak supervisor is the weak model as it is).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from autoalign.models.base import LM
from autoalign.records import Prompt, Sample, SFTExample, stable_id
from autoalign.signals.base import Artifact, SignalResult, StageContext
from autoalign.signals.model_feedback.common import (
    ModelRef,
    check_choice,
    constitution_from,
    judge_label,
    score_samples,
    tally,
)
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge

ITEMS = "w2s_items.jsonl"


def heldout_prompt(prompt_id: str, seed: int, share: float) -> bool:
    """Whether a prompt's items are held out: a seeded hash of its id below ``share`` (a stable split that does
    not depend on the batch or the other prompts)."""
    return int(stable_id(str(seed), "w2s-split", prompt_id), 16) / 16**16 < share


class WeakToStrong:
    """``weak``: the weak supervisor (a URI); ``heldout``: the share of prompts held out for evaluation;
    ``principles``: ``axis`` (a principle of the prompt's axis) or ``any``."""

    name = "weak_to_strong"

    def __init__(
        self,
        weak: str = "lab:tiny",
        heldout: float = 0.5,
        principles: Literal["axis", "any"] = "axis",
        constitution: str | None = None,
        seed: int = 0,
        load_lm: Callable | None = None,
    ):
        check_choice("principles", principles, ("axis", "any"))
        if not 0.0 < heldout < 1.0:
            raise ValueError("heldout must be in (0, 1)")
        self.weak = ModelRef(weak, load_lm, "weak supervisor")
        self.constitution = constitution_from(constitution)
        self.heldout, self.principles, self.seed = heldout, principles, seed
        self.items: list[dict] = []  # the last call's items (also saved as an artifact inside a run)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        judge = PointwiseJudge(self.weak.get(policy), self.constitution)
        scored = score_samples(judge, prompts, samples, self.seed, self.principles)
        by_id = {p.id: p for p in prompts}
        result = SignalResult(labels=[judge_label(x, self.name, judge.lm.uri) for x in scored])
        self.items = []
        for x in scored:
            if x.verdict.value is None:
                continue
            p_yes = float(x.verdict.value)
            messages = judge.prompt(JudgeItem(by_id[x.sample.prompt_id].text, x.sample.text, x.principle.text))
            split = "test" if heldout_prompt(x.sample.prompt_id, self.seed, self.heldout) else "train"
            self.items.append({"prompt_id": x.sample.prompt_id, "sample_index": x.sample.index, "split": split,
                               "principle": x.principle.id, "response": x.sample.text, "messages": messages,
                               "weak": round(p_yes, 6)})
            if split == "train":
                answer = "Yes" if p_yes >= 0.5 else "No"
                result.sft.append(SFTExample(prompt_id=x.sample.prompt_id,
                                             messages=[*messages, {"role": "assistant", "content": answer}],
                                             signal=self.name, weight=max(p_yes, 1.0 - p_yes)))
        weak = [it["weak"] for it in self.items]
        stats: dict = {**tally([x.verdict for x in scored]), "weak": judge.lm.uri, "items": len(self.items),
                       "train": len(result.sft), "heldout": len(self.items) - len(result.sft),
                       "weak_positive_share": round(sum(w >= 0.5 for w in weak) / len(weak), 4) if weak else None,
                       "weak_mean_confidence": round(sum(max(w, 1 - w) for w in weak) / len(weak), 4) if weak else None}
        if ctx is not None:
            from autoalign.store import write_jsonl

            write_jsonl(ctx.artifact_dir("w2s") / ITEMS, self.items)
            result.artifacts["w2s_items"] = Artifact(kind="w2s_items", path=f"w2s/{ITEMS}")
        result.stats = stats
        return result
