"""Hostile programs against the sandbox's grading and isolation: each class must fail, and the host is checked
after (no file left behind, no surviving or zombie process). Correct solutions still pass."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import textwrap

import pytest

from autoalign import sandbox
from autoalign.sandbox import REASON_CHARS, isolation, run_many, run_python, run_tests, run_tests_many

TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]
GOOD = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def _procs() -> dict[int, tuple[str, int, str]]:
    """pid -> (state, ppid, cmdline or, for a zombie, its name) of every process on the host."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(pid)] = (fields["State"].split()[0], int(fields["PPid"]), cmd or fields["Name"].strip())
    return out


_OURS = {"unshare", "sh", "setpriv", "sleep", "python3", os.path.basename(os.path.realpath(sys.executable))}


def _zombies_of_ours() -> set[int]:
    """Zombies a sandbox run could leave: unreaped by us, or orphaned to init (which may never reap them)."""
    return {pid for pid, (state, ppid, name) in _procs().items()
            if state == "Z" and (ppid == os.getpid() or (ppid == 1 and name[:15] in {n[:15] for n in _OURS}))}


def test_correct_solutions_still_pass():
    v = run_tests(GOOD, TESTS)
    assert v.passed and (v.total, v.ran, v.failed, v.reason) == (3, 3, 0, "")
    idiom = GOOD + "\ndef main():\n    return 0\n\nif __name__ == '__main__':\n    import sys\n    sys.exit(main())\n"
    printing = GOOD + "print('hello')\nimport sys\nprint('warn', file=sys.stderr)\n"
    assert [v.passed for v in run_tests_many([(idiom, TESTS), (printing, TESTS)])] == [True, True]
    assert run_python(sandbox.tests_program(GOOD, TESTS)).ok


@pytest.mark.parametrize("exit_stmt", ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit(0)",
                                       "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
def test_early_exit_before_the_tests_fails(exit_stmt):
    v = run_tests(WRONG + exit_stmt + "\n", TESTS)
    assert not v.passed  # (SIGKILL to itself is ignored when the program is PID 1 of its namespace: tests then fail)
    # The same program through the path the execution signal and the oracle use (run_many on tests_program).
    assert not run_many([sandbox.tests_program(WRONG + exit_stmt + "\n", TESTS)])[0].ok


def test_main_idiom_before_the_tests_fails():
    code = WRONG + "\ndef main():\n    return 0\n\nif __name__ == '__main__':\n    import sys\n    sys.exit(main())\n"
    v = run_tests(code, TESTS)
    assert not v.passed and v.failed == 3 and "AssertionError" in v.reason


def test_exit_inside_the_function_under_test_fails():
    code = "import sys, os\ndef add(a, b):\n    sys.exit(0)\n"
    assert not run_tests(code, TESTS).passed
    assert not run_tests("import os\ndef add(a, b):\n    os._exit(0)\n", TESTS).passed


def test_swallowed_exceptions_and_exit_hooks_fail():
    code = textwrap.dedent("""
        import atexit, os, sys, threading
        sys.excepthook = lambda *a: None
        threading.excepthook = lambda *a: None
        atexit.register(lambda: os._exit(0))
        try:
            from nowhere import add
        except BaseException:
            pass
    """)
    v = run_tests(code, TESTS)
    assert not v.passed and v.failed == 3 and "NameError" in v.reason


def test_printed_markers_and_forged_verdicts_fail():
    forged = '{"total": 3, "ran": 3, "failed": 0, "reason": ""}'
    code = WRONG + textwrap.dedent(f"""
        import os
        print("PASSED\\nall tests passed\\nOK")
        for fd in range(0, 64):
            for line in ("ok " + {forged!r}, {forged!r}, "0" * 32 + " " + {forged!r}):
                try:
                    os.write(fd, (line + "\\n").encode())
                except OSError:
                    pass
        os._exit(0)
    """)
    v = run_tests(code, TESTS)
    assert not v.passed and v.ran == 0


def test_monkeypatched_assert_and_builtins_fail():
    patches = [
        "import builtins\nbuiltins.AssertionError = type('Quiet', (BaseException,), {})\n",
        "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: None\n",
        "import os, json\nos.write = lambda fd, b: len(b)\njson.dumps = lambda *a, **k: '{}'\n",
        textwrap.dedent("""
            import sys
            def skip(frame, event, arg):
                if event == 'line' and frame.f_code.co_filename.startswith('<test'):
                    try:
                        frame.f_lineno = frame.f_lineno + 1
                    except ValueError:
                        pass
                return skip
            sys.settrace(skip)
        """),
    ]
    verdicts = run_tests_many([(WRONG + p, TESTS) for p in patches])
    assert [v.passed for v in verdicts] == [False] * len(patches)
    assert run_tests(GOOD + patches[0], TESTS).passed  # harmless for a right answer


def test_no_write_outside_the_scratch_dir():
    iso = isolation()
    if not iso.mount_namespace:
        pytest.skip(f"no mount namespace here: {iso.missing}")
    tag = "autoalign-hostile-" + secrets.token_hex(4)
    places = ["/tmp", "/var/tmp", "/dev/shm", "/opt", "/"]
    code = GOOD + textwrap.dedent(f"""
        import os
        wrote = []
        for d in {places!r}:
            try:
                with open(os.path.join(d, {tag!r}), "w") as f:
                    f.write("x")
                wrote.append(d)
            except OSError:
                pass
        open("scratch-ok", "w").write("fine")  # the scratch directory itself is writable
        assert wrote == [], wrote
    """)
    try:
        v = run_tests(code, TESTS)
        assert v.reason == "" and v.passed, v.reason  # every write outside was refused, the scratch write worked
        for d in places:
            assert not os.path.exists(os.path.join(d, tag))
    finally:
        for d in places:
            if os.path.exists(os.path.join(d, tag)):
                os.remove(os.path.join(d, tag))


def test_root_only_file_is_unreadable():
    iso = isolation()
    if iso.user is None:
        pytest.skip("programs run as the current user here")
    base = "/opt" if os.access("/opt", os.W_OK) else None
    if base is None:
        pytest.skip("no world-traversable, root-writable place for the probe file")
    d = tempfile.mkdtemp(prefix="autoalign-hostile-", dir=base)
    try:
        os.chmod(d, 0o755)
        secret, public = os.path.join(d, "secret"), os.path.join(d, "public")
        for path, mode in ((secret, 0o600), (public, 0o644)):
            with open(path, "w") as f:
                f.write("hunter2 " * 100)
            os.chmod(path, mode)
        r = run_python(f"print(len(open({public!r}).read()))\nopen({secret!r}).read()")
        assert r.stdout == "800\n"  # the place is visible: the secret is refused by permission, not absence
        assert not r.ok and "PermissionError" in r.stderr
        # What a failing program reads and raises is stored as one bounded line, never the whole stderr.
        leak = f"def add(a, b):\n    raise ValueError(open({public!r}).read())\n"
        v = run_tests(leak, TESTS)
        assert not v.passed and v.reason.startswith("test 1 failed: ValueError: hunter2")
        assert len(v.reason) <= REASON_CHARS and "\n" not in v.reason
    finally:
        shutil.rmtree(d)


def test_fork_bomb_is_bounded_and_leaves_nothing():
    if isolation().user is None and os.geteuid() == 0:
        pytest.skip("root without a drop ignores RLIMIT_NPROC")
    tag = secrets.token_hex(4)
    code = textwrap.dedent(f"""
        import os
        TAG = {tag!r}
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    v = run_tests(code, TESTS, timeout_s=1.5)
    assert not v.passed and v.timed_out
    assert not [c for _, _, c in _procs().values() if tag in c]
    assert not _zombies_of_ours()


def test_setsid_child_does_not_outlive_the_timeout_and_no_zombies():
    if not isolation().pid_namespace:
        pytest.skip("no PID namespace here")
    marker = f"61.{secrets.randbelow(10 ** 6):06d}"
    code = textwrap.dedent(f"""
        import os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", {marker!r}])
            os._exit(0)
        while True:
            pass
    """)
    before = _zombies_of_ours()
    v = run_tests(GOOD + code, TESTS, timeout_s=1.0)
    assert not v.passed and v.timed_out and v.reason == "timed out"
    assert not [c for _, _, c in _procs().values() if marker in c]
    assert _zombies_of_ours() <= before
    # A program that only sleeps past its timeout leaves no zombie either.
    r = run_python("import time\ntime.sleep(30)", timeout_s=0.5)
    assert r.timed_out and _zombies_of_ours() <= before
