"""Environment feedback by execution: the world checks the answer by running something (DESIGN.md, "environment
feedback"; rejection sampling on verifiable rewards as in RAFT / ReST-EM, the reward being the environment's).

A prompt's ``env`` (CONTRACTS.md) is a tool the environment exposes, never the answer:

- ``calc``: a calculator. The expression is evaluated in the sandbox (once per prompt) and a response is correct
  when its ``final_number`` equals the value;
- ``python_expr``: an interpreter. Correct when ``final_answer`` equals ``normalise(str(value))`` (lists compared
  with spaces removed);
- ``python_tests``: the response's ``code_block`` is graded by the sandbox's test harness against the tests
  (``autoalign.sandbox.tests_program`` / ``run_tests``, the one grading function shared with the lab oracle and
  HumanEval); correct only when the harness itself reports that every test ran and passed within the time limit,
  so an early ``sys.exit``, a swallowed exception or a printed marker is incorrect. A failure's ``error`` is the
  harness's one-line reason (fixed words and built-in exception names, bounded), never the program's stderr.

Correct samples become SFT data (rejection sampling); (correct, incorrect) pairs become DPO preferences. Every
execution goes through ``autoalign.sandbox.run_many`` in one batch, identical programs run once.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from autoalign.answers import code_block, final_answer, final_number, normalise
from autoalign.models.base import LM
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample
from autoalign.sandbox import ExecResult, run_many
from autoalign.sandbox import tests_program as sandbox_tests_program
from autoalign.scoring import Score, as_prompts
from autoalign.signals.base import SignalResult, StageContext, group_samples

KINDS = ("calc", "python_expr", "python_tests")
_ERR_CHARS = 400  # stderr tail kept in a label's detail


def expr_program(expr: str, kind: str) -> str:
    """The program that evaluates an env expression and prints its value: ``repr`` for the calculator (a number
    parsed back by the signal), ``str`` for the interpreter (the contract compares ``normalise(str(value))``)."""
    show = "repr" if kind == "calc" else "str"
    return f"import sys\nsys.stdout.write({show}(eval(compile({expr!r}, '<env>', 'eval'))))\n"


def tests_program(text: str, tests: Sequence[str]) -> str:
    """The program a ``python_tests`` sample runs: its code block graded against the environment's asserts by the
    sandbox's harness (``run_many`` gives it ``ok`` only when the harness reports every test passed)."""
    return sandbox_tests_program(code_block(text), list(tests))


def _defines(text: str, env: dict[str, Any]) -> bool:
    """Whether the response's code mentions the entry point at all (otherwise the tests cannot pass)."""
    entry = env.get("entry_point")
    return not entry or str(entry) in code_block(text)


def calc_value(stdout: str) -> int | float | None:
    """The calculator's printed value as a number (``None`` when it is not one: a string, a bool, inf/nan)."""
    s = stdout.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def number_matches(answer: str | None, value: int | float) -> bool:
    """``final_number`` of the response equals the calculator's value: exactly for integers, to 1e-9 otherwise."""
    if answer is None:
        return False
    try:
        return int(answer) == value
    except ValueError:
        pass
    try:
        return math.isclose(float(answer), value, rel_tol=1e-9, abs_tol=1e-9)
    except ValueError:
        return False


def text_matches(answer: str | None, expected: str) -> bool:
    """CONTRACTS.md: ``final_answer == normalise(str(value))``, lists compared after removing spaces."""
    if answer is None:
        return False
    if expected.startswith("["):
        return answer.replace(" ", "") == expected.replace(" ", "")
    return answer == expected


class ExecutionCheck:
    """The environment as a ``Scorer``: value 1.0 when executing the response's answer checks out, 0.0 when it
    does not, None (with the reason) when the prompt has no environment to run or the environment itself failed.
    All programs of one call run in one sandbox batch, identical programs once."""

    name = "execution"
    scale = "unit"

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 512, workers: int | None = None) -> None:
        self.timeout_s, self.memory_mb, self.workers = timeout_s, memory_mb, workers
        self.sandbox_runs = 0  # distinct programs run by the last call

    def _run(self, programs: list[str]) -> dict[str, ExecResult]:
        distinct = list(dict.fromkeys(programs))
        results = run_many(distinct, timeout_s=self.timeout_s, memory_mb=self.memory_mb, workers=self.workers)
        self.sandbox_runs = len(distinct)
        return dict(zip(distinct, results))

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Score]:
        if len(prompts) != len(responses):
            raise ValueError("execution: prompts and responses must have the same length")
        prompts = as_prompts(prompts)
        programs = []
        for p, text in zip(prompts, responses):
            env = p.env or {}
            kind = env.get("kind")
            if kind == "python_tests" and _defines(text, env):
                programs.append(tests_program(text, env.get("tests", [])))
            elif kind in KINDS and kind != "python_tests":
                programs.append(expr_program(str(env.get("expr", "")), kind))
        results = self._run(programs) if programs else {}
        if not programs:
            self.sandbox_runs = 0
        return [self._score(p.env, text, results) for p, text in zip(prompts, responses)]

    @staticmethod
    def _score(env: dict[str, Any] | None, text: str, results: dict[str, ExecResult]) -> Score:
        if env is None:
            return Score.missing("no environment")
        kind = env.get("kind")
        if kind not in KINDS:
            return Score.missing(f"unknown environment kind {kind!r}")
        if kind == "python_tests":
            if not _defines(text, env):  # a refusal, prose: nothing to run
                return Score(0.0, detail={"kind": kind, "error": f"no code defining {env.get('entry_point')}"})
            r = results[tests_program(text, env.get("tests", []))]
            detail: dict[str, Any] = {"kind": kind} if r.ok else {
                "kind": kind, "error": r.stderr[-_ERR_CHARS:], "timed_out": r.timed_out, "returncode": r.returncode}
            return Score(1.0 if r.ok else 0.0, detail=detail)
        r = results[expr_program(str(env.get("expr", "")), kind)]
        value = calc_value(r.stdout) if r.ok and kind == "calc" else None
        expected = normalise(r.stdout) if r.ok and kind == "python_expr" else None
        if value is None and expected is None:
            return Score.missing("environment failed", kind=kind)
        if value is not None:
            answer = final_number(text)
            ok = number_matches(answer, value)
        else:
            answer = final_answer(text)
            ok = text_matches(answer, expected or "")
        return Score(1.0 if ok else 0.0, detail={"kind": kind, "answer": answer})


@dataclass
class _Check:
    """One prompt being checked: its samples and, per sample, correctness and a label detail."""

    prompt: Prompt
    samples: list[Sample]
    kind: str
    correct: list[bool] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)


def check_by_prompt(prompts: Sequence[Prompt], samples: Sequence[Sample], check: ExecutionCheck,
                    stats: Counter) -> tuple[list[tuple[Prompt, list[Sample]]], dict[str, list[Score]]]:
    """The round's samples grouped by prompt and checked in one sandbox batch: ``(todo, scores)``, ``todo`` the
    (prompt, its samples) pairs that have an environment and samples, ``scores[prompt id]`` their ``Score``s in
    sample order. Prompts left out are counted in ``stats``: ``skipped_no_env``, ``skipped_unknown_env`` (an env
    kind the check does not know), ``skipped_no_samples``. (The loop shared by STaR and ReST-EM.)"""
    groups = group_samples(samples)
    todo: list[tuple[Prompt, list[Sample]]] = []
    for p in prompts:
        if p.env is None:
            stats["skipped_no_env"] += 1
        elif p.env.get("kind") not in KINDS:
            stats["skipped_unknown_env"] += 1
        elif not groups.get(p.id):
            stats["skipped_no_samples"] += 1
        else:
            todo.append((p, groups[p.id]))
    flat = [(p, s) for p, g in todo for s in g]
    scores = check([p for p, _ in flat], [s.text for _, s in flat]) if flat else []
    by_prompt: dict[str, list[Score]] = {}
    for (p, _), sc in zip(flat, scores, strict=True):
        by_prompt.setdefault(p.id, []).append(sc)
    return todo, by_prompt


class Execution:
    """Check samples of verifiable prompts by execution (``ExecutionCheck``); keep the correct ones (``sft``),
    pair them with incorrect ones (``dpo``), or both. ``max_per_prompt`` bounds SFT examples and pairs per prompt;
    ``timeout_s`` and ``memory_mb`` are the sandbox's limits per program; ``workers`` its parallelism (None: a
    small default). ``mode``: ``sft`` (correct samples as targets), ``dpo`` (correct over incorrect pairs) or
    ``both``."""

    name = "execution"

    def __init__(self, mode: Literal["sft", "dpo", "both"] = "sft", max_per_prompt: int = 2, timeout_s: float = 5.0,
                 memory_mb: int = 512, workers: int | None = None) -> None:
        if mode not in ("sft", "dpo", "both"):
            raise ValueError(f"execution: mode must be 'sft', 'dpo' or 'both', not {mode!r}")
        if max_per_prompt < 1:
            raise ValueError("execution: max_per_prompt must be >= 1")
        if timeout_s <= 0 or memory_mb <= 0:
            raise ValueError("execution: timeout_s and memory_mb must be positive")
        self.mode = mode
        self.max_per_prompt = max_per_prompt
        self.check = ExecutionCheck(timeout_s=timeout_s, memory_mb=memory_mb, workers=workers)

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM | None = None,
                 ctx: StageContext | None = None) -> SignalResult:
        groups = group_samples(samples)
        stats: Counter[str] = Counter()
        checks: list[_Check] = []
        for p in prompts:
            group = groups.get(p.id, [])
            kind = (p.env or {}).get("kind")
            if p.env is None:
                stats["skipped_no_env"] += 1
            elif kind not in KINDS:
                stats["skipped_unknown_env"] += 1
            elif not group:
                stats["skipped_no_samples"] += 1
            else:
                checks.append(_Check(p, group, kind))
        flat = [(c, s) for c in checks for s in c.samples]
        scores = self.check([c.prompt for c, _ in flat], [s.text for _, s in flat]) if flat else []
        stats["sandbox_runs"] = self.check.sandbox_runs if flat else 0
        by_check: dict[int, list[Score]] = {}
        for (c, _), sc in zip(flat, scores, strict=True):
            by_check.setdefault(id(c), []).append(sc)

        out = SignalResult()
        for c in checks:
            mine = by_check.get(id(c), [])
            if any(not sc.ok for sc in mine):  # the environment itself failed: no verdict here
                stats["skipped_env_failed"] += 1
                continue
            c.correct = [sc.value == 1.0 for sc in mine]
            c.details = [dict(sc.detail) for sc in mine]
            stats["timed_out"] += sum(bool(d.get("timed_out")) for d in c.details)
            stats["checked_prompts"] += 1
            self._emit(c, out)

        n_ok = sum(lb.verdict == "correct" for lb in out.labels)
        out.stats = {
            "prompts": len(prompts),
            "checked_prompts": stats["checked_prompts"],
            "skipped_no_env": stats["skipped_no_env"],
            "skipped_unknown_env": stats["skipped_unknown_env"],
            "skipped_no_samples": stats["skipped_no_samples"],
            "skipped_env_failed": stats["skipped_env_failed"],
            "samples_checked": len(out.labels),
            "correct": n_ok,
            "incorrect": len(out.labels) - n_ok,
            "accuracy": round(n_ok / len(out.labels), 6) if out.labels else 0.0,
            "sandbox_runs": stats["sandbox_runs"],
            "timed_out": stats["timed_out"],
            "sft": len(out.sft),
            "preferences": len(out.preferences),
        }
        return out

    def _emit(self, c: _Check, out: SignalResult) -> None:
        """Labels for every sample; SFT on distinct correct texts; deterministic (correct, incorrect) pairs."""
        p = c.prompt
        for s, ok, detail in zip(c.samples, c.correct, c.details):
            out.labels.append(Label(prompt_id=p.id, sample_index=s.index, signal=self.name,
                                    verdict="correct" if ok else "incorrect", score=1.0 if ok else 0.0,
                                    kind="unit", detail=detail))
        good = list(dict.fromkeys(s.text for s, ok in zip(c.samples, c.correct) if ok))
        bad = list(dict.fromkeys(s.text for s, ok in zip(c.samples, c.correct) if not ok))
        if self.mode in ("sft", "both"):
            out.sft.extend(SFTExample(prompt_id=p.id, signal=self.name,
                                      messages=[*p.messages, {"role": "assistant", "content": t}])
                           for t in good[: self.max_per_prompt])
        if self.mode in ("dpo", "both") and good and bad:
            # Pair i = (good[i % G], bad[i % B]) for i < min(max_per_prompt, max(G, B)): distinct pairs that use
            # every correct and every incorrect text once before any repeats. Reward gap 1 - 0 = 1.
            for i in range(min(self.max_per_prompt, max(len(good), len(bad)))):
                out.preferences.append(Preference(prompt_id=p.id, prompt=p.messages, chosen=good[i % len(good)],
                                                  rejected=bad[i % len(bad)], signal=self.name, margin=1.0))
