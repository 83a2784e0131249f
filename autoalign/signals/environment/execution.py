"""Environment feedback by execution: the world checks the answer by running something (DESIGN.md, "environment
feedback"; rejection sampling on verifiable rewards as in RAFT / ReST-EM, the reward being the environment's).

A prompt's ``env`` (CONTRACTS.md) is a tool the environment exposes, never the answer:

- ``calc``: a calculator. The expression is evaluated in the sandbox (once per prompt) and a response is correct
  when its ``final_number`` equals the value;
- ``python_expr``: an interpreter. Correct when ``final_answer`` equals ``normalise(str(value))`` (lists compared
  with spaces removed);
- ``python_tests``: the response's ``code_block`` followed by the tests runs in the sandbox; correct when it exits
  cleanly (every assert passed) within the time limit.

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
from autoalign.signals.base import SignalResult, group_samples

KINDS = ("calc", "python_expr", "python_tests")
_ERR_CHARS = 400  # stderr tail kept in a label's detail


def expr_program(expr: str, kind: str) -> str:
    """The program that evaluates an env expression and prints its value: ``repr`` for the calculator (a number
    parsed back by the signal), ``str`` for the interpreter (the contract compares ``normalise(str(value))``)."""
    show = "repr" if kind == "calc" else "str"
    return f"import sys\nsys.stdout.write({show}(eval(compile({expr!r}, '<env>', 'eval'))))\n"


def tests_program(text: str, tests: Sequence[str]) -> str:
    """The program a ``python_tests`` sample runs: its code block, then the environment's asserts."""
    return code_block(text) + "\n\n" + "\n".join(tests) + "\n"


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


@dataclass
class _Check:
    """One prompt being checked: its samples and, per sample, correctness and a label detail."""

    prompt: Prompt
    samples: list[Sample]
    kind: str
    correct: list[bool] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)


class Execution:
    """Check samples of verifiable prompts by execution; keep the correct ones (``sft``), pair them with incorrect
    ones (``dpo``), or both. ``max_per_prompt`` bounds SFT examples and pairs per prompt; ``timeout_s`` and
    ``memory_mb`` are the sandbox's limits per program; ``workers`` its parallelism (None: a small default)."""

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
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.workers = workers

    def _run(self, programs: list[str]) -> dict[str, ExecResult]:
        """Run distinct programs in one sandbox batch."""
        distinct = list(dict.fromkeys(programs))
        results = run_many(distinct, timeout_s=self.timeout_s, memory_mb=self.memory_mb, workers=self.workers)
        return dict(zip(distinct, results))

    def __call__(self, prompts: Sequence[Prompt], samples: Sequence[Sample], policy: LM | None = None) -> SignalResult:
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

        # One batch: each expression once per prompt, each distinct test program once.
        programs = []
        for c in checks:
            env = c.prompt.env or {}
            if c.kind == "python_tests":
                programs += [tests_program(s.text, env.get("tests", [])) for s in c.samples
                             if _defines(s.text, env)]
            else:
                programs.append(expr_program(str(env.get("expr", "")), c.kind))
        results = self._run(programs) if programs else {}
        stats["sandbox_runs"] = len(results)

        out = SignalResult()
        for c in checks:
            env = c.prompt.env or {}
            if c.kind == "python_tests":
                for s in c.samples:
                    if not _defines(s.text, env):  # a refusal, prose: nothing to run
                        c.correct.append(False)
                        c.details.append({"kind": c.kind, "error": f"no code defining {env.get('entry_point')}"})
                        continue
                    r = results[tests_program(s.text, env.get("tests", []))]
                    c.correct.append(r.ok)
                    c.details.append({"kind": c.kind} if r.ok else
                                     {"kind": c.kind, "error": r.stderr[-_ERR_CHARS:], "timed_out": r.timed_out,
                                      "returncode": r.returncode})
                    stats["timed_out"] += r.timed_out
            else:
                r = results[expr_program(str(env.get("expr", "")), c.kind)]
                value = calc_value(r.stdout) if r.ok and c.kind == "calc" else None
                expected = normalise(r.stdout) if r.ok and c.kind == "python_expr" else None
                if value is None and expected is None:  # the environment itself failed: no verdict here
                    stats["skipped_env_failed"] += 1
                    continue
                for s in c.samples:
                    if value is not None:
                        answer = final_number(s.text)
                        ok = number_matches(answer, value)
                    else:
                        answer = final_answer(s.text)
                        ok = text_matches(answer, expected or "")
                    c.correct.append(ok)
                    c.details.append({"kind": c.kind, "answer": answer})
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
                                    detail=detail))
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
