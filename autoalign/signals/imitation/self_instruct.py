"""Self-Instruct (Wang et al. 2023): the policy writes new prompts from a seed pool; near-duplicates are filtered
out by ROUGE-L (sec. 2.3: kept only when ROUGE-L with every existing instruction is below 0.7).

Two ways of asking, chosen by ``style``:

- ``instruct``: the paper's prompt, a numbered list of in-context seed tasks to continue (one new task per call);
  for models that follow instructions;
- ``prefix``: the model writes a user turn in its own chat format, started with the first words of one seed
  question (``prefix_words``). A small pretrained model like the lab's learns what users ask (its corpus weights
  user turns too) but does not condition on in-context examples; a seed's opening words steer it to that kind of
  task. Needs the model's chat template (``lm.tokenizer``).
- ``auto``: ``prefix`` when the LM exposes a tokenizer with a chat template, else ``instruct``.

Each new prompt records the seed it was written from; its ``axis``/``family`` are the seed's (a routing hint for a
principle or a judge, not ground truth: the model may have drifted to another kind of task). No ``env`` is carried:
a written prompt has no environment tool.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.models.base import LM, Sampling
from autoalign.records import Prompt, stable_id

INSTRUCT_HEADER = "Come up with a series of tasks:"
_WORD = re.compile(r"\w+")
_SENTINEL = "\x00SELF_INSTRUCT\x00"


class _Words:
    """The lab's words for ROUGE: lower-cased ``\\w+`` runs (letters of any script, digits, ``_``). rouge-score's
    default tokenizer keeps only ``[a-z0-9]`` runs, which would split ``x_1`` and drop non-ASCII words."""

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return _WORD.findall(text.lower())


@lru_cache(maxsize=1)
def _rouge_l_scorer() -> Any:
    from rouge_score.rouge_scorer import RougeScorer  # imported when first needed (it imports nltk)

    return RougeScorer(["rougeL"], tokenizer=_Words())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (Lin 2004, eqs. 2-4, beta = 1) over lower-cased word tokens: LCS-based recall R = LCS/m,
    precision P = LCS/n, F = 2PR / (P + R); computed by Google's ``rouge-score`` (the reference reimplementation of
    ROUGE-1.5.5) with the tokenizer above. 0 when either text has no word."""
    return float(_rouge_l_scorer().score(reference, candidate)["rougeL"].fmeasure)


def acceptable(text: str, min_words: int = 3, max_words: int = 60) -> bool:
    """Self-Instruct's heuristic filters, generalised: one line, a sensible length, starts with a letter or digit,
    ends like a sentence (an instruction cut off by the token limit is dropped)."""
    t = text.strip()
    if not t or "\n" in t or not t[0].isalnum() or t[-1] not in ".?!":
        return False
    n = len(t.split())
    return min_words <= n <= max_words


def user_turn_prefix(lm: LM) -> str | None:
    """The raw text that opens a user turn in ``lm``'s chat template (e.g. ``<|user|>\\n``), or None when the LM
    exposes no chat template (an API model)."""
    tok = getattr(lm, "tokenizer", None)
    if tok is None or not getattr(tok, "chat_template", None):
        return None
    text = tok.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False)
    return text.split(_SENTINEL)[0] if _SENTINEL in text else None


def _instruct_prompt(examples: Sequence[str]) -> list[dict[str, str]]:
    lines = [INSTRUCT_HEADER] + [f"Task {i + 1}: {q}" for i, q in enumerate(examples)]
    lines.append(f"Task {len(examples) + 1}:")
    return [{"role": "user", "content": "\n".join(lines)}]


def propose_prompts(
    lm: LM,
    seed_prompts: list[Prompt],
    count: int,
    seed: int,
    *,
    style: Literal["auto", "prefix", "instruct"] = "auto",
    shots: int = 6,
    prefix_words: int = 2,
    temperature: float = 1.0,
    top_p: float = 0.95,
    max_new_tokens: int = 48,
    similarity: float = 0.7,
    rounds: int = 4,
) -> list[Prompt]:
    """Up to ``count`` new prompts written by ``lm`` from ``seed_prompts``; deterministic in its arguments.

    Sampling runs in up to ``rounds`` batches (oversampling 2x), each candidate filtered by ``acceptable`` and by
    ROUGE-L < ``similarity`` against the seeds and every prompt kept so far. Returns fewer than ``count`` only
    when the model keeps writing rejects."""
    if count <= 0 or not seed_prompts:
        return []
    prefix = user_turn_prefix(lm) if style in ("auto", "prefix") else None
    if style == "prefix" and prefix is None:
        raise ValueError("self-instruct style 'prefix' needs an LM with a chat template (lm.tokenizer)")
    rng = random.Random(f"self-instruct-{seed}")
    pool = [p.text for p in seed_prompts]
    kept: list[Prompt] = []
    for r in range(rounds):
        need = count - len(kept)
        if need <= 0:
            break
        jobs: list[tuple[Prompt, object, str]] = []  # (seed prompt, LM prompt, forced opening)
        for _ in range(2 * need):
            anchor = seed_prompts[rng.randrange(len(seed_prompts))]
            if prefix is not None:
                opening = " ".join(anchor.text.split()[:prefix_words])
                jobs.append((anchor, prefix + opening, opening))
            else:
                same = [p for p in seed_prompts if p.family == anchor.family] or seed_prompts
                shots_ = [anchor.text] + [same[rng.randrange(len(same))].text for _ in range(shots - 1)]
                jobs.append((anchor, _instruct_prompt(shots_), ""))
        sampling = Sampling(n=1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                            seed=seed * 1000 + r)
        outs = _generate_distinct(lm, [j[1] for j in jobs], sampling)
        for (anchor, _, opening), text in zip(jobs, outs):
            text = text.strip() if not opening else (opening + text).strip()
            if prefix is None:
                text = text.split("\n")[0].strip()
                text = re.sub(r"^Task \d+:\s*", "", text)
            if not acceptable(text):
                continue
            if any(rouge_l(text, other) >= similarity for other in pool):
                continue
            pool.append(text)
            kept.append(Prompt(
                id=f"si-{stable_id(str(seed), text)}", messages=[{"role": "user", "content": text}],
                source="self_instruct", axis=anchor.axis, family=anchor.family,
            ))
            if len(kept) >= count:
                break
    return kept


def _generate_distinct(lm: LM, prompts: list, sampling: Sampling) -> list[str]:
    """One sample per entry, where a prompt repeated k times gets k different samples (``n = k``): one model call
    per distinct repeat count, so no sample is drawn and thrown away."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p if isinstance(p, str) else repr(p), []).append(i)
    by_size: dict[int, list[list[int]]] = {}
    for idx in groups.values():
        by_size.setdefault(len(idx), []).append(idx)
    result: list[str] = [""] * len(prompts)
    for size, members in sorted(by_size.items()):
        outs = lm.generate([prompts[idx[0]] for idx in members], replace(sampling, n=size))
        for idx, comps in zip(members, outs):
            for i, c in zip(idx, comps):
                result[i] = c.text
    return result


# ---- as a prompt writer of the loop (``prompts.writers``) -----------------------------------------------------
class SelfInstructConfig(BaseModel):
    """Self-Instruct prompt proposal: the round's policy writes ``share`` of the round's ``count`` prompts from a
    seed pool (the prompts drawn from ``source``); the rest are seed-pool prompts as they are (so a lab run keeps
    prompts the oracle can grade)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["self_instruct"] = "self_instruct"
    share: float = Field(0.5, gt=0.0, le=1.0)
    style: Literal["auto", "prefix", "instruct"] = "auto"
    prefix_words: int = Field(2, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    max_new_tokens: int = Field(48, ge=1)
    similarity: float = Field(0.7, gt=0.0, le=1.0)


class SelfInstructWriter:
    """Replaces the last ``share`` of the round's prompts by prompts the policy writes from the rest. The
    writer's output depends on the policy, so the prompts stage is keyed by the policy's fingerprint."""

    uses_policy = True

    def __init__(self, cfg: SelfInstructConfig):
        self.cfg = cfg

    def __call__(self, prompts: list[Prompt], lm: LM, seed: int) -> tuple[list[Prompt], dict]:
        c = self.cfg
        want = max(1, round(c.share * len(prompts)))
        new = propose_prompts(lm, prompts, want, seed=seed, style=c.style, prefix_words=c.prefix_words,
                              temperature=c.temperature, max_new_tokens=c.max_new_tokens, similarity=c.similarity)
        return prompts[: len(prompts) - len(new)] + new, {"written": len(new), "asked": want}
