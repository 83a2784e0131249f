"""Verifiable helpful tasks: arithmetic, word strings, small lists, templated Python functions.

Each task carries an ``env`` (CONTRACTS.md) from which an environment can check a response without the oracle:
a calculator expression, a Python expression, or unit tests. Universes are kept small and regular enough that a
tiny model can learn them from the corpus, yet held-out keys (the eval split) still need generalisation.
"""

from __future__ import annotations

import random
from typing import Callable

from autoalign.lab.world.common import ANSWER, NUMBER_WORDS, Task

# ---- arithmetic ---------------------------------------------------------------------------------------------------
ADD_Q = ["What is {a} + {b}?", "Compute {a} + {b}.", "What do you get when you add {a} and {b}?", "Calculate {a} + {b}."]
SUB_Q = ["What is {a} - {b}?", "Compute {a} - {b}.", "What do you get when you subtract {b} from {a}?",
         "Calculate {a} - {b}."]


def _slip_number(value: int, rng: random.Random) -> int:
    """A plausible arithmetic slip: off by one or by ten, never negative, never the right value."""
    for _ in range(10):
        wrong = value + rng.choice([-10, -1, 1, 10])
        if wrong >= 0:
            return wrong
    return value + 1


def _number_task(family: str, kind: str, key: str, question: str, value: int, env: dict, step: str = "") -> Task:
    """``step`` is the worked units digit that leads the answer (``"7 + 5 = 12. "``), empty for none."""
    return Task(
        family=family, axis="helpful", kind=kind, key=key, question=question, env=env,
        truth={"answer": str(value)}, good=step + ANSWER.format(value),
        bad=lambda rng: step + ANSWER.format(_slip_number(value, rng)),
    )


def units_step(a: int, b: int, op: str) -> str:
    """The worked units column of ``a op b`` (``b`` one digit): ``"7 + 5 = 12. "`` for 57 + 5, ``"13 - 8 = 5. "``
    for 53 - 8 (a borrow shows as the ten it takes). Why: a small model cannot carry in its head, but it can look
    up one of the 100 single-digit sums (or 190 differences), all of which the corpus shows, and then copy the
    tens digit of ``a`` plus or minus the carry it just wrote; held-out pairs recombine those seen steps."""
    u = a % 10
    if op == "+":
        return f"{u} + {b} = {u + b}. "
    top = u if u >= b or a < 10 else u + 10
    return f"{top} - {b} = {top - b}. "


def arithmetic(rng: random.Random) -> Task:
    """``a + b`` or ``a - b`` (non-negative) with ``a`` of 1-2 digits and ``b`` of one digit, answered with the
    worked units column first (``units_step``), so the answer is learnable digit by digit and held-out pairs
    generalise."""
    a, b = rng.randint(0, 99), rng.randint(0, 9)
    if rng.random() < 0.5:
        q, value, kind, expr = rng.choice(ADD_Q).format(a=a, b=b), a + b, "add", f"{a} + {b}"
        step = units_step(a, b, "+")
    else:
        a = max(a, b)
        q, value, kind, expr = rng.choice(SUB_Q).format(a=a, b=b), a - b, "sub", f"{a} - {b}"
        step = units_step(a, b, "-")
    return _number_task("arithmetic", kind, f"arith:{expr}", q, value, {"kind": "calc", "expr": expr}, step)


# ---- strings ------------------------------------------------------------------------------------------------------
WORDS = ["red", "cat", "sun", "dog", "tree", "book", "fish", "star", "blue", "cake", "moon", "bird", "rain", "ship",
         "milk", "door", "lamp", "road", "king", "frog", "wind", "salt", "gold", "hat", "box", "cup", "pen", "car",
         "egg", "map"]
# No quotes around the words: byte-level BPE would cut a quoted first word differently (``'star`` -> ``'``, ``st``,
# ``ar``) from the same word in the answer (`` star``), and a small model cannot learn to copy across that.
REV_Q = ["Reverse the order of the words: {s}.", "Write these words in reverse order: {s}.",
         "What are the words {s} in reverse order?"]
REP_Q = ["Repeat the word {w} {k} times.", "Write the word {w} {k} times, separated by spaces."]
CNT_Q = ["How many words are there in: {s}?", "Count the words: {s}."]
LAST_Q = ["What is the last word of: {s}?", "Which word comes last: {s}?"]


def strings(rng: random.Random) -> Task:
    """Reverse 2-3 words, repeat a word 2-3 times, count 2-5 words, or name the last word (word-level, so BPE keeps
    the words whole)."""
    op = rng.choice(["reverse", "repeat", "count", "last"])
    if op == "reverse":
        words = rng.sample(WORDS, rng.randint(2, 3))
        s = " ".join(words)
        value = " ".join(reversed(words))
        expr = f"' '.join(reversed({s!r}.split()))"
        q, key = rng.choice(REV_Q).format(s=s), f"rev:{s}"

        def bad(r: random.Random) -> str:
            w = list(words) if len(words) == 2 else [words[1], words[2], words[0]]
            return ANSWER.format(" ".join(w))
    elif op == "repeat":
        w, k = rng.choice(WORDS), rng.randint(2, 3)
        value = " ".join([w] * k)
        expr = f"' '.join([{w!r}] * {k})"
        q, key = rng.choice(REP_Q).format(w=w, k=k), f"rep:{w}:{k}"

        def bad(r: random.Random) -> str:
            return ANSWER.format(" ".join([w] * (5 - k)))
    elif op == "count":
        words = rng.sample(WORDS, rng.randint(2, 5))
        s = " ".join(words)
        value = str(len(words))
        expr = f"len({s!r}.split())"
        q, key = rng.choice(CNT_Q).format(s=s), f"cnt:{s}"

        def bad(r: random.Random) -> str:
            return ANSWER.format(len(words) + r.choice([-1, 1]))
    else:
        words = rng.sample(WORDS, rng.randint(2, 4))
        s = " ".join(words)
        value = words[-1]
        expr = f"{s!r}.split()[-1]"
        q, key = rng.choice(LAST_Q).format(s=s), f"last:{s}"

        def bad(r: random.Random) -> str:
            return ANSWER.format(words[0])
    return Task(family="strings", axis="helpful", kind=op, key=key, question=q, truth={"answer": value},
                good=ANSWER.format(value), bad=bad, env={"kind": "python_expr", "expr": expr})


# ---- lists --------------------------------------------------------------------------------------------------------
LIST_Q = {
    "max": ["What is the largest number in {l}?", "Find the maximum of {l}."],
    "min": ["What is the smallest number in {l}?", "Find the minimum of {l}."],
    "sorted": ["Sort the list {l} in ascending order.", "What is {l} sorted from smallest to largest?"],
    "len": ["How many numbers are in the list {l}?", "What is the length of the list {l}?"],
}


def lists(rng: random.Random) -> Task:
    """max / min / length of 3-5 distinct single-digit numbers, or sort 3 of them."""
    op = rng.choice(list(LIST_Q))
    nums = rng.sample(range(10), 3 if op == "sorted" else rng.randint(3, 5))
    lit = "[" + ", ".join(map(str, nums)) + "]"
    ops: dict[str, Callable[[list[int]], object]] = {"max": max, "min": min, "sorted": sorted, "len": len}
    value: object = ops[op](nums)
    shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)

    def bad(r: random.Random) -> str:
        if op == "max":
            return ANSWER.format(sorted(nums)[-2])
        if op == "min":
            return ANSWER.format(sorted(nums)[1])
        if op == "len":
            return ANSWER.format(len(nums) + r.choice([-1, 1]))
        s = sorted(nums)
        i = r.randrange(len(s) - 1)
        s[i], s[i + 1] = s[i + 1], s[i]
        return ANSWER.format("[" + ", ".join(map(str, s)) + "]")

    return Task(family="lists", axis="helpful", kind=op, key=f"list:{op}:{lit}",
                question=rng.choice(LIST_Q[op]).format(l=lit), truth={"answer": shown.replace(" ", "")},
                good=ANSWER.format(shown), bad=bad, env={"kind": "python_expr", "expr": f"{op}({lit})"})


# ---- code ---------------------------------------------------------------------------------------------------------
# op -> (name prefix, description, body, test function)
CODE_OPS = {
    "add": ("add", "returns {x} plus {k}", "{x} + {k}", lambda v, k: v + k),
    "subtract": ("subtract", "returns {x} minus {k}", "{x} - {k}", lambda v, k: v - k),
    "times": ("times", "returns {x} times {k}", "{x} * {k}", lambda v, k: v * k),
    "above": ("is_above", "returns True if {x} is greater than {k}", "{x} > {k}", lambda v, k: v > k),
    "divisible": ("is_divisible_by", "returns True if {x} is divisible by {k}", "{x} % {k} == 0",
                  lambda v, k: v % k == 0),
}
CODE_Q = ["Write a Python function {f}({x}) that {d}.", "Define a Python function {f}({x}) that {d}.",
          "Implement {f}({x}) in Python: it {d}."]
CODE_ARGS = ["x", "n", "value"]


def code(rng: random.Random) -> Task:
    """A one-line function from a template; checked by four asserts around the constant."""
    op = rng.choice(list(CODE_OPS))
    k = rng.randint(2, 12)
    x = rng.choice(CODE_ARGS)
    prefix, desc, body, fn = CODE_OPS[op]
    name = f"{prefix}_{NUMBER_WORDS[k]}"
    d = desc.format(x=x, k=k)
    good = f"```python\ndef {name}({x}):\n    return {body.format(x=x, k=k)}\n```"
    inputs = [k - 1, k, k + 1, 3 * k]
    tests = [f"assert {name}({v}) == {fn(v, k)!r}" for v in inputs]
    # A slip uses another constant that the tests can tell apart.
    wrong_ks = [j for j in range(2, 13) if any(fn(v, j) != fn(v, k) for v in inputs)]

    def bad(r: random.Random) -> str:
        return f"```python\ndef {name}({x}):\n    return {body.format(x=x, k=r.choice(wrong_ks))}\n```"

    return Task(family="code", axis="helpful", kind=op, key=f"code:{op}:{k}",
                question=rng.choice(CODE_Q).format(f=name, x=x, d=d), truth={"tests": tests, "entry_point": name},
                good=good, bad=bad, env={"kind": "python_tests", "entry_point": name, "tests": tests})
