"""Sandbox throughput: executions per second isolated vs a bare subprocess, as a ratio from one run.

    python benchmarks/sandbox.py [--programs 40] [--workers 1]

Three rows run the same small programs: (1) a bare ``python -I -S -B -c`` subprocess (no limits, no namespaces,
no harness), (2) ``autoalign.sandbox.run_python`` (limits + the isolation this machine allows), (3)
``autoalign.sandbox.run_tests`` (the same, graded by the test harness through the nonce channel). Each row reports
executions per second and its ratio to the bare row; the isolation probe runs before timing starts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoalign import sandbox  # noqa: E402

CODE = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]


def _bare(_: int) -> bool:
    program = CODE + "\n" + "\n".join(TESTS) + "\n"
    r = subprocess.run([sandbox._interpreter(), "-I", "-S", "-B", "-c", program], capture_output=True, timeout=30)
    return r.returncode == 0


def _isolated(_: int) -> bool:
    return sandbox.run_python(CODE + "\n" + "\n".join(TESTS) + "\n").ok


def _graded(_: int) -> bool:
    return sandbox.run_tests(CODE, TESTS).passed


def _rate(fn, n: int, workers: int) -> tuple[float, bool]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ok = all(pool.map(fn, range(n)))
    return n / (time.perf_counter() - start), ok


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=40, help="programs per row")
    ap.add_argument("--workers", type=int, default=1, help="programs in flight at once")
    args = ap.parse_args(argv)
    iso = sandbox.isolation()  # probe outside the timing
    rows = [("bare subprocess", _bare), ("sandbox run_python", _isolated), ("sandbox run_tests (graded)", _graded)]
    results = [(name, *_rate(fn, args.programs, args.workers)) for name, fn in rows]
    base = results[0][1]
    table = Table(title=f"sandbox throughput ({args.programs} programs, {args.workers} worker(s))")
    for col in ("mode", "exec/s", "ratio to bare", "all passed"):
        table.add_column(col)
    for name, rate, ok in results:
        table.add_row(name, f"{rate:.1f}", f"{rate / base:.2f}", str(ok))
    console = Console()
    console.print(table)
    missing = "; ".join(iso.missing) or "nothing"
    console.print(f"isolation: mount ns={iso.mount_namespace} pid ns={iso.pid_namespace} net ns="
                  f"{iso.network_namespace} uid={'own per process' if iso.drop_privileges else 'ours'}; missing: {missing}")


if __name__ == "__main__":
    main()
