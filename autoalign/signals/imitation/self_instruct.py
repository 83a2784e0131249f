"""Self-Instruct (Wang et al. 2023): the policy writes new prompts from a seed pool, each filtered before it joins
the pool, and the pool grows as prompts are kept.

Two ways of asking, chosen by ``style``:

- ``instruct``: the paper's prompt, a numbered list of in-context seed tasks to continue (one new task per call);
  for models that follow instructions;
- ``prefix``: the model writes a user turn in its own chat format, started with the first words of one seed
  question (``prefix_words``). A small pretrained model like the lab's learns what users ask (its corpus weights
  user turns too) but does not condition on in-context examples; a seed's opening words steer it to that kind of
  task. Needs the model's chat template (``lm.tokenizer``).
- ``auto``: ``prefix`` when the LM exposes a tokenizer with a chat template, else ``instruct``.

Filters (sec. 2.3), in order; the first that applies is the candidate's rejection reason (``filter_reason``):
the format and length heuristics (``empty``, ``multiline``, ``too_short``, ``too_long``, ``keyword``: a word a
language model cannot act on, like image or graph, ``starts_with_punctuation``, ``non_ascii_start`` and
``unfinished``: cut off by the token limit), then ``duplicate`` (the same words as a pool item) and ``similar``
(ROUGE-L >= ``similarity``, 0.7 in the paper, with some pool item: seeds and every prompt kept so far). The novelty
filter is indexed (``rouge_index.RougeIndex``), so it does not score every pair.

Instance generation (sec. 2.3, input-first; ``inputs``): each kept instruction is given an input written by the
model (prefix style: the user turn continued after ``Input:``; instruct style: the paper's input-first prompt cut
to one task), or none when the model writes none. The output is the policy's answer, drawn by the loop's sampling
stage like any prompt's: the paper's output-first generation for classification tasks and its task-type step are
not needed for that. A lab model has seen no ``Input:`` line in its corpus: what it writes there is mostly a
continuation of the instruction's own words, so inputs are off by default.

Each new prompt records the seed it was written from; its ``axis``/``family`` are the seed's (a routing hint for a
principle or a judge, not ground truth: the model may have drifted to another kind of task). No ``env`` is carried:
a written prompt has no environment tool. ``synthesize`` also returns the lineage of every candidate examined:
parents, operation, the filter's decision and reason (the nearest pool item for a near duplicate); the loop stores
it as ``lineage.jsonl`` in the round's prompts stage.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.models.base import LM, Sampling
from autoalign.records import Prompt, stable_id
from autoalign.signals.imitation.rouge_index import RougeIndex, rouge_l, words

__all__ = ["rouge_l", "acceptable", "filter_reason", "propose_prompts", "synthesize", "user_turn_prefix"]

INSTRUCT_HEADER = "Come up with a series of tasks:"
# Self-Instruct's input-first instance generation prompt (Table 8), for one task
INPUT_FIRST = ("Come up with examples for the following tasks. Try to generate multiple examples when possible. If "
               "the task doesn't require additional input, you can generate the output directly.\n\nTask: {task}\n")
# the paper's keyword filter (bootstrap_instructions.py): things a language model cannot act on
PAPER_KEYWORDS = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
                  "draw", "plot", "go to")
_NO_INPUT = {"", "none", "no input", "n/a", "na", "-", "null", "<noinput>"}
_SENTINEL = "\x00SELF_INSTRUCT\x00"


def filter_reason(text: str, min_words: int = 3, max_words: int = 60, keywords: Sequence[str] = (),
                  ascii_start: bool = False) -> str | None:
    """Why Self-Instruct's heuristics drop ``text`` (the first rule that applies), or None when it passes: one
    line, ``min_words``..``max_words`` words, none of ``keywords`` (whole words, any case), starts with a letter or
    digit (an ASCII one with ``ascii_start``: the paper's "non-English character" rule), ends like a sentence (an
    instruction cut off by the token limit is dropped)."""
    t = text.strip()
    if not t:
        return "empty"
    if "\n" in t:
        return "multiline"
    n = len(t.split())
    if n < min_words:
        return "too_short"
    if n > max_words:
        return "too_long"
    if any(re.search(rf"\b{re.escape(k)}\b", t, re.IGNORECASE) for k in keywords):
        return "keyword"
    if not t[0].isalnum():
        return "starts_with_punctuation" if t[0] in string.punctuation or t[0].isascii() else "non_ascii_start"
    if ascii_start and not t[0].isascii():
        return "non_ascii_start"
    if t[-1] not in ".?!":
        return "unfinished"
    return None


def acceptable(text: str, min_words: int = 3, max_words: int = 60) -> bool:
    """Self-Instruct's heuristic filters with the lab's defaults (no keyword list, any letter may start)."""
    return filter_reason(text, min_words, max_words) is None


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


def parse_input(text: str) -> str | None:
    """The input a model wrote for a task: its first line, without an ``Input:`` label; None for no input
    (nothing, or ``none``/``n/a``-like words)."""
    line = text.strip().split("\n")[0].strip()
    line = re.sub(r"^input\s*:\s*", "", line, flags=re.IGNORECASE).strip()
    return None if line.lower().strip(".") in _NO_INPUT else line


def with_input(instruction: str, input_text: str | None) -> str:
    """The prompt a task with an input becomes (the paper's ``Input:`` field); the instruction alone without one."""
    return instruction if not input_text else f"{instruction}\nInput: {input_text}"


@dataclass
class Synthesis:
    """What ``synthesize`` made: the kept prompts, one lineage record per candidate examined, and counts."""

    prompts: list[Prompt] = field(default_factory=list)
    lineage: list[dict] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    candidates: int = 0
    with_input: int = 0
    rouge_scored: int = 0
    rouge_pairs: int = 0

    def stats(self) -> dict:
        return {"candidates": self.candidates, "kept": len(self.prompts), "rejected": dict(sorted(self.rejected.items())),
                "with_input": self.with_input, "rouge_scored": self.rouge_scored, "rouge_pairs": self.rouge_pairs}


def synthesize(
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
    min_words: int = 3,
    max_words: int = 60,
    keywords: Sequence[str] = (),
    ascii_start: bool = False,
    inputs: bool = False,
    input_max_new_tokens: int = 32,
) -> Synthesis:
    """Up to ``count`` new prompts written by ``lm`` from ``seed_prompts``, with their lineage; deterministic in
    its arguments.

    Sampling runs in up to ``rounds`` batches (oversampling 2x), each candidate filtered (module docstring) against
    the seeds and every prompt kept so far. Returns fewer than ``count`` only when the model keeps writing
    rejects."""
    out = Synthesis()
    if count <= 0 or not seed_prompts:
        return out
    prefix = user_turn_prefix(lm) if style in ("auto", "prefix") else None
    if style == "prefix" and prefix is None:
        raise ValueError("self-instruct style 'prefix' needs an LM with a chat template (lm.tokenizer)")
    rng = random.Random(f"self-instruct-{seed}")
    index = RougeIndex(p.text for p in seed_prompts)
    pool_ids = [p.id for p in seed_prompts]
    exact = {" ".join(words(p.text)): p.id for p in reversed(seed_prompts)}
    kept: list[tuple[Prompt, dict]] = []
    for r in range(rounds):
        need = count - len(kept)
        if need <= 0:
            break
        jobs: list[tuple[Prompt, object, str, list[str]]] = []  # (seed prompt, LM prompt, forced opening, parents)
        for _ in range(2 * need):
            anchor = seed_prompts[rng.randrange(len(seed_prompts))]
            if prefix is not None:
                opening = " ".join(anchor.text.split()[:prefix_words])
                jobs.append((anchor, prefix + opening, opening, [anchor.id]))
            else:
                same = [p for p in seed_prompts if p.family == anchor.family] or seed_prompts
                shot_ps = [anchor] + [same[rng.randrange(len(same))] for _ in range(shots - 1)]
                jobs.append((anchor, _instruct_prompt([p.text for p in shot_ps]), "", [p.id for p in shot_ps]))
        sampling = Sampling(n=1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                            seed=seed * 1000 + r)
        outs = _generate_distinct(lm, [j[1] for j in jobs], sampling)
        for (anchor, _, opening, parents), text in zip(jobs, outs):
            text = text.strip() if not opening else (opening + text).strip()
            if prefix is None:
                text = text.split("\n")[0].strip()
                text = re.sub(r"^Task \d+:\s*", "", text)
            out.candidates += 1
            record: dict = {"writer": "self_instruct", "operation": "generate", "batch": r, "generation": 1,
                            "parents": list(dict.fromkeys(parents)), "text": text}
            reason = filter_reason(text, min_words, max_words, keywords, ascii_start)
            key = " ".join(words(text))
            if reason is None and key in exact:
                reason, record["nearest"] = "duplicate", {"id": exact[key], "rouge_l": 1.0}
            if reason is None:
                near = index.nearest(text, similarity)
                if near is not None:
                    reason, record["nearest"] = "similar", {"id": pool_ids[near[0]], "rouge_l": round(near[1], 4)}
            if reason is not None:
                out.rejected[reason] += 1
                out.lineage.append({**record, "decision": "rejected", "reason": reason})
                continue
            pid = f"si-{stable_id(str(seed), text)}"
            index.add(text)
            pool_ids.append(pid)
            exact[key] = pid
            record.update(id=pid, decision="kept", reason=None)
            out.lineage.append(record)
            kept.append((Prompt(id=pid, messages=[{"role": "user", "content": text}], source="self_instruct",
                                axis=anchor.axis, family=anchor.family), record))
            if len(kept) >= count:
                break
    if inputs and kept:
        _add_inputs(lm, kept, prefix, seed, temperature, top_p, input_max_new_tokens, out)
    out.prompts = [p for p, _ in kept]
    out.rouge_scored, out.rouge_pairs = index.scored, index.compared
    return out


def _add_inputs(lm: LM, kept: list[tuple[Prompt, dict]], prefix: str | None, seed: int, temperature: float,
                top_p: float, max_new_tokens: int, out: Synthesis) -> None:
    """Instance generation, input-first: one input per kept instruction (in place; lineage updated)."""
    opener = "\nInput:"
    asks: list[object] = [prefix + p.text + opener if prefix is not None else
                          [{"role": "user", "content": INPUT_FIRST.format(task=p.text) + "Input:"}] for p, _ in kept]
    sampling = Sampling(n=1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                        seed=seed * 1000 + 999)
    texts = _generate_distinct(lm, asks, sampling)
    for i, ((p, record), text) in enumerate(zip(kept, texts)):
        inp = parse_input(text)
        record["input"] = inp
        if inp is None:
            continue
        content = with_input(p.text, inp)
        pid = f"si-{stable_id(str(seed), content)}"
        record.update(id=pid, operation="generate+input")
        kept[i] = (p.model_copy(update={"id": pid, "messages": [{"role": "user", "content": content}]}), record)
        out.with_input += 1


def propose_prompts(lm: LM, seed_prompts: list[Prompt], count: int, seed: int, **options) -> list[Prompt]:
    """Up to ``count`` new prompts (``synthesize``'s, without the lineage)."""
    return synthesize(lm, seed_prompts, count, seed, **options).prompts


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
    share: float = Field(0.5, gt=0.0, le=1.0, description="the share of the round's prompts the policy writes")
    style: Literal["auto", "prefix", "instruct"] = Field("auto", description=(
        "``prefix``: the policy continues a seed's opening words in its own chat format (small models); "
        "``instruct``: the paper's numbered list of seed tasks; ``auto``: prefix when the LM has a chat template"))
    prefix_words: int = Field(2, ge=1, description="prefix style: the seed words a new prompt starts with")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature of the new prompts")
    max_new_tokens: int = Field(48, ge=1, description="tokens per new prompt at most")
    similarity: float = Field(0.7, gt=0.0, le=1.0, description=(
        "a new prompt is kept only when its ROUGE-L with every pool prompt is below this (the paper's 0.7)"))
    min_words: int = Field(3, ge=1, description="a new instruction has at least this many words")
    max_words: int = Field(60, ge=1, description="a new instruction has at most this many words")
    keywords: list[str] = Field(default_factory=list, description=(
        "instructions holding one of these words are dropped (the paper's: image, graph, picture, file, map, "
        "draw, plot, go to; none by default)"))
    ascii_start: bool = Field(False, description="drop instructions that start with a non-ASCII character")
    inputs: bool = Field(False, description=(
        "instance generation, input-first: the policy writes an input for each new instruction (``Input:`` line)"))
    input_max_new_tokens: int = Field(32, ge=1, description="tokens per written input at most")


class SelfInstructWriter:
    """Replaces the last ``share`` of the round's prompts by prompts the policy writes from the rest. The
    writer's output depends on the policy, so the prompts stage is keyed by the policy's fingerprint. Its stats
    carry the lineage of every candidate (``lineage``, stored by the loop as the stage's ``lineage.jsonl``)."""

    uses_policy = True

    def __init__(self, cfg: SelfInstructConfig):
        self.cfg = cfg

    def __call__(self, prompts: list[Prompt], lm: LM, seed: int) -> tuple[list[Prompt], dict]:
        c = self.cfg
        want = max(1, round(c.share * len(prompts)))
        made = synthesize(lm, prompts, want, seed=seed, style=c.style, prefix_words=c.prefix_words,
                          temperature=c.temperature, max_new_tokens=c.max_new_tokens, similarity=c.similarity,
                          min_words=c.min_words, max_words=c.max_words, keywords=c.keywords,
                          ascii_start=c.ascii_start, inputs=c.inputs, input_max_new_tokens=c.input_max_new_tokens)
        new = made.prompts
        return prompts[: len(prompts) - len(new)] + new, {"written": len(new), "asked": want, **made.stats(),
                                                          "lineage": made.lineage}
