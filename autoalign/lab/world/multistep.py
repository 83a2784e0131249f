"""Multi-step lab tasks with ground truth and step structure, for process supervision (Math-Shepherd, Wang et al.
2024): chained arithmetic and list pipelines, each solved in one step per operation.

- ``chain``: "Start with 23. Add 5, then subtract 8, then add 4. What is the result?" solved as
  ``23 + 5 = 28. 28 - 8 = 20. 20 + 4 = 24. The answer is 24.`` (env: the calculator, ``23 + 5 - 8 + 4``);
- ``pipeline``: "Take the list [3, 1, 2]. Sort it, then reverse it, then keep the first 2." solved as
  ``Sorted: [1, 2, 3]. Reversed: [3, 2, 1]. First 2: [3, 2]. The answer is [3, 2].`` (env: the interpreter,
  ``sorted([3, 1, 2])[::-1][:2]``).

A step is one sentence before ``The answer is``; ``Task.truth["steps"]`` holds each step's true value, which the
oracle (``autoalign.lab.oracle.multistep``) grades step by step. Opt-in only: these families are NOT in
``autoalign.lab.world.FAMILIES``, the pretraining corpus or the lab suite (a change there would change every cached
lab model and the lab's measured figures); a run asks for them with ``prompts.source: lab_multistep``.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from autoalign.lab.world.common import ANSWER, Task, draw, in_split

MULTISTEP_FAMILIES: tuple[str, ...] = ("chain", "pipeline")
# the ``lab_multistep`` source's default: the lab's one-step worked arithmetic (its units column, which the lab
# models write) beside the two multi-step families (which they rarely do: they are not in the corpus)
DEFAULT_FAMILIES: tuple[str, ...] = ("arithmetic", "chain", "pipeline")

CHAIN_Q = ["Start with {a}. {ops}. What is the result?", "Begin at {a}. {ops}. What number do you get?"]
_OP_WORDS = {"+": "add", "-": "subtract"}


def chain(rng: random.Random) -> Task:
    """2-3 one-digit additions or subtractions applied to a number of 1-2 digits, never below zero."""
    value = rng.randint(10, 60)
    start, ops, steps, values = value, [], [], []
    for _ in range(rng.randint(2, 3)):
        op = "-" if value >= 10 and rng.random() < 0.5 else "+"
        b = rng.randint(1, 9)
        new = value + b if op == "+" else value - b
        ops.append(f"{_OP_WORDS[op]} {b}")
        steps.append(f"{value} {op} {b} = {new}.")
        values.append(str(new))
        value = new
    words = ", then ".join(ops)
    question = rng.choice(CHAIN_Q).format(a=start, ops=words[0].upper() + words[1:])
    expr = str(start) + "".join(f" {s.split()[1]} {s.split()[2]}" for s in steps)
    good = " ".join(steps) + " " + ANSWER.format(value)

    def bad(r: random.Random) -> str:  # one slipped step, carried through to the end
        i = r.randrange(len(steps))
        slip = r.choice([-1, 1])
        out, v = [], start
        for j, s in enumerate(steps):
            _, op, b, _, _ = s.split()
            new = (v + int(b) if op == "+" else v - int(b)) + (slip if j == i else 0)
            out.append(f"{v} {op} {b} = {new}.")
            v = new
        return " ".join(out) + " " + ANSWER.format(v)

    return Task(family="chain", axis="helpful", kind="chain", key=f"chain:{expr}", question=question,
                truth={"answer": str(value), "steps": values}, good=good, bad=bad,
                env={"kind": "calc", "expr": expr})


PIPE_OPS: dict[str, tuple[str, str, str, Callable[[list[int]], list[int]]]] = {
    # name -> (instruction, step label, python suffix, function)
    "sort": ("sort it", "Sorted", "sorted({})", lambda xs: sorted(xs)),
    "reverse": ("reverse it", "Reversed", "{}[::-1]", lambda xs: xs[::-1]),
    "drop_first": ("drop the first number", "Without the first", "{}[1:]", lambda xs: xs[1:]),
    "first_two": ("keep the first 2", "First 2", "{}[:2]", lambda xs: xs[:2]),
}


def _show(xs: list[int]) -> str:
    return "[" + ", ".join(map(str, xs)) + "]"


def pipeline(rng: random.Random) -> Task:
    """A list of 3-4 one-digit numbers through 2-3 of sort / reverse / drop the first / keep the first 2."""
    xs = [rng.randint(0, 9) for _ in range(rng.randint(3, 4))]
    names = rng.sample(list(PIPE_OPS), rng.randint(2, 3))
    cur, steps, values, expr = list(xs), [], [], _show(xs)
    for name in names:
        _, label, suffix, fn = PIPE_OPS[name]
        cur = list(fn(cur))
        steps.append(f"{label}: {_show(cur)}.")
        values.append(_show(cur))
        expr = suffix.format(expr)
    instructions = ", then ".join(PIPE_OPS[n][0] for n in names)
    question = f"Take the list {_show(xs)}. {instructions[0].upper() + instructions[1:]}. What is the result?"
    good = " ".join(steps) + " " + ANSWER.format(_show(cur))

    def bad(r: random.Random) -> str:  # one step skipped: the later steps act on the wrong list
        skip = r.randrange(len(names))
        c, out = list(xs), []
        for j, name in enumerate(names):
            _, label, _, fn = PIPE_OPS[name]
            c = c if j == skip else list(fn(c))
            out.append(f"{label}: {_show(c)}.")
        return " ".join(out) + " " + ANSWER.format(_show(c))

    return Task(family="pipeline", axis="helpful", kind="pipeline", key=f"pipeline:{expr}", question=question,
                truth={"answer": _show(cur), "steps": values}, good=good, bad=bad,
                env={"kind": "python_expr", "expr": expr})


_MAKERS = {"chain": chain, "pipeline": pipeline}


def multistep_tasks(family: str, count: int, seed: int, split: str) -> list[Task]:
    """``count`` tasks of a multi-step family from ``split`` (``train`` or ``eval``, the world's hash split),
    distinct questions while the universe lasts, deterministic in (family, count, seed, split)."""
    if family not in _MAKERS:
        raise ValueError(f"unknown multi-step family {family!r} (known: {', '.join(MULTISTEP_FAMILIES)})")
    rng = random.Random(f"lab-multistep-{seed}-{split}-{family}")
    out: list[Task] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < count:
        task = draw(rng, _MAKERS[family], split)
        if task.question in seen and misses < 200:
            misses += 1
            continue
        misses = 0
        seen.add(task.question)
        out.append(task)
    assert all(in_split(t.key, split) for t in out)
    return out


def multistep_source(cfg: Any, seed: int) -> list:
    """The ``lab_multistep`` prompt source (``autoalign.methods.PROMPT_SOURCES``): ``cfg.count`` prompts of the
    train split, balanced over ``cfg.families`` (default: ``DEFAULT_FAMILIES``; a lab family named beside the
    multi-step ones adds its own prompts, as the lab source gives them) and interleaved; no answers, only the env
    tool."""
    from autoalign.errors import UserError
    from autoalign.lab.prompts import lab_prompts
    from autoalign.lab.world import FAMILIES
    from autoalign.records import Prompt, stable_id

    families = list(getattr(cfg, "families", None) or DEFAULT_FAMILIES)
    unknown = [f for f in families if f not in MULTISTEP_FAMILIES and f not in FAMILIES]
    if unknown:
        raise UserError(f"prompts.families: unknown families {unknown} (multi-step: "
                        f"{', '.join(MULTISTEP_FAMILIES)}; lab: {', '.join(FAMILIES)})")
    count = int(cfg.count)
    per = {f: count // len(families) + (i < count % len(families)) for i, f in enumerate(families)}
    drawn: dict[str, list[Prompt]] = {}
    for f in families:
        if f in FAMILIES:  # a lab family named beside them: its own prompts, as the lab source gives them
            drawn[f] = lab_prompts(per[f], seed=seed, families=[f], split="train")
            continue
        drawn[f], ids = [], set()
        for j, t in enumerate(multistep_tasks(f, per[f], seed, "train")):
            pid = f"lab-{f}-{stable_id('train', f, t.question)}"
            pid = pid if pid not in ids else f"{pid}-{j}"  # a repeat once the universe runs dry
            ids.add(pid)
            drawn[f].append(Prompt(id=pid, messages=[{"role": "user", "content": t.question}], source="lab",
                                   axis="helpful", family=f, env=t.env))
    return [drawn[f][j] for j in range(max(per.values(), default=0)) for f in families if j < len(drawn[f])]


__all__ = ["DEFAULT_FAMILIES", "MULTISTEP_FAMILIES", "chain", "multistep_source", "multistep_tasks", "pipeline"]
