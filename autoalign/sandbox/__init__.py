"""The execution sandbox for model-written code (CONTRACTS.md, "Sandbox API").

Model-written programs are untrusted, and under RL they are optimised against whatever grades them: they may loop
forever, allocate without bound, fork, leave their process group or session, write files, read secrets, open
connections, end the interpreter "successfully" before the tests run, or reach into the grader. So:

- every program runs in short-lived processes under the strongest isolation this machine allows (``probe``:
  mount, network, IPC and PID namespaces, read-only ``/``, private ``/tmp`` ``/var/tmp`` ``/dev/shm``, a uid of
  its own with no capability; each missing piece is a logged warning and listed in ``isolation().missing``);
- limits and the wall clock are enforced from outside, and every process is killed and reaped (``spawn``);
- a test verdict comes from a harness in a separate process the solution cannot reach (``grading``).

``run_python`` / ``run_many`` run plain programs (``ok`` = exit status 0: for trusted programs such as an
environment's expression, never a verdict), and grade a ``tests_program`` string through the harness.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from autoalign.sandbox.grading import (
    MAX_MESSAGE_BYTES,
    REASON_CHARS,
    TestVerdict,
    decode_tests_program,
    default_workers,
    run_tests,
    run_tests_many,
    tests_program,
)
from autoalign.sandbox.probe import MAX_SCRATCH_MB, Isolation, isolation
from autoalign.sandbox.spawn import MAX_FILE_MB, MAX_OPEN_FILES, MAX_OUTPUT_BYTES, MAX_PROCS, ExecResult
from autoalign.sandbox.spawn import interpreter as _interpreter
from autoalign.sandbox.spawn import run_plain as _run_plain

__all__ = ["ExecResult", "Isolation", "MAX_FILE_MB", "MAX_MESSAGE_BYTES", "MAX_OPEN_FILES", "MAX_OUTPUT_BYTES",
           "MAX_PROCS", "MAX_SCRATCH_MB", "REASON_CHARS", "TestVerdict", "decode_tests_program", "default_workers",
           "isolation", "run_many", "run_python", "run_tests", "run_tests_many", "tests_program", "_interpreter"]


def _check(value: float | int, name: str) -> None:
    if value <= 0:
        raise ValueError(f"sandbox: {name} must be positive")


def run_python(code: str, timeout_s: float = 5.0, memory_mb: int = 512) -> ExecResult:
    """Run one Python program in the sandbox and return what happened (never raises for the program's faults).

    ``timeout_s`` is wall-clock (the CPU limit is one second more); ``memory_mb`` caps the address space. A
    ``tests_program`` string is graded by ``run_tests``: ``ok`` is the verdict, ``stderr`` its one-line reason."""
    _check(timeout_s, "timeout_s")
    _check(memory_mb, "memory_mb")
    parts = decode_tests_program(code)
    if parts is not None:
        v = run_tests(parts[0], parts[1], timeout_s, memory_mb)
        return ExecResult(ok=v.passed, returncode=v.returncode, stdout=v.stdout, stderr=v.reason,
                          timed_out=v.timed_out)
    return _run_plain(code, float(timeout_s), int(memory_mb), isolation())


def run_many(codes: Sequence[str], timeout_s: float = 5.0, memory_mb: int = 512,
             workers: int | None = None) -> list[ExecResult]:
    """Run programs in parallel (each in its own sandboxed processes); results in the order of ``codes``."""
    if not codes:
        return []
    isolation()  # probe once, before the threads race for it
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return list(pool.map(lambda c: run_python(c, timeout_s, memory_mb), codes))
