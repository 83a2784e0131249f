"""Hostile programs against the sandbox's grading and isolation (issues 12 and 18, plus our own): every wrong
solution below must fail, through ``run_tests`` and through ``run_many(tests_program(...))`` (the path the
execution signal, the lab oracle and HumanEval take), and the host is checked after: no file left behind, no SysV
IPC object, no surviving or zombie process. The same tricks around a right answer still pass."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import textwrap

import pytest

from autoalign import sandbox
from autoalign.records import Prompt
from autoalign.sandbox import REASON_CHARS, isolation, run_many, run_python, run_tests, run_tests_many
from autoalign.signals.environment.execution import ExecutionCheck

TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]
GOOD = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"
MAIN_IDIOM = "\ndef main():\n    return 0\n\nif __name__ == '__main__':\n    import sys\n    sys.exit(main())\n"
_FORGED = '{"total": 3, "ran": 3, "failed": 0, "reason": ""}'

# Each class: a wrong solution that tries to be graded as passing. Grouped by where the class was reported.
HOSTILE = {
    # issue 12: an early exit with status 0 before the tests run, in every way we know
    "sys.exit(0)": WRONG + "import sys\nsys.exit(0)\n",
    "os._exit(0)": WRONG + "import os\nos._exit(0)\n",
    "raise SystemExit(0)": WRONG + "raise SystemExit(0)\n",
    "SIGKILL to itself": WRONG + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "exec /bin/true": WRONG + "import os\nos.execv('/bin/true', ['true'])\n",
    "close stdout then exit": WRONG + "import os, sys\nsys.stdout.close()\nos.close(1)\nos._exit(0)\n",
    "exit inside the function": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os._exit inside the function": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "exit from a thread during the tests": WRONG + textwrap.dedent("""
        import os, threading
        threading.Timer(0.0, lambda: os._exit(0)).start()
    """),
    # issue 18: the ordinary main idiom placed before the tests
    "__main__ idiom": WRONG + MAIN_IDIOM,
    # issue 12: an exception swallowed at import, and exit hooks that hide failures
    "swallowed import error": textwrap.dedent("""
        import atexit, os, sys, threading
        sys.excepthook = lambda *a: None
        threading.excepthook = lambda *a: None
        atexit.register(lambda: os._exit(0))
        try:
            from nowhere import add
        except BaseException:
            pass
    """),
    # issue 12: printed "passed" markers and forged verdict lines on every descriptor
    "printed markers and forged lines": WRONG + textwrap.dedent(f"""
        import os
        print("PASSED\\nall tests passed\\nOK")
        for fd in range(0, 64):
            for line in ("ok " + {_FORGED!r}, {_FORGED!r}, "0" * 32 + " " + {_FORGED!r}):
                try:
                    os.write(fd, (line + "\\n").encode())
                except OSError:
                    pass
        os._exit(0)
    """),
    # issue 12: a monkey-patched assert, builtins, the harness's own tools, a trace function
    "AssertionError replaced": WRONG + "import builtins\nbuiltins.AssertionError = type('Q', (BaseException,), {})\n",
    "exec and compile replaced": WRONG + "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
                                         "builtins.compile = lambda *a, **k: None\n",
    "os.write and json.dumps replaced": WRONG + "import os, json\nos.write = lambda fd, b: len(b)\n"
                                                "json.dumps = lambda *a, **k: '{}'\n",
    "trace function skipping asserts": WRONG + textwrap.dedent("""
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
    # ours: reach the verdict through the interpreter the tests run in (all of these passed before the harness
    # moved to a process of its own)
    "call the harness's report from a frame": "import sys\ndef add(a, b):\n    return 0\n"
                                              "sys._getframe(1).f_locals['report'](3, 0, '')\n",
    "read expected values from the caller": textwrap.dedent("""
        import sys
        def add(a, b):
            consts = [c for c in sys._getframe(1).f_code.co_consts if type(c) is int]
            return consts[-1] if consts else 0
    """),
    "scan memory for the nonce": WRONG + textwrap.dedent(f"""
        import gc, os, re
        for obj in gc.get_objects():
            if isinstance(obj, dict):
                for v in list(obj.values()):
                    if isinstance(v, str) and re.fullmatch('[0-9a-f]{{32}}', v):
                        for fd in range(3, 64):
                            try:
                                os.write(fd, (v + " " + {_FORGED!r} + "\\n").encode())
                            except OSError:
                                pass
    """),
    "object whose __eq__ says yes": "class Yes:\n    def __eq__(self, other):\n        return True\n"
                                    "def add(a, b):\n    return Yes()\n",
    "int subclass whose __eq__ says yes": "class Yes(int):\n    def __eq__(self, other):\n        return True\n"
                                          "    __hash__ = int.__hash__\n"
                                          "def add(a, b):\n    return Yes(0)\n",
    "shadow a builtin the tests use": "def add(a, b):\n    return 0\ndef abs(x):\n    return 0\n",
    "fake module the tests lean on": WRONG + "import types\nmath = types.ModuleType('math')\n"
                                            "math.isclose = lambda *a, **k: True\n",
    "flood the harness's reply pipe": WRONG + textwrap.dedent("""
        import os, threading
        def flood():
            for fd in range(3, 64):
                try:
                    os.write(fd, b'{"ok": 3}\\n' * 10 + b'x' * (1 << 20))
                except OSError:
                    pass
        flood()
    """),
    "kill every process it can": WRONG + "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\n"
                                         "except OSError:\n    pass\n",
}
# these two need tests that use a builtin / the prompt's module
_TESTS_OF = {"shadow a builtin the tests use": ["assert abs(add(1, 2) - 3) < 1e-9"],
             "fake module the tests lean on": ["assert math.isclose(add(1, 2), 3)"]}


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


_OURS = {"unshare", "sh", "setpriv", "sleep", "python3", "true", os.path.basename(os.path.realpath(sys.executable))}


def _zombies_of_ours() -> set[int]:
    """Zombies a sandbox run could leave: unreaped by us, or orphaned to init (which may never reap them)."""
    return {pid for pid, (state, ppid, name) in _procs().items()
            if state == "Z" and (ppid == os.getpid() or (ppid == 1 and name[:15] in {n[:15] for n in _OURS}))}


def _sandboxed_alive() -> list[str]:
    """Live processes running as a sandbox uid (each sandboxed process has one of its own)."""
    from autoalign.sandbox.probe import UID_BASE, UID_SPAN

    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        if UID_BASE <= uid < UID_BASE + UID_SPAN:
            found.append(pid)
    return found


@pytest.fixture(scope="module")
def hostile_verdicts():
    names = list(HOSTILE)
    jobs = [(HOSTILE[n], _TESTS_OF.get(n, TESTS)) for n in names]
    before = _zombies_of_ours()
    verdicts = dict(zip(names, run_tests_many(jobs, timeout_s=5.0)))
    through_programs = dict(zip(names, run_many([sandbox.tests_program(c, t) for c, t in jobs], timeout_s=5.0)))
    return verdicts, through_programs, before


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_solution_fails_on_both_paths(name, hostile_verdicts):
    verdicts, through_programs, _ = hostile_verdicts
    v = verdicts[name]
    assert not v.passed, (name, v)
    assert not through_programs[name].ok, name
    assert v.reason and len(v.reason) <= REASON_CHARS and "\n" not in v.reason


def test_host_is_clean_after_the_hostile_corpus(hostile_verdicts):
    _, _, before = hostile_verdicts
    assert _zombies_of_ours() <= before
    if isolation().drop_privileges:
        assert _sandboxed_alive() == []
    assert os.getpid() in _procs()  # "kill every process it can" reached no process of ours


def test_the_same_tricks_around_a_right_answer_still_pass():
    printing = GOOD + "print('hello')\nimport sys\nprint('warn', file=sys.stderr)\n"
    patched = GOOD + "import builtins\nbuiltins.AssertionError = type('Q', (BaseException,), {})\n"
    swallowed = GOOD + "try:\n    import nowhere\nexcept ImportError:\n    pass\n"
    verdicts = run_tests_many([(GOOD + MAIN_IDIOM, TESTS), (printing, TESTS), (patched, TESTS), (swallowed, TESTS)])
    assert [v.passed for v in verdicts] == [True] * 4
    v = verdicts[0]
    assert (v.total, v.ran, v.failed, v.reason, v.returncode) == (3, 3, 0, "", 0)
    assert run_python(sandbox.tests_program(GOOD, TESTS)).ok


def test_reasons_name_what_happened_in_fixed_words():
    cases = {
        WRONG: "test 1 failed: AssertionError",
        WRONG + MAIN_IDIOM: "test 1 failed: AssertionError",
        "def add(a, b):\n    return 1 / 0\n": "test 1 failed: the solution raised ZeroDivisionError",
        WRONG + "import sys\nsys.exit(0)\n": "the solution raised SystemExit before the tests ran",
        WRONG + "import os\nos._exit(0)\n": "the solution ended before the tests ran",
        "import os\ndef add(a, b):\n    os._exit(0)\n": "test 1 failed: the solution process ended",
        "class Yes:\n    pass\ndef add(a, b):\n    return Yes()\n":
            "test 1 failed: the solution returned a value that is not plain data",
    }
    verdicts = run_tests_many([(code, TESTS) for code in cases])
    assert [v.reason for v in verdicts] == list(cases.values())
    assert verdicts[1].failed == 3 and verdicts[1].ran == 3


def test_the_tests_source_never_reaches_the_solution():
    """The solution searches its whole memory for a marker that only the tests contain (in two halves, so the
    search itself never builds it): the tests' source, and so their expected values, never entered it."""
    marker = "marker_" + secrets.token_hex(6)
    code = GOOD + textwrap.dedent(f"""
        def seen():
            a, b = {marker[:7].encode()!r}, {marker[7:].encode()!r}
            with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
                for line in maps:
                    span, perms = line.split()[:2]
                    if 'r' not in perms:
                        continue
                    lo, hi = (int(x, 16) for x in span.split('-'))
                    try:
                        mem.seek(lo)
                        chunk = mem.read(hi - lo)
                    except (OSError, ValueError, OverflowError):
                        continue
                    i = chunk.find(a)
                    while i >= 0:
                        if chunk[i + len(a):i + len(a) + len(b)] == b:
                            return True
                        i = chunk.find(a, i + 1)
            return False
    """)
    v = run_tests(code, [f"assert seen() is False  # {marker}", *TESTS], timeout_s=20.0)
    assert v.passed, v.reason
    # The same search finds a marker the solution itself holds, so it is a real search.
    v = run_tests(code + f"KEEP = {marker.encode()!r}\n", [f"assert seen() is True  # {marker}"], timeout_s=20.0)
    assert v.passed, v.reason


def test_solution_sees_no_other_process_and_has_no_capability():
    iso = isolation()
    if not (iso.pid_namespace and iso.drop_privileges):
        pytest.skip(f"weaker isolation here: {iso.missing}")
    code = textwrap.dedent("""
        import os
        def pids():
            return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
        def caps():
            with open('/proc/self/status') as f:
                return {k: v.strip() for k, v in (ln.split(':', 1) for ln in f) if k.startswith('Cap')}
        def uid():
            return os.getuid()
    """)
    zero = "0" * 16
    tests = ["assert pids() == [1]",  # only itself: the harness is in another PID namespace
             f"assert caps() == {{'CapInh': {zero!r}, 'CapPrm': {zero!r}, 'CapEff': {zero!r}, "
             f"'CapBnd': {zero!r}, 'CapAmb': {zero!r}}}",
             "assert uid() >= 2_000_000_000"]
    v = run_tests(code, tests)
    assert v.passed, v.reason


def test_no_write_outside_the_scratch_dir():
    iso = isolation()
    if not iso.mount_namespace:
        pytest.skip(f"no mount namespace here: {iso.missing}")
    tag = "autoalign-hostile-" + secrets.token_hex(4)
    places = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/opt", "/"]
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
        def writes():
            return wrote
    """)
    try:
        v = run_tests(code, [*TESTS, "assert writes() == []"])
        assert v.passed, v.reason  # every write outside was refused, the scratch write worked
    finally:
        for d in places:
            if os.path.exists(os.path.join(d, tag)):
                os.remove(os.path.join(d, tag))
                pytest.fail(f"the program wrote {d}/{tag}")


def test_no_sysv_ipc_object_outlives_the_program():
    if not isolation().network_namespace:
        pytest.skip("no IPC namespace here")
    key = 0x5A000000 + secrets.randbelow(1 << 20)
    code = textwrap.dedent(f"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        made = [libc.shmget({key}, 4096, 0o1666), libc.msgget({key}, 0o1666), libc.semget({key}, 1, 0o1666)]
        def add(a, b):
            return a + b
        def created():
            return all(m >= 0 for m in made)
    """)
    v = run_tests(code, [*TESTS, "assert created()"])
    assert v.passed, v.reason  # the program could make them (in its own IPC namespace)...
    for table in ("shm", "msg", "sem"):  # ...and none is on the host
        with open(f"/proc/sysvipc/{table}") as f:
            assert not any(line.split()[0] == str(key) for line in f.readlines()[1:] if line.split()), table


def test_root_only_file_is_unreadable_and_nothing_it_read_is_stored():
    iso = isolation()
    if not iso.drop_privileges:
        pytest.skip("programs run as the current user here")
    if not os.access("/opt", os.W_OK):
        pytest.skip("no world-traversable, root-writable place for the probe file")
    d = tempfile.mkdtemp(prefix="autoalign-hostile-", dir="/opt")
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
        # What a failing solution reads, prints to stderr and raises never reaches the verdict or a label.
        leak = textwrap.dedent(f"""
            import sys
            text = open({public!r}).read()
            sys.stderr.write(text)
            Leak = type("hunter2" * 3, (Exception,), {{}})
            def add(a, b):
                raise Leak(text)
        """)
        v = run_tests(leak, TESTS)
        assert not v.passed and v.reason == "test 1 failed: the solution raised an exception"
        prompt = Prompt(id="p", messages=[{"role": "user", "content": "add"}],
                        env={"kind": "python_tests", "entry_point": "add", "tests": TESTS})
        score = ExecutionCheck()([prompt], [f"```python\n{leak}```"])[0]
        assert score.value == 0.0 and "hunter2" not in repr(score.detail)
    finally:
        shutil.rmtree(d)


def test_fork_bomb_is_bounded_and_leaves_nothing():
    if not isolation().drop_privileges and os.geteuid() == 0:
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
    # A daemon started by a solution that passes dies with it too.
    v = run_tests(GOOD + code.replace("while True:\n    pass\n", ""), TESTS, timeout_s=20.0)
    assert v.passed and not [c for _, _, c in _procs().values() if marker in c]
    r = run_python("import time\ntime.sleep(30)", timeout_s=0.5)  # only sleeps past its timeout
    assert r.timed_out and _zombies_of_ours() <= before
