"""Evol-Instruct (WizardLM, Xu et al. 2024): the policy rewrites prompts into harder ones (in-depth evolution) or
into new prompts of the same domain (in-breadth evolution), generation after generation; failed evolutions are
eliminated and their parent goes back to the pool.

Operations (sec. 3.1): in depth, ``add_constraints``, ``deepen``, ``concretize``, ``increase_reasoning`` and
``complicate_input``; in breadth, ``breadth``. One operation is drawn per prompt and generation (seeded).

Two ways of asking, chosen by ``style`` (as Self-Instruct's writer):

- ``instruct``: the paper's operation prompts (Appendix: "I want you act as a Prompt Rewriter ..." with the
  operation's method line, and the Prompt Creator prompt for breadth), for models that follow instructions;
- ``prefix``: the lab's chat format, for small pretrained models that follow no meta-instruction: the model
  continues a user turn that the operation opens. In depth, the turn starts with the whole parent and an
  operation's opening words (``Make sure`` for a constraint, ``Also,`` to deepen, ``Explain each step, then`` for
  reasoning steps, ``Use this input:`` for a complicated input); ``concretize`` keeps the first half of the
  parent's words and lets the model rewrite the rest; ``breadth`` keeps its first ``prefix_words`` words (a new
  task of the same kind, as Self-Instruct's prefix style). What a tiny lab model does with it, honestly: it mostly
  ends the turn at once (eliminated as ``unchanged`` or ``malformed``) or appends a second request of a family it
  knows; the breadth operation is the one that works best. The elimination rules keep what it does well and the
  statistics per operation show which.
- ``auto``: ``prefix`` when the LM exposes a tokenizer with a chat template, else ``instruct``.

Elimination (sec. 3.3, adapted: the paper's ChatGPT equality check is replaced by ROUGE-L), in order, the first
rule that applies is the reason: ``empty``; ``unchanged`` (the parent's words); ``copied_prompt`` (it copies the
operation prompt's words: "given prompt", "#Rewritten Prompt#" ...); ``malformed`` (Self-Instruct's format
heuristics, multi-line inputs allowed); ``similar`` (ROUGE-L with the parent >= ``similarity``); ``duplicate`` (the
words of a prompt of the round or of another evolution); then the policy answers the evolved prompt (greedy) and
``unanswerable`` (an empty answer, a refusal or an "I don't know") or ``short_answer`` (fewer than
``min_answer_words`` words) eliminate it. The answer only tests the prompt: the loop's sampling stage answers the
kept prompts like any other. Under 3H the refusal rule has a cost the paper did not face: it removes the harmful
prompts the policy refuses and keeps those it complies with (``eliminate_refusals: false`` turns it off).

Each round's writer replaces the last ``share`` of the drawn prompts by their most evolved surviving descendant
(the prompt itself when every evolution of it failed); the lineage of every evolution (parent, root, generation,
operation, decision, reason, the policy's test answer) goes to the prompts stage's ``lineage.jsonl``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoalign.answers import is_abstention, is_refusal
from autoalign.models.base import LM, Sampling
from autoalign.records import Prompt, stable_id
from autoalign.signals.imitation.rouge_index import rouge_l, words
from autoalign.signals.imitation.self_instruct import _generate_distinct, filter_reason, user_turn_prefix

Operation = Literal["add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input", "breadth"]
OPERATIONS: tuple[Operation, ...] = ("add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input",
                               "breadth")

# WizardLM's in-depth evolving prompt (Xu et al. 2024, Appendix; Evol_Instruct/depth.py) and its method lines
DEPTH_TEMPLATE = (
    "I want you act as a Prompt Rewriter.\nYour objective is to rewrite a given prompt into a more complex version to "
    "make those famous AI systems (e.g., chatgpt and GPT4) a bit harder to handle.\nBut the rewritten prompt must be "
    "reasonable and must be understood and responded by humans.\nYour rewriting cannot omit the non-text parts such "
    "as the table and code in #The Given Prompt#:. Also, please do not omit the input in #The Given Prompt#.\nYou "
    "SHOULD complicate the given prompt using the following method:\n{method}\nYou should try your best not to make "
    "the #Rewritten Prompt# become verbose, #Rewritten Prompt# can only add 10 to 20 words into #The Given Prompt#.\n"
    "'#The Given Prompt#', '#Rewritten Prompt#', 'given prompt' and 'rewritten prompt' are not allowed to appear in "
    "#Rewritten Prompt#\n#The Given Prompt#:\n{prompt}\n#Rewritten Prompt#:\n")
DEPTH_METHODS = {
    "add_constraints": "Please add one more constraints/requirements into #The Given Prompt#",
    "deepen": "If #The Given Prompt# contains inquiries about certain issues, the depth and breadth of the inquiry "
              "can be increased.",
    "concretize": "Please replace general concepts with more specific concepts.",
    "increase_reasoning": "If #The Given Prompt# can be solved with just a few simple thinking processes, you can "
                          "rewrite it to explicitly request multiple-step reasoning.",
    "complicate_input": "Please add a complex input to #The Given Prompt#, such as a table, a list of numbers or a "
                        "piece of code, on which the request must be answered.",
}
# WizardLM's in-breadth evolving prompt (Evol_Instruct/breadth.py)
BREADTH_TEMPLATE = (
    "I want you act as a Prompt Creator.\nYour goal is to draw inspiration from the #Given Prompt# to create a brand "
    "new prompt.\nThis new prompt should belong to the same domain as the #Given Prompt# but be even more rare.\nThe "
    "LENGTH and complexity of the #Created Prompt# should be similar to that of the #Given Prompt#.\nThe #Created "
    "Prompt# must be reasonable and must be understood and responded by humans.\n'#Given Prompt#', '#Created "
    "Prompt#', 'given prompt' and 'created prompt' are not allowed to appear in #Created Prompt#\n#Given Prompt#:\n"
    "{prompt}\n#Created Prompt#:\n")
# prefix style: the words that open each in-depth operation after the whole parent
PREFIX_OPENINGS = {"add_constraints": "Make sure", "deepen": "Also,", "increase_reasoning": "Explain each step, then",
                   "complicate_input": "Use this input:"}
COPIED = ("given prompt", "rewritten prompt", "created prompt", "prompt rewriter", "prompt creator")


def operation_prompt(op: str, parent: str, prefix: str | None, prefix_words: int = 2) -> tuple[object, str]:
    """(what the LM is asked, the opening its continuation is appended to) for one evolution of ``parent``."""
    if prefix is None:
        text = BREADTH_TEMPLATE.format(prompt=parent) if op == "breadth" else \
            DEPTH_TEMPLATE.format(method=DEPTH_METHODS[op], prompt=parent)
        return [{"role": "user", "content": text}], ""
    tokens = parent.split()
    if op == "breadth":
        opening = " ".join(tokens[:prefix_words])
    elif op == "concretize":
        opening = " ".join(tokens[: max(1, math.ceil(len(tokens) / 2))])
    else:
        opening = f"{parent.strip()} {PREFIX_OPENINGS[op]}"
    return prefix + opening, opening


def evolved_text(raw: str, opening: str) -> str:
    """The evolved prompt from the model's output: the opening and its continuation (prefix style), or the output
    without a trailing blank-line-separated tail (instruct style)."""
    if opening:
        return (opening + raw).strip()
    return raw.strip().split("\n\n")[0].strip()


def elimination_reason(text: str, parent: str, similarity: float = 0.9, min_words: int = 3,
                       max_words: int = 80) -> tuple[str | None, float]:
    """Why the evolution ``parent -> text`` fails before any answer (module docstring), or None; with the ROUGE-L
    of the two (0 when not computed)."""
    if not text.strip():
        return "empty", 0.0
    if words(text) == words(parent):
        return "unchanged", 1.0
    low = text.lower()
    if any(c in low for c in COPIED):
        return "copied_prompt", 0.0
    if filter_reason(" ".join(text.split()), min_words, max_words) is not None:
        return "malformed", 0.0
    r = rouge_l(text, parent)
    if r >= similarity:
        return "similar", r
    return None, r


def answer_reason(answer: str, min_answer_words: int = 2, refusals: bool = True) -> str | None:
    """Why the policy's answer says the evolved prompt failed: ``unanswerable`` (empty, a refusal when
    ``refusals``, an "I don't know": WizardLM's "sorry" rule) or ``short_answer`` (fewer than ``min_answer_words``
    words), else None."""
    a = answer.strip()
    if not a or (refusals and is_refusal(a)) or is_abstention(a):
        return "unanswerable"
    if len(words(a)) < min_answer_words:
        return "short_answer"
    return None


class EvolInstructConfig(BaseModel):
    """Evol-Instruct prompt evolution: ``share`` of the round's prompts evolved for ``rounds`` generations."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["evol_instruct"] = "evol_instruct"
    share: float = Field(0.5, gt=0.0, le=1.0, description="the share of the round's prompts that are evolved")
    rounds: int = Field(2, ge=1, le=8, description="generations of evolution (each evolves the last survivors)")
    operations: list[Operation] = Field(default_factory=lambda: list(OPERATIONS), min_length=1, description=(
        "the operations drawn from: add_constraints, deepen, concretize, increase_reasoning, complicate_input "
        "(in depth), breadth (in breadth)"))
    style: Literal["auto", "prefix", "instruct"] = Field("auto", description=(
        "``instruct``: the paper's operation prompts; ``prefix``: the policy continues a user turn each operation "
        "opens (small models); ``auto``: prefix when the LM has a chat template"))
    prefix_words: int = Field(2, ge=1, description="prefix style, breadth: the parent's words a new prompt starts with")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature of the evolutions")
    max_new_tokens: int = Field(48, ge=1, description="tokens per evolution at most")
    similarity: float = Field(0.9, gt=0.0, le=1.0, description=(
        "an evolution whose ROUGE-L with its parent reaches this is eliminated as too similar"))
    min_words: int = Field(3, ge=1, description="an evolved prompt has at least this many words")
    max_words: int = Field(80, ge=1, description="an evolved prompt has at most this many words")
    answer_max_new_tokens: int = Field(48, ge=1, description="tokens of the policy's test answer at most")
    min_answer_words: int = Field(2, ge=1, description="a test answer shorter than this eliminates the evolution")
    eliminate_refusals: bool = Field(True, description=(
        "a refusal of the policy eliminates the evolution (the paper's rule); false keeps harmful prompts the policy "
        "refuses, which the rule otherwise removes from the round while keeping those it complies with"))


class EvolInstructWriter:
    """The loop's prompt writer (``prompts.writers: [{method: evol_instruct}]``); keyed by the policy."""

    uses_policy = True

    def __init__(self, cfg: EvolInstructConfig):
        self.cfg = cfg

    def __call__(self, prompts: list[Prompt], lm: LM, seed: int) -> tuple[list[Prompt], dict]:
        want = min(len(prompts), max(1, round(self.cfg.share * len(prompts))))
        keep, roots = prompts[: len(prompts) - want], prompts[len(prompts) - want:]
        final, stats, lineage = evolve(lm, roots, seed, self.cfg, others=[p.text for p in keep])
        return keep + final, {**stats, "asked": want, "lineage": lineage}


def evolve(lm: LM, roots: Sequence[Prompt], seed: int, cfg: EvolInstructConfig,
           others: Sequence[str] = ()) -> tuple[list[Prompt], dict, list[dict]]:
    """Each root evolved for ``cfg.rounds`` generations: (its most evolved survivor or itself, in root order;
    stats; lineage records)."""
    c = cfg
    prefix = user_turn_prefix(lm) if c.style in ("auto", "prefix") else None
    if c.style == "prefix" and prefix is None:
        raise ValueError("evol-instruct style 'prefix' needs an LM with a chat template (lm.tokenizer)")
    rng = random.Random(f"evol-instruct-{seed}")
    current = list(roots)
    depth = [0] * len(roots)
    seen = {" ".join(words(t)) for t in [*others, *(p.text for p in roots)]}
    lineage: list[dict] = []
    tried: Counter = Counter()
    survived: Counter = Counter()
    eliminated: Counter = Counter()
    answer_sampling = Sampling(n=1, temperature=0.0, top_p=1.0, max_new_tokens=c.answer_max_new_tokens, seed=seed)
    for g in range(1, c.rounds + 1):
        ops = [c.operations[rng.randrange(len(c.operations))] for _ in current]
        asks = [operation_prompt(op, p.text, prefix, c.prefix_words) for op, p in zip(ops, current)]
        sampling = Sampling(n=1, temperature=c.temperature, top_p=0.95, max_new_tokens=c.max_new_tokens,
                            seed=seed * 1000 + g)
        raws = _generate_distinct(lm, [a[0] for a in asks], sampling)
        records: list[dict] = []
        for i, (op, parent, (_, opening), raw) in enumerate(zip(ops, current, asks, raws)):
            text = evolved_text(raw, opening)
            reason, r = elimination_reason(text, parent.text, c.similarity, c.min_words, c.max_words)
            if reason is None and " ".join(words(text)) in seen:
                reason = "duplicate"
            records.append({"writer": "evol_instruct", "generation": g, "operation": op, "parents": [parent.id],
                            "root": roots[i].id, "text": text, "rouge_l_parent": round(r, 4), "reason": reason})
            tried[op] += 1
        todo = [i for i, rec in enumerate(records) if rec["reason"] is None]
        outs = lm.generate([[{"role": "user", "content": records[i]["text"]}] for i in todo], answer_sampling) \
            if todo else []
        for i, comps in zip(todo, outs):
            answer = comps[0].text if comps else ""
            records[i]["answer"] = answer[:300]
            records[i]["reason"] = answer_reason(answer, c.min_answer_words, c.eliminate_refusals)
        for i, rec in enumerate(records):
            if rec["reason"] is not None:
                eliminated[rec["reason"]] += 1
                lineage.append({**rec, "decision": "eliminated"})
                continue  # the parent goes back to the pool: the next generation evolves it again
            pid = f"ev-{stable_id(str(seed), rec['text'])}"
            seen.add(" ".join(words(rec["text"])))
            root = roots[i]
            current[i] = Prompt(id=pid, messages=[{"role": "user", "content": rec["text"]}], source="evol_instruct",
                                axis=root.axis, family=root.family)
            depth[i] = g
            survived[rec["operation"]] += 1
            lineage.append({**rec, "id": pid, "decision": "kept"})
    stats = {
        "written": sum(d > 0 for d in depth), "generations": c.rounds, "candidates": sum(tried.values()),
        "kept": sum(survived.values()), "eliminated": dict(sorted(eliminated.items())),
        "by_operation": {op: {"tried": tried[op], "kept": survived[op]} for op in c.operations if tried[op]},
        "depth": {str(d): n for d, n in sorted(Counter(depth).items())},
    }
    return current, stats, lineage
