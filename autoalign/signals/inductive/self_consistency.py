"""Self-consistency as a training signal: LMSI (Huang et al. 2022, "Large Language Models Can Self-Improve",
arXiv 2210.11610), with the uncertainty the vote exposes used as an honesty signal.

The policy's own samples vote. Where most samples agree on one answer, the agreeing samples become SFT targets
("high-confidence, self-consistent answers", LMSI sec. 3.1); where they scatter, the model does not know, and the
target is an abstention. No label, judge or ground truth is read: the signal comes from the policy alone.

Answer keys (what a sample votes for):

- a refusal votes ``<refuse>``, an abstention ``<abstain>`` (behaviours are answers too: a harmful request the
  model mostly refuses yields refusal targets);
- otherwise, for a ``calc`` prompt, ``final_number``; for a ``python_tests`` prompt, the code block with its
  whitespace collapsed; else ``final_answer``. ``None``: no answer, which is not a vote (but still counts in k).

Prompt kinds decide what low agreement means:

- *answer* prompts (a short verifiable/factual answer is expected: a ``calc``/``python_expr`` env, or some sample
  gave an answer) abstain on low agreement, including "no sample had a parseable answer";
- *code* prompts (``python_tests``) and *free-form* prompts (no env and no sample gave an answer, e.g. a benign
  how-to request) never abstain: textual disagreement between programs or essays is not ignorance. In free-form
  prompts a sample that neither refuses nor abstains votes ``<comply>``, so the vote is over behaviours.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Sequence, TypeVar

from autoalign.answers import code_block, final_answer, final_number, is_abstention, is_refusal
from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample, stable_id
from autoalign.signals.base import SignalResult, StageContext, group_samples

REFUSE, ABSTAIN, COMPLY = "<refuse>", "<abstain>", "<comply>"


K = TypeVar("K", bound=Hashable)


def majority_vote(keys: Sequence[K | None]) -> tuple[K | None, int]:
    """The most frequent non-``None`` key and its count; ties go to the key seen first. ``(None, 0)`` when no
    key is given. LMSI's majority vote over reasoning paths: argmax_a sum_i 1[a_i = a] (Wang et al. 2022, eq. 1)."""
    counts = Counter(k for k in keys if k is not None)
    best: K | None = None
    best_n = 0
    for k in keys:  # first-seen order, so the first key to reach the top count wins a tie
        if k is not None and counts[k] > best_n:
            best, best_n = k, counts[k]
    return best, best_n


def answer_key(text: str, env_kind: str | None) -> str | None:
    """What one response votes for (see the module docstring)."""
    if is_refusal(text):
        return REFUSE
    if is_abstention(text):
        return ABSTAIN
    if env_kind == "calc":
        return final_number(text)
    if env_kind == "python_tests":
        code = code_block(text)
        return " ".join(code.split()) if "def " in code else None
    return final_answer(text)


@dataclass(frozen=True)
class Vote:
    """One prompt's vote: keys per sample, the majority key, agreement = count / k, the decision taken."""

    kind: str  # "answer" | "code" | "free_form"
    keys: list[str | None]
    majority: str | None
    count: int
    agreement: float
    decision: str  # "confident" | "abstain" | "skip"


class SelfConsistency:
    """LMSI: SFT on majority-consistent samples of confident prompts, abstention on uncertain ones.

    ``min_agreement``: a prompt is confident when the majority answer has at least this share of the k samples.
    ``abstain_below``: an answer prompt whose agreement is below this share is trained to say ``abstention_text``.
    ``abstention_text``: the answer taught where the model is uncertain.
    In between, the prompt is skipped. ``max_per_prompt``: distinct majority samples kept per confident prompt
    (a seeded choice when more agree), and the most preference pairs per prompt. ``preference_pairs``: also emit
    DPO pairs (majority sample over minority sample; abstention over an answer where the model is uncertain).
    ``abstain_on_tasks``: also train abstention on uncertain prompts the environment can check (calc, expr).
    Off by default: disagreement on a computation is a skill to learn, not a fact the model lacks, and teaching
    "I don't know" there trades helpfulness for nothing (the execution signal teaches those instead).
    ``free_form``: ``vote`` (default) trains the majority behaviour of free-form prompts (refuse / comply);
    ``skip`` leaves them out. Self-consistency only amplifies what the model already does most: on a harmful
    request it mostly complies with, the vote teaches compliance (LMSI was made for answers that can be voted on),
    so a run whose other signals do not teach harmlessness should skip them.
    ``checkable``: ``vote`` (default) also votes on prompts an environment can check (they carry an ``env``);
    ``skip`` leaves them to a signal that runs the check (``execution``): a consistent wrong answer is still wrong,
    and the vote would teach it.
    """

    name = "self_consistency"

    def __init__(self, min_agreement: float = 0.5, abstain_below: float = 0.3, max_per_prompt: int = 2,
                 abstention_text: str = "I don't know.", preference_pairs: bool = False, seed: int = 0,
                 abstain_on_tasks: bool = False, free_form: str = "vote", checkable: str = "vote") -> None:
        if not 0.0 <= abstain_below <= min_agreement <= 1.0:
            raise ValueError("self_consistency: need 0 <= abstain_below <= min_agreement <= 1")
        if max_per_prompt < 1:
            raise ValueError("self_consistency: max_per_prompt must be >= 1")
        if free_form not in ("vote", "skip"):
            raise ValueError(f"self_consistency: free_form must be 'vote' or 'skip', not {free_form!r}")
        if checkable not in ("vote", "skip"):
            raise ValueError(f"self_consistency: checkable must be 'vote' or 'skip', not {checkable!r}")
        self.min_agreement = min_agreement
        self.abstain_below = abstain_below
        self.max_per_prompt = max_per_prompt
        self.abstention_text = abstention_text
        self.preference_pairs = preference_pairs
        self.seed = seed
        self.abstain_on_tasks = abstain_on_tasks
        self.free_form = free_form
        self.checkable = checkable

    def vote(self, prompt: Prompt, samples: Sequence[Sample]) -> Vote:
        """Key every sample, take the majority, decide (pure; no model call)."""
        env_kind = (prompt.env or {}).get("kind")
        keys = [answer_key(s.text, env_kind) for s in samples]
        if env_kind == "python_tests":
            kind = "code"
        elif env_kind is not None or any(k not in (None, REFUSE) for k in keys):
            kind = "answer"
        else:
            kind = "free_form"
            keys = [COMPLY if k is None else k for k in keys]
        majority, count = majority_vote(keys)
        agreement = count / len(samples) if samples else 0.0  # LMSI confidence: share of the k paths that agree
        if (kind == "free_form" and self.free_form == "skip") or (env_kind is not None and self.checkable == "skip"):
            decision = "skip"
        elif majority is not None and agreement >= self.min_agreement:
            decision = "confident"
        elif kind == "answer" and agreement < self.abstain_below and (env_kind is None or self.abstain_on_tasks):
            decision = "abstain"
        else:
            decision = "skip"
        return Vote(kind, keys, majority, count, agreement, decision)

    def _pick(self, prompt_id: str, candidates: list[Sample]) -> list[Sample]:
        """Distinct texts (first sample of each), at most ``max_per_prompt``: a seeded choice, in index order."""
        seen: dict[str, Sample] = {}
        for s in candidates:
            seen.setdefault(s.text, s)
        distinct = list(seen.values())
        if len(distinct) > self.max_per_prompt:
            rng = random.Random(stable_id(str(self.seed), prompt_id, self.name))
            distinct = sorted(rng.sample(distinct, self.max_per_prompt), key=lambda s: s.index)
        return distinct

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM | None = None,
                 ctx: StageContext | None = None) -> SignalResult:
        groups = group_samples(samples)
        out = SignalResult()
        counts = Counter({"confident": 0, "abstain": 0, "skip": 0, "no_samples": 0})
        kinds: Counter[str] = Counter()
        agreements: list[float] = []
        for prompt in prompts:
            group = groups.get(prompt.id, [])
            if not group:
                counts["no_samples"] += 1
                continue
            v = self.vote(prompt, group)
            counts[v.decision] += 1
            kinds[v.kind] += 1
            agreements.append(v.agreement)
            for s, key in zip(group, v.keys):
                verdict = "none" if key is None else "majority" if key == v.majority else "minority"
                out.labels.append(Label(prompt_id=prompt.id, sample_index=s.index, signal=self.name,
                                        verdict=verdict, score=v.agreement,
                                        detail={"key": key, "majority": v.majority, "decision": v.decision,
                                                "kind": v.kind}))
            self._train_data(prompt, group, v, out)
        n = len(agreements)
        out.stats = {
            "prompts": len(prompts),
            "confident_prompts": counts["confident"],
            "abstain_prompts": counts["abstain"],
            "skipped_prompts": counts["skip"],
            "prompts_without_samples": counts["no_samples"],
            "mean_agreement": round(sum(agreements) / n, 6) if n else 0.0,
            "prompt_kinds": dict(sorted(kinds.items())),
            "sft": len(out.sft),
            "preferences": len(out.preferences),
        }
        return out

    def _train_data(self, prompt: Prompt, group: list[Sample], v: Vote, out: SignalResult) -> None:
        def sft(text: str) -> SFTExample:
            return SFTExample(prompt_id=prompt.id, signal=self.name,
                              messages=[*prompt.messages, {"role": "assistant", "content": text}])

        k = len(group)
        if v.decision == "confident":
            chosen = self._pick(prompt.id, [s for s, key in zip(group, v.keys) if key == v.majority])
            out.sft.extend(sft(s.text) for s in chosen)
            if self.preference_pairs:
                share = Counter(v.keys)
                minority = self._distinct([(s, key) for s, key in zip(group, v.keys) if key != v.majority])
                # A pair only where the vote prefers the chosen answer: margin = agreement - share(rejected) > 0.
                minority = [(s, key) for s, key in minority if share[key] < v.count]
                for j in range(min(self.max_per_prompt, len(minority))):
                    rejected, key = minority[j]
                    out.preferences.append(Preference(
                        prompt_id=prompt.id, prompt=prompt.messages, chosen=chosen[j % len(chosen)].text,
                        rejected=rejected.text, signal=self.name, margin=(v.count - share[key]) / k))
        elif v.decision == "abstain":
            out.sft.append(sft(self.abstention_text))
            if self.preference_pairs:
                answered = self._distinct([(s, key) for s, key in zip(group, v.keys)
                                           if key is not None and key != ABSTAIN])
                for s, _ in answered[: self.max_per_prompt]:
                    out.preferences.append(Preference(prompt_id=prompt.id, prompt=prompt.messages,
                                                      chosen=self.abstention_text, rejected=s.text,
                                                      signal=self.name, margin=1.0 - v.agreement))

    @staticmethod
    def _distinct(pairs: list[tuple[Sample, str | None]]) -> list[tuple[Sample, str | None]]:
        """First sample of each distinct text, in sample-index order."""
        seen: set[str] = set()
        out = []
        for s, key in pairs:
            if s.text not in seen:
                seen.add(s.text)
                out.append((s, key))
        return out
