"""LAB (Large-scale Alignment for chatBots, Sudalairaj et al. 2024): taxonomy-guided synthetic data. Per leaf of a
taxonomy of knowledge and skills (``autoalign.signals.imitation.taxonomy``), a teacher writes new questions from
the leaf's seed examples and answers them (sec. 3.1, "taxonomy-driven data generation"); the teacher, as a judge,
keeps the pairs that follow the leaf's principle (sec. 3.1, the evaluator/filter step); each kept pair is an SFT
example tagged with its kind and leaf (``SFTExample.subset = "<kind>/<leaf path>"``), so the recipe's training
phases can tune knowledge first and skills after, replaying some knowledge (sec. 3.2, ``train.phases[].data`` and
``replay``).

How the teacher is asked, for the lab's small models (``self_instruct`` explains why): with ``style: prefix`` it
writes a user turn in its own chat format, opened with one of the leaf's seed questions' ``prefix`` (default: its
first ``prefix_words`` words; the seeds taken in turn); ``instruct`` shows the leaf's seed questions as a numbered list to continue
(for instruction-following teachers); ``auto`` picks ``prefix`` when the teacher has a chat template. A knowledge
leaf's ``document`` is the teacher's context (a system turn) when it answers. The round's prompts and the policy's
samples are not used: the data comes from the taxonomy (evaluation still grades the policy's samples).

Rejected candidates are counted per leaf and reason: ``malformed`` (not one sentence-like line), ``duplicate``
(the same words as a seed or an earlier question), ``similar`` (ROUGE-L with one of the leaf's seeds or kept
questions at or above ``similarity``), ``empty_answer``, ``truncated`` (the answer hit ``max_new_tokens``),
``judge`` (P(Yes) under the principle below ``threshold``).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Literal, Sequence

from autoalign.errors import UserError
from autoalign.models.base import LM, Message, Sampling
from autoalign.records import Prompt, Sample, SFTExample, stable_id
from autoalign.signals.base import SignalResult, StageContext
from autoalign.signals.imitation.self_instruct import (
    _generate_distinct,
    _instruct_prompt,
    acceptable,
    rouge_l,
    user_turn_prefix,
)
from autoalign.signals.imitation.taxonomy import Leaf, Taxonomy, load_taxonomy
from autoalign.signals.model_feedback.common import ModelRef, constitution_from, principle_for
from autoalign.signals.model_feedback.judges import JudgeItem, PointwiseJudge

REASONS = ("malformed", "duplicate", "similar", "empty_answer", "truncated", "judge")
_NORM = re.compile(r"[\W_]+")


def normalised(text: str) -> str:
    """Lower-cased words joined by one space: what makes two questions "the same words"."""
    return _NORM.sub(" ", text.lower()).strip()


def opening(question: str, words: int) -> str:
    """The first ``words`` words of a seed question: the prefix that steers the teacher to the leaf's task."""
    return " ".join(question.split()[:words])


def anchors(leaf: Leaf, count: int, rng: random.Random) -> list[int]:
    """Which seed each of the leaf's ``count`` candidates starts from: the seeds in turn from a random first one,
    so every seed is used about equally (a leaf's first seed does not dominate its data)."""
    start = rng.randrange(len(leaf.seeds))
    return [(start + j) % len(leaf.seeds) for j in range(count)]


def subset_of(leaf: Leaf) -> str:
    """The data slice of a leaf's examples, ``<kind>/<path>``: a phase's ``data: knowledge`` selects every
    knowledge leaf, ``data: skill/helpful`` one branch of skills."""
    return f"{leaf.kind}/{leaf.path}"


class LabTaxonomy:
    """``taxonomy``: a YAML file (``taxonomy.py``), or None for the project's default over the lab's families.
    ``teacher`` writes and answers, ``judge`` (None: the teacher) filters; ``per_leaf`` candidates per leaf and
    round; a pair is kept when the judge's P(Yes) under a principle of the leaf's axis is at least
    ``threshold``.

    ``teacher``: the model URI that writes and answers the questions; ``judge``: the model URI that filters them
    (null: the teacher); ``per_leaf``: candidate questions written per leaf and round; ``style``: ``prefix`` (a user
    turn opened with a seed's first words, for small pretrained models), ``instruct`` (the seed list as a few-shot
    request) or ``auto``; ``prefix_words``: the seed words that open a prefix-style question (a seed's own
    ``prefix`` wins); ``question_tokens``: tokens a written question may take; ``threshold``: the least judge P(Yes)
    a kept pair needs; ``similarity``: a question whose ROUGE-L with a kept one reaches this is a near duplicate;
    ``documents``: a knowledge leaf's document goes in a system turn when the teacher answers."""

    name = "lab_taxonomy"

    def __init__(
        self,
        taxonomy: str | None = None,
        teacher: str = "lab:teacher",
        judge: str | None = None,
        per_leaf: int = 16,
        style: Literal["auto", "prefix", "instruct"] = "auto",
        prefix_words: int = 2,
        temperature: float = 1.0,
        top_p: float = 0.95,
        question_tokens: int = 48,
        max_new_tokens: int = 64,
        threshold: float = 0.5,
        similarity: float = 0.9,
        documents: bool = True,
        constitution: str | None = None,
        load_lm: Callable | None = None,
    ):
        if per_leaf < 1 or prefix_words < 1 or question_tokens < 1 or max_new_tokens < 1:
            raise ValueError("per_leaf, prefix_words, question_tokens and max_new_tokens must be >= 1")
        if not 0.0 <= threshold <= 1.0 or not 0.0 < similarity <= 1.0:
            raise ValueError("threshold must be in [0, 1] and similarity in (0, 1]")
        if style not in ("auto", "prefix", "instruct"):
            raise ValueError(f"style must be 'auto', 'prefix' or 'instruct', not {style!r}")
        self.taxonomy: Taxonomy = load_taxonomy(taxonomy)  # parsed once, here: a bad file fails the preflight
        self.teacher = ModelRef(teacher, load_lm, "teacher")
        self.judge = None if judge is None or judge == teacher else ModelRef(judge, load_lm, "judge")
        self.constitution = constitution_from(constitution)
        self.per_leaf, self.style, self.prefix_words = per_leaf, style, prefix_words
        self.temperature, self.top_p, self.question_tokens = temperature, top_p, question_tokens
        self.max_new_tokens, self.threshold, self.similarity = max_new_tokens, threshold, similarity
        self.documents = documents

    # ---- the three steps: write questions, answer them, judge the pairs -------------------------------------
    def questions(self, teacher: LM, seed: int) -> list[tuple[Leaf, str]]:
        """``per_leaf`` candidate questions per leaf, as the teacher wrote them (unfiltered), leaf by leaf."""
        prefix = user_turn_prefix(teacher) if self.style in ("auto", "prefix") else None
        if self.style == "prefix" and prefix is None:
            raise UserError("lab_taxonomy style 'prefix' needs a teacher with a chat template (use style: instruct)")
        rng = random.Random(f"lab-taxonomy-{seed}")
        jobs: list[tuple[Leaf, object, str]] = []  # (leaf, teacher prompt, forced opening)
        for leaf in self.taxonomy.leaves:
            for i in anchors(leaf, self.per_leaf, rng):
                seed_q = leaf.seeds[i].question
                if prefix is not None:
                    start = leaf.seeds[i].prefix or opening(seed_q, self.prefix_words)
                    jobs.append((leaf, prefix + start, start))
                else:
                    others = [s.question for j, s in enumerate(leaf.seeds) if j != i]
                    jobs.append((leaf, _instruct_prompt([seed_q, *rng.sample(others, len(others))]), ""))
        sampling = Sampling(n=1, temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.question_tokens,
                            seed=seed)
        texts = _generate_distinct(teacher, [j[1] for j in jobs], sampling)
        out = []
        for (leaf, _, start), text in zip(jobs, texts, strict=True):
            if start:
                q = (start + text).strip()
            else:
                q = re.sub(r"^Task \d+:\s*", "", text.strip().split("\n")[0].strip())
            out.append((leaf, q))
        return out

    def screen(self, candidates: Sequence[tuple[Leaf, str]]) -> tuple[list[tuple[Leaf, str]], list[tuple[Leaf, str]]]:
        """(the candidates that pass the question filters, (leaf, reason) for each that does not), in order."""
        seen = {normalised(s.question) for leaf in self.taxonomy.leaves for s in leaf.seeds}
        pool: dict[str, list[str]] = {leaf.path: [s.question for s in leaf.seeds] for leaf in self.taxonomy.leaves}
        passed, rejected = [], []
        for leaf, q in candidates:
            if not acceptable(q):
                rejected.append((leaf, "malformed"))
            elif normalised(q) in seen:
                rejected.append((leaf, "duplicate"))
            elif self.similarity < 1.0 and any(rouge_l(q, other) >= self.similarity for other in pool[leaf.path]):
                rejected.append((leaf, "similar"))
            else:
                seen.add(normalised(q))
                pool[leaf.path].append(q)
                passed.append((leaf, q))
        return passed, rejected

    def answer_prompt(self, leaf: Leaf, question: str) -> list[Message]:
        context = [{"role": "system", "content": leaf.document}] if self.documents and leaf.document else []
        return [*context, {"role": "user", "content": question}]

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM,
                 ctx: StageContext | None = None) -> SignalResult:
        seed = ctx.seed if ctx is not None else 0  # the run's seed for this round and signal
        teacher = self.teacher.get(policy)
        judge_lm = teacher if self.judge is None else self.judge.get(policy)
        passed, rejected = self.screen(self.questions(teacher, seed))
        greedy = Sampling(n=1, temperature=0.0, max_new_tokens=self.max_new_tokens, seed=seed)
        answers = teacher.generate([self.answer_prompt(leaf, q) for leaf, q in passed], greedy) if passed else []
        judged: list[tuple[Leaf, Prompt, str]] = []
        for (leaf, q), comps in zip(passed, answers, strict=True):
            text = comps[0].text.strip() if comps else ""
            if not text:
                rejected.append((leaf, "empty_answer"))
            elif comps[0].finish_reason == "length":
                rejected.append((leaf, "truncated"))
            else:
                prompt = Prompt(id=f"lt-{stable_id(str(seed), leaf.path, q)}", messages=[{"role": "user", "content": q}],
                                source=self.name, axis=leaf.axis, family=leaf.path)
                judged.append((leaf, prompt, text))
        judge = PointwiseJudge(judge_lm, self.constitution, seed=seed)
        principles = [principle_for(self.constitution, p, seed, "axis") for _, p, _ in judged]
        verdicts = judge.score([JudgeItem(p.text, a, pr.text) for (_, p, a), pr in zip(judged, principles)])
        result = SignalResult()
        p_yes: dict[str, list[float]] = {}
        for (leaf, prompt, text), v in zip(judged, verdicts, strict=True):
            value = v.value if v.value is not None else 0.0
            p_yes.setdefault(leaf.path, []).append(value)
            if value < self.threshold:  # the LAB filter: the teacher-judge's verdict under the leaf's principle
                rejected.append((leaf, "judge"))
                continue
            result.sft.append(SFTExample(prompt_id=prompt.id, messages=[*prompt.messages,
                                                                        {"role": "assistant", "content": text}],
                                         signal=self.name, subset=subset_of(leaf)))
        result.stats = self.stats(teacher, judge_lm, result.sft, rejected, p_yes)
        return result

    def stats(self, teacher: LM, judge: LM, kept: Sequence[SFTExample], rejected: Sequence[tuple[Leaf, str]],
              p_yes: dict[str, list[float]]) -> dict:
        """Per leaf: generated, kept, rejected per reason and the judge's mean P(Yes); and the totals."""
        per_leaf: dict[str, dict] = {}
        for leaf in self.taxonomy.leaves:
            scores = p_yes.get(leaf.path, [])
            per_leaf[leaf.path] = {"kind": leaf.kind, "generated": self.per_leaf, "kept": 0,
                                   "rejected": dict.fromkeys(REASONS, 0),
                                   "judge_p_yes": round(sum(scores) / len(scores), 4) if scores else None}
        for e in kept:
            per_leaf[e.subset.split("/", 1)[1]]["kept"] += 1  # type: ignore[union-attr]
        for leaf, reason in rejected:
            per_leaf[leaf.path]["rejected"][reason] += 1
        totals = {r: sum(x["rejected"][r] for x in per_leaf.values()) for r in REASONS}
        kinds = sorted({leaf.kind for leaf in self.taxonomy.leaves})
        return {"teacher": getattr(teacher, "uri", self.teacher.spec), "judge": getattr(judge, "uri", "teacher"),
                "taxonomy": self.taxonomy.name, "leaves": len(per_leaf),
                "generated": self.per_leaf * len(per_leaf), "kept": len(kept),
                **{f"kept_{k}": sum(x["kept"] for x in per_leaf.values() if x["kind"] == k) for k in kinds},
                **{f"rejected_{r}": n for r, n in totals.items()}, "per_leaf": per_leaf}
