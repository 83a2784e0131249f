"""The execution sandbox: outcomes, limits, isolation (each case is a tiny program; the whole file takes seconds)."""

from __future__ import annotations

import os
import socket
import textwrap
import threading
import time

import pytest

from autoalign.sandbox import MAX_OUTPUT_BYTES, MAX_PROCS, ExecResult, isolation, run_many, run_python


def _alive(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker``."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                found.append(cmd)
    return found


def test_normal_code_runs_and_captures_output():
    r = run_python("import sys\nprint(6 * 7)\nprint('warn', file=sys.stderr)")
    assert r == ExecResult(ok=True, returncode=0, stdout="42\n", stderr="warn\n", timed_out=False)


def test_runs_as_main_with_stdlib_only():
    r = run_python("import json\nif __name__ == '__main__':\n    print(json.dumps([1, 2]))")
    assert r.ok and r.stdout == "[1, 2]\n"
    assert not run_python("import pytest").ok  # no site-packages


def test_exception_is_not_ok_with_traceback_from_user_code():
    r = run_python("def f(x):\n    return x / 0\n\nf(1)\n")
    assert not r.ok and r.returncode == 1 and not r.timed_out
    assert "ZeroDivisionError" in r.stderr
    assert 'File "main.py", line 2, in f' in r.stderr and "return x / 0" in r.stderr
    assert "autoalign_sandbox" not in r.stderr  # the preamble's frame is hidden


def test_exit_codes_and_failed_asserts():
    assert run_python("import sys; sys.exit(3)").returncode == 3
    assert run_python("raise SystemExit(0)").ok
    r = run_python("assert 1 + 1 == 3")
    assert not r.ok and "AssertionError" in r.stderr


def test_infinite_loop_times_out_within_the_limit():
    t0 = time.monotonic()
    r = run_python("while True:\n    pass\n", timeout_s=1.0)
    elapsed = time.monotonic() - t0
    assert r.timed_out and not r.ok and r.returncode < 0
    assert elapsed < 3.0


def test_sleeping_program_times_out_on_wall_clock():
    t0 = time.monotonic()
    r = run_python("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout_s=1.0)
    assert r.timed_out and r.stdout == "started\n"
    assert time.monotonic() - t0 < 3.0


def test_memory_bomb_fails():
    r = run_python("x = bytearray(4 * 1024 ** 3)", memory_mb=256)
    assert not r.ok and "MemoryError" in r.stderr
    r = run_python("chunks = []\nwhile True:\n    chunks.append(b'x' * 10 ** 6)", memory_mb=256, timeout_s=5.0)
    assert not r.ok and not r.timed_out


def test_files_land_in_a_scratch_dir_that_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = "import os\nopen('out.txt', 'w').write('hi')\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))"
    r = run_python(code)
    assert r.ok, r.stderr
    cwd, listing = r.stdout.splitlines()
    assert listing == "['out.txt']"  # a fresh, empty directory: only what the program wrote
    assert not os.path.exists(cwd)
    assert not (tmp_path / "out.txt").exists()
    assert os.path.realpath(cwd) != os.path.realpath(os.getcwd())


def test_dropped_privileges_cannot_write_outside(tmp_path):
    if isolation().user is None:
        pytest.skip("programs run as the current user here")
    target = tmp_path / "escaped.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')")
    # Denied by the uid drop, or not even visible (the mount namespace gives the program a private /tmp).
    assert not r.ok and ("PermissionError" in r.stderr or "FileNotFoundError" in r.stderr)
    assert not target.exists()


def test_file_size_limit():
    r = run_python("open('big', 'wb').write(b'x' * (64 * 1024 * 1024))")
    assert not r.ok


def _listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    accepted: list[bool] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (socket.timeout, OSError):
                continue
            accepted.append(True)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    return srv, srv.getsockname()[1], accepted, stop, t


def test_network_connection_to_localhost_fails():
    srv, port, accepted, stop, t = _listener()
    try:
        r = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')")
        assert not r.ok and "connected" not in r.stdout
        assert "PermissionError" in r.stderr
        r = run_python(f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))")
        assert not r.ok
        if isolation().network_namespace:
            # Even the real socket type, dug out from under the preamble's guard, reaches no network.
            escape = textwrap.dedent(f"""
                import _socket
                real = _socket.socket.__mro__[1]
                s = real(_socket.AF_INET, _socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(('127.0.0.1', {port}))
                print('connected')
            """)
            r = run_python(escape)
            assert not r.ok and "connected" not in r.stdout
    finally:
        stop.set()
        t.join()
        srv.close()
    assert accepted == []


def test_fork_limit_and_no_leftover_processes():
    if isolation().user is None and os.geteuid() == 0:
        pytest.skip("root without a drop ignores RLIMIT_NPROC")
    code = textwrap.dedent("""
        import os, time
        n = 0
        try:
            for _ in range(500):
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                n += 1
        except OSError:
            print('limited', n, flush=True)
        print(os.path.dirname(os.getcwd()), flush=True)
    """)
    r = run_python(code, timeout_s=5.0)
    assert r.ok, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "limited" and int(lines[1]) <= MAX_PROCS
    time.sleep(0.2)
    assert _alive(lines[2]) == []  # the sleeping children died with the program


def test_timeout_kills_subprocesses_too():
    code = textwrap.dedent("""
        import os, subprocess, sys
        subprocess.Popen(['sleep', '61.5'])
        print(os.path.dirname(os.getcwd()), flush=True)
        while True:
            pass
    """)
    r = run_python(code, timeout_s=1.5)
    assert r.timed_out
    time.sleep(0.2)
    assert _alive(r.stdout.strip()) == [] and _alive("sleep 61.5") == []


def test_child_that_leaves_the_group_does_not_hang_the_run():
    code = textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(30)
            os._exit(0)
        print('parent done')
    """)
    t0 = time.monotonic()
    r = run_python(code, timeout_s=3.0)
    assert r.ok and r.stdout == "parent done\n" and not r.timed_out
    assert time.monotonic() - t0 < 2.5


def test_output_is_capped():
    r = run_python("import sys\nsys.stdout.write('x' * 10_000_000)\nsys.stderr.write('y' * 10_000_000)")
    assert r.ok
    assert r.stdout.startswith("x" * MAX_OUTPUT_BYTES) and "truncated" in r.stdout
    assert len(r.stdout) < MAX_OUTPUT_BYTES + 100 and len(r.stderr) < MAX_OUTPUT_BYTES + 100


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("AUTOALIGN_SECRET", "hunter2")
    r = run_python("import os\nprint(sorted(k for k in os.environ if 'SECRET' in k or 'KEY' in k))")
    assert r.ok and r.stdout == "[]\n"


def test_run_many_keeps_order_and_isolates_failures():
    codes = ["print(1)", "raise ValueError('boom')", "while True: pass", "print(4)"]
    t0 = time.monotonic()
    rs = run_many(codes, timeout_s=1.0, workers=2)
    assert [r.ok for r in rs] == [True, False, False, True]
    assert rs[0].stdout == "1\n" and rs[3].stdout == "4\n"
    assert "ValueError: boom" in rs[1].stderr and rs[2].timed_out
    assert time.monotonic() - t0 < 5.0
    assert run_many([]) == []


def test_bad_arguments():
    with pytest.raises(ValueError):
        run_python("pass", timeout_s=0)


def test_bare_fallback_still_blocks_sockets_and_times_out(monkeypatch):
    """Without namespaces (a locked-down container), the preamble and the limits still hold."""
    import autoalign.sandbox as sandbox

    monkeypatch.setattr(sandbox, "_isolation", sandbox.Isolation((), False, False, None))
    assert run_python("print('hi')").stdout == "hi\n"
    r = run_python("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)")
    assert not r.ok and "network access is disabled" in r.stderr
    r = run_python("import ssl, asyncio\nprint('imports fine')")  # modules subclassing socket still import
    assert r.ok and r.stdout == "imports fine\n"
    r = run_python("while True: pass", timeout_s=1.0)
    assert r.timed_out


def test_weaker_isolation_is_logged_never_silent(monkeypatch, caplog):
    import autoalign.sandbox as sandbox

    bare = sandbox.Isolation((), False, False, None)
    monkeypatch.setattr(sandbox, "_isolation", None)
    monkeypatch.setattr(sandbox, "_candidates", lambda: [bare])
    with caplog.at_level("WARNING", logger="autoalign.sandbox"):
        assert sandbox.isolation() == bare
    assert "mount namespace" in caplog.text and "PID namespace" in caplog.text
    v = sandbox.run_tests("def f():\n    return 1\nimport sys\nsys.exit(0)\n", ["assert f() == 2"])
    assert not v.passed and "SystemExit" in v.reason  # the grading holds without any namespace
    assert sandbox.run_tests("def f():\n    return 2\n", ["assert f() == 2"]).passed
