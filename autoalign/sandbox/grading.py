"""Grading a solution against test statements: the one function the execution signal, the lab oracle and
HumanEval share (``run_tests``; ``tests_program`` packs a solution and its tests for APIs that take one string).

A graded run is two sandboxed processes, each with its own namespaces and uid (``probe``):

- the **solution** (``inside/server.py``) runs the model's code in a module named ``solution`` (so an
  ``if __name__ == "__main__":`` block does not run, as in the reference HumanEval harness), then answers calls;
- the **harness** (``inside/harness.py``) runs each test statement, with the solution's functions as stand-ins
  that forward each call over a pipe and return the plain value sent back (``inside/wire.py``: only data crosses,
  built here from exact built-in types). The tests' source never reaches the solution's process.

Only the harness holds the verdict pipe, and only after the last test does it write one line there, prefixed by
a per-run nonce that exists in no process the solution can reach. The verdict is "passed" only when that line
says every test ran and passed within the wall clock. So an early exit of any kind, an exception swallowed at
import, a printed "passed" marker, a monkey-patched ``assert`` or builtin, a trace function, digging the verdict
out of frames, ``gc`` or ``/proc``, or a returned object whose ``__eq__`` always says yes: each is a failure,
because none of it happens in the process that compares and reports.

What the contract asks of solutions: the tests exchange plain values with them (None, bool, numbers, str, bytes
and lists, tuples, dicts, sets of them; subclasses travel as their base type); a function that returns anything
else (an instance of its own class, a generator) fails the test that calls it. Names that shadow a builtin are not
visible to the tests (they see the real one), and a stdlib module the solution imported is the harness's own
import of it, bound only under its own name.

A verdict's ``reason`` is one line from fixed words and built-in exception names (``test 2 failed:
AssertionError``, ``timed out``), at most ``REASON_CHARS``: never the program's stderr, a message it wrote, or a
value it returned.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from autoalign.sandbox.probe import Isolation, isolation
from autoalign.sandbox.spawn import MAX_OUTPUT_BYTES, Child, abandon, collect, inside_source, start

REASON_CHARS = 200  # a verdict's reason: one line, at most this long
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # one call or reply between the harness and the solution
_VERDICT_BYTES = 4096
_HEADER = "# autoalign-sandbox tests "  # first line of a test program made by ``tests_program``


@dataclass(frozen=True)
class TestVerdict:
    """The harness's verdict on one solution. ``passed`` only when every one of ``total`` tests ran and passed,
    reported through the harness's nonce channel within the time limit. ``reason``: one bounded line of fixed
    words. ``returncode``: how the solution's process ended (0 when it was still serving when the harness was
    done). ``stdout``: what the solution printed (untrusted, bounded)."""

    __test__ = False  # not a pytest class

    passed: bool
    total: int
    ran: int
    failed: int
    reason: str
    timed_out: bool = False
    returncode: int = 0
    stdout: str = ""


def _sources() -> tuple[str, str]:
    server = inside_source("guard", "wire", "server") + (
        "\nimport sys\nserve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))\n")
    harness = inside_source("guard", "wire", "harness") + (
        "\nimport sys\njudge(*[int(a) for a in sys.argv[1:7]])\n")
    return server, harness


_SERVER, _HARNESS = _sources()


def _grade(code: str, tests: list[str], timeout_s: float, memory_mb: int, iso: Isolation, nonce: str) -> TestVerdict:
    """Start the solution and the harness, joined by two pipes, and read the harness's verdict pipe."""
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    ver_r, ver_w = os.pipe()
    children: list[Child] = []
    try:
        children.append(start(_SERVER, (str(req_r), str(rep_w), str(MAX_MESSAGE_BYTES)), {"code": code},
                              timeout_s, memory_mb, iso, (req_r, rep_w)))
        harness_job = {"tests": tests, "nonce": nonce, "undumpable": not iso.pid_namespace}
        children.append(start(_HARNESS, (str(req_w), str(rep_r), str(ver_w), str(MAX_MESSAGE_BYTES),
                                         str(REASON_CHARS)), harness_job, timeout_s, memory_mb, iso,
                              (req_w, rep_r, ver_w)))
    except BaseException:
        for c in children:
            abandon(c)
        os.close(ver_r)
        raise
    finally:
        for fd in (req_r, req_w, rep_r, rep_w, ver_w):
            os.close(fd)  # only the children hold them now: a dead peer is an end of file
    server, harness = children
    try:
        assert server.proc.stdout and server.proc.stderr and harness.proc.stdout and harness.proc.stderr
        out_fd = server.proc.stdout.fileno()
        streams = {out_fd: MAX_OUTPUT_BYTES, server.proc.stderr.fileno(): 0, harness.proc.stdout.fileno(): 0,
                   harness.proc.stderr.fileno(): 0, ver_r: _VERDICT_BYTES}
        got = collect(children, harness, streams, timeout_s)
    finally:
        os.close(ver_r)
    assert server.returncode is not None and harness.returncode is not None
    return _verdict(got.data[ver_r], nonce, len(tests), got.timed_out, harness.returncode, server.returncode,
                    got.text(out_fd))


def _verdict(line_bytes: bytes, nonce: str, total: int, timed_out: bool, harness_rc: int, server_rc: int,
             stdout: str) -> TestVerdict:
    """The verdict the harness reported, or a failure saying why there is none."""
    solution_rc = -signal.SIGKILL if timed_out or server_rc == -signal.SIGKILL else server_rc

    def make(passed: bool, ran: int, failed: int, reason: str) -> TestVerdict:
        return TestVerdict(passed, total, ran, failed, reason.replace("\n", " ")[:REASON_CHARS], timed_out,
                           solution_rc, stdout)

    if timed_out:
        return make(False, 0, 0, "timed out")
    lines = [ln for ln in line_bytes.decode("utf-8", "replace").splitlines() if ln.startswith(nonce + " ")]
    if len(lines) != 1 or harness_rc != 0:
        return make(False, 0, 0, f"the harness reported no verdict (exit status {harness_rc})")
    try:
        rep = json.loads(lines[0][len(nonce) + 1:])
        ran, failed, reason = int(rep["ran"]), int(rep["failed"]), str(rep["reason"])
        same_total = int(rep["total"]) == total
    except (ValueError, KeyError, TypeError):
        return make(False, 0, 0, "malformed verdict")
    if reason.startswith("the solution ended before") and server_rc != 0:
        reason += f" (exit status {server_rc})"
    passed = same_total and ran == total and failed == 0 and not reason
    if not passed and not reason:
        reason = "not every test ran"
    return make(passed, ran, failed, reason)


def _check(value: float | int, name: str) -> None:
    if value <= 0:
        raise ValueError(f"sandbox: {name} must be positive")


def run_tests(code: str, tests: Sequence[str], timeout_s: float = 5.0, memory_mb: int = 512) -> TestVerdict:
    """Grade one solution: ``code`` in its own process, each test statement in the harness's (module
    docstring). ``passed`` only when the harness reports every test ran and passed."""
    _check(timeout_s, "timeout_s")
    _check(memory_mb, "memory_mb")
    return _grade(code, [str(t) for t in tests], float(timeout_s), int(memory_mb), isolation(),
                  secrets.token_hex(16))


def default_workers() -> int:
    """A small pool: each program is its own processes, so more threads than cores only adds contention."""
    return max(1, min(4, os.cpu_count() or 1))


def run_tests_many(jobs: Sequence[tuple[str, Sequence[str]]], timeout_s: float = 5.0, memory_mb: int = 512,
                   workers: int | None = None) -> list[TestVerdict]:
    """``run_tests`` over ``(code, tests)`` pairs in parallel; verdicts in the order of ``jobs``."""
    if not jobs:
        return []
    isolation()  # probe once, before the threads race for it
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return list(pool.map(lambda j: run_tests(j[0], j[1], timeout_s, memory_mb), jobs))


def tests_program(code: str, tests: Sequence[str]) -> str:
    """One string holding a solution and its tests, for APIs that take a program (``run_python``/``run_many``
    grade it with ``run_tests``). It reads as the plain program ``code`` + tests, after a header comment with the
    parts' lengths, so ``decode_tests_program`` recovers the parts exactly."""
    parts = [code, *[str(t) for t in tests]]
    return _HEADER + json.dumps([len(p) for p in parts]) + "\n" + "".join(p + "\n" for p in parts)


def decode_tests_program(program: str) -> tuple[str, list[str]] | None:
    """``(code, tests)`` of a ``tests_program`` string; None for any other program."""
    if not program.startswith(_HEADER):
        return None
    head, _, body = program.partition("\n")
    try:
        lengths = json.loads(head[len(_HEADER):])
    except ValueError:
        return None
    if (not isinstance(lengths, list) or not lengths or not all(isinstance(n, int) and n >= 0 for n in lengths)
            or sum(lengths) + len(lengths) != len(body)):
        return None
    parts, pos = [], 0
    for n in lengths:
        if body[pos + n] != "\n":
            return None
        parts.append(body[pos:pos + n])
        pos += n + 1
    return parts[0], parts[1:]
