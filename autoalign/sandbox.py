"""The execution sandbox for model-written code (CONTRACTS.md, "Sandbox API").

Model-written programs are untrusted, and under RL they are optimised against whatever grades them: they may loop
forever, allocate without bound, fork, leave their process group, write files, read secrets, open connections, or
end the interpreter "successfully" before the tests run. Each program runs in its own short-lived process:

- **Isolation (probed once, strongest first; ``isolation()``).** On Linux as root: ``unshare`` into new mount,
  network and PID namespaces; inside, a setup script remounts ``/`` read-only (for this namespace only), mounts
  private tmpfs over ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (root-owned, mode 0755, so the program can write in
  none of them), mounts a fresh ``/proc`` (only the sandbox's own processes are visible), creates the scratch
  directory on the private ``/tmp`` (the only writable place, owned by the program's uid, gone with the namespace),
  and bind-mounts the interpreter's prefix next to it, so the interpreter stays reachable even when it lives under a
  private home (pyenv in ``/root``). The program then runs as ``nobody`` (``setpriv``: real/effective uid and gid,
  ``setgroups([])``, every capability cleared from the effective, inheritable, ambient and bounding sets,
  ``no_new_privs``): no ``CAP_DAC_OVERRIDE`` / ``CAP_DAC_READ_SEARCH``, so root-only files are unreadable, and
  ``RLIMIT_NPROC`` applies. The program is PID 1 of its namespace: when it exits or is killed, the kernel kills
  every process it started, whatever they did with ``setsid`` or process groups.
  As a non-root user the same namespaces are made inside a user namespace (no uid drop: the user's own files stay
  readable). When namespaces are refused (a locked-down container), the fallbacks are, in order: ``nobody``
  without namespaces, namespaces without ``nobody``, then a bare interpreter in a host scratch directory. Every
  fallback is logged as a WARNING naming what is missing (``Isolation.missing``); it is never silent.
- ``resource.setrlimit`` limits set between fork and exec: address space, CPU seconds, file size, open files,
  processes, no core dumps; a wall-clock timeout after which the process group is killed and every child reaped.
- An isolated interpreter (``python -I -S -B``) with a scrubbed environment; its source arrives on a pipe that the
  preamble reads and closes before user code runs. A preamble replaces the socket constructors so code that merely
  tries the network fails fast even without a network namespace.

**Grading test programs (``run_tests`` / ``run_tests_many``; one function for the execution signal, the lab oracle
and HumanEval).** The harness, written by the sandbox, ``exec``\\ s the user's code in a fresh module namespace
(named ``solution``, so an ``if __name__ == "__main__":`` block does not run, as in the reference HumanEval
harness), then each test statement (compiled before the user's code runs), catching every ``BaseException``
(``SystemExit`` included). Only after the last test does it write one verdict line to a pipe that is not stdout,
prefixed by a per-run random nonce that the host sends on the (then closed) input pipe; the harness then leaves
with ``os._exit``. A test program passes only when that line says every test ran and passed, the process exited 0
and nothing timed out. So an early exit (``sys.exit``, ``os._exit``, ``raise SystemExit``, a ``__main__`` block),
an exception swallowed at import, a printed "passed" marker, a monkey-patched ``assert``/``AssertionError``/
builtins, or a trace function that jumps over asserts are failures. A verdict's ``reason`` is one line (exception
type and message, truncated to ``REASON_CHARS``): a program's stderr is never what is stored.

What remains possible: the user's code runs in the harness's process, so code that digs the nonce out of the
harness's memory (frames, ``gc``, ``ctypes``, ``/proc/self/mem``) can forge a verdict, and a returned object whose
``__eq__`` always answers True passes ``assert f(x) == y``. Those need deliberate introspection; the sandbox stops
the cheap exits and markers, not a determined adversary inside the same interpreter.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import resource
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 64 * 1024  # per stream; the rest is read and discarded so the child never blocks on a pipe
MAX_PROCS = 32  # processes/threads the sandboxed user may add to what it already runs
MAX_FILE_MB = 16
MAX_SCRATCH_MB = 64  # size of the private tmpfs holding the scratch directory
MAX_OPEN_FILES = 64
REASON_CHARS = 200  # a verdict's reason: one line, at most this long
_VERDICT_BYTES = 4096
_GRACE_S = 0.5  # after the program exits (or is killed): how long to wait for its pipes to close
_TRUNCATED = "\n[... output truncated by the sandbox ...]\n"
_HEADER = "# autoalign-sandbox tests "  # first line of a test program made by ``tests_program``

# Runs as root inside the new namespaces: $1 scratch dir, $2 interpreter prefix, $3 uid:gid owning the scratch
# ("-": keep ours), then the command to exec (setpriv ... python ...).
_SETUP = r"""set -e
S=$1; P=$2; U=$3; shift 3
mount -o remount,bind,ro /
mount -t tmpfs -o mode=0755,size=__MB__m,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev tmpfs /var/tmp
mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev tmpfs /dev/shm
mount -t proc -o nosuid,nodev,noexec proc /proc
mkdir -p "$S/work" "$S/python"
chmod 0755 "$S"
chmod 0700 "$S/work"
[ "$U" = - ] || chown "$U" "$S/work"
mount --bind "$P" "$S/python"
mount -o remount,bind,ro "$S/python"
cd "$S/work"
exec "$@"
""".replace("__MB__", str(MAX_SCRATCH_MB))

# Runs inside the child before the user's program: read the job from the input pipe and close it, turn the network
# off, then either run the program as ``__main__`` (plain mode) or run the test harness (tests mode).
_PREAMBLE = r"""
import sys
def _autoalign_sandbox():
    import os, json
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    chunks = []
    while True:
        b = os.read(rfd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(rfd)
    job = json.loads(b"".join(chunks).decode("utf-8"))
    del chunks
    import socket, _socket
    def _denied(*args, **kwargs):
        raise PermissionError("network access is disabled in the autoalign sandbox")
    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _denied()
    class _NoRawSocket(_socket.socket):
        def __init__(self, *args, **kwargs):
            _denied()
    for mod, cls in ((socket, _NoSocket), (_socket, _NoRawSocket)):
        mod.socket = mod.SocketType = cls
        for name in ("socketpair", "fromfd", "create_connection", "create_server", "getaddrinfo",
                     "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
            if hasattr(mod, name):
                setattr(mod, name, _denied)
    source = job["code"]
    tests = job.get("tests")
    if tests is None:
        os.close(wfd)
        main = type(sys)("__main__")
        main.__file__ = "main.py"
        main.__builtins__ = __builtins__
        sys.modules["__main__"] = main
        sys.argv = ["main.py"]
        try:
            code = compile(source, "main.py", "exec")
            exec(code, main.__dict__)
        except SystemExit:
            raise
        except BaseException as exc:
            import linecache, traceback
            linecache.cache["main.py"] = (len(source), None, source.splitlines(True), "main.py")
            tb = None if isinstance(exc, SyntaxError) else exc.__traceback__.tb_next  # hide our frame
            traceback.print_exception(type(exc), exc, tb)
            sys.stderr.flush()
            sys.exit(1)
        return
    # Tests mode. Everything the verdict depends on is bound here, before the user's code can patch it.
    nonce = job.pop("nonce")
    del job
    _write, _exit, _exec, _len, _str, _type, _isinst = os.write, os._exit, exec, len, str, type, isinstance
    _gettrace, _getprofile, _settrace, _BaseException = sys.gettrace, sys.getprofile, sys.settrace, BaseException
    _dumps, _stdout, _stderr = json.dumps, sys.stdout, sys.stderr
    total = _len(tests)
    def why(where, exc):
        try:
            msg = _type(exc).__name__ + ": " + _str(exc)
        except _BaseException:
            msg = "unprintable exception"
        return (where + ": " + msg).replace("\n", " ")[:__REASON__]
    def report(ran, failed, reason):
        for s in (_stdout, _stderr):
            try:
                s.flush()
            except _BaseException:
                pass
        line = nonce + " " + _dumps({"total": total, "ran": ran, "failed": failed, "reason": reason}) + "\n"
        try:
            _write(wfd, line.encode())
        finally:
            _exit(0)
    try:
        compiled = [compile(t, "<test %d>" % (i + 1), "exec") for i, t in enumerate(tests)]
    except _BaseException as exc:
        report(0, 0, why("invalid test", exc))
    solution = type(sys)("solution")
    solution.__file__ = "solution.py"
    solution.__builtins__ = __builtins__
    sys.modules["solution"] = sys.modules["__main__"] = solution
    sys.argv = ["solution.py"]
    ns = solution.__dict__
    try:
        code = compile(source, "solution.py", "exec")
        _exec(code, ns)
    except _BaseException as exc:
        report(0, 0, why("solution raised", exc))
    if _gettrace() is not None or _getprofile() is not None:
        report(0, 0, "solution installed a trace or profile function")
    ran = failed = 0
    first = ""
    for i, test in enumerate(compiled):
        try:
            _exec(test, ns)
        except _BaseException as exc:
            failed += 1
            first = first or why("test %d failed" % (i + 1), exc)
        ran += 1
        if _gettrace() is not None or _getprofile() is not None:
            _settrace(None)
            report(ran, failed + 1, "test %d installed a trace or profile function" % (i + 1))
    report(ran, failed, first)
_autoalign_sandbox()
""".replace("__REASON__", str(REASON_CHARS))


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program. ``ok``: exited with status 0 and did not time out; for a test program made by
    ``tests_program``: the harness reported every test run and passed (``stderr`` is then the verdict's one-line
    reason). ``returncode`` is negative when a signal killed the program (``-9`` after a timeout)."""

    ok: bool
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


@dataclass(frozen=True)
class TestVerdict:
    """The harness's verdict on one test program. ``passed`` only when every one of ``total`` tests ran and
    passed, reported through the nonce channel, with exit 0 and no timeout. ``reason``: one bounded line."""

    __test__ = False  # not a pytest class

    passed: bool
    total: int
    ran: int
    failed: int
    reason: str
    timed_out: bool = False
    returncode: int = 0
    stdout: str = ""


@dataclass(frozen=True)
class Isolation:
    """How programs are isolated on this machine (probed once): the command prefix placed before the
    interpreter, whether network/PID namespaces are in use, the uid/gid programs run as (None: ours), whether the
    mount namespace (read-only ``/``, private tmpfs ``/tmp``, ``/var/tmp``, ``/dev/shm``) is in use, and the
    privilege drop run after the mount setup."""

    prefix: tuple[str, ...]
    network_namespace: bool
    pid_namespace: bool
    user: tuple[int, int] | None
    mount_namespace: bool = False
    drop: tuple[str, ...] = ()

    @property
    def missing(self) -> list[str]:
        """What this setup lacks compared with the strongest one (empty: nothing)."""
        out = []
        if not self.mount_namespace:
            out.append("mount namespace (writes to /tmp, /var/tmp, /dev/shm and other world-writable places "
                       "are possible)")
        if not self.pid_namespace:
            out.append("PID namespace (a process that leaves its group may outlive the timeout)")
        if not self.network_namespace:
            out.append("network namespace (only the socket preamble blocks the network)")
        if self.user is None and os.geteuid() == 0:
            out.append("uid drop (programs run as root: every file is readable and writable)")
        return out


_isolation: Isolation | None = None
_isolation_lock = threading.Lock()


def _interpreter() -> str:
    """The base interpreter (not a venv launcher): with ``-I -S`` the venv adds nothing, and its path may not be
    readable once privileges are dropped."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _nobody() -> tuple[int, int] | None:
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def _setpriv(uid: int, gid: int) -> tuple[str, ...]:
    # Drop to ``nobody`` with no capability at all (no DAC override/read-search); no_new_privs blocks setuid
    # binaries.
    return ("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--")


def _candidates() -> list[Isolation]:
    """Isolation setups from strongest to weakest; the first whose probe succeeds is used."""
    ns = ("--net", "--pid", "--fork", "--kill-child")
    mnt = ("--mount", "--propagation", "private")
    setup = ("/bin/sh", "-c", _SETUP, "sh")
    out: list[Isolation] = []
    have_unshare, have_setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if os.geteuid() == 0:
        nobody = _nobody()
        if nobody and have_setpriv:
            drop = _setpriv(*nobody)
            if have_unshare:
                out.append(Isolation(("unshare", *mnt, *ns, "--", *setup), True, True, nobody, True, drop))
            out.append(Isolation((), False, False, nobody, False, drop))
        if have_unshare:
            out.append(Isolation(("unshare", *mnt, *ns, "--", *setup), True, True, None, True))
            out.append(Isolation(("unshare", *ns, "--"), True, True, None))
    elif have_unshare:
        user = ("unshare", "--user", "--map-root-user")
        out.append(Isolation((*user, *mnt, *ns, "--", *setup), True, True, None, True))
        out.append(Isolation((*user, *ns, "--"), True, True, None))
    out.append(Isolation((), False, False, None))
    return out


def isolation() -> Isolation:
    """The isolation programs get here: probed on first use by running a tiny program under each candidate
    setup (namespaces may be forbidden in a container, ``nobody`` may be missing), then cached. A setup weaker
    than the strongest is logged as a warning naming what is missing."""
    global _isolation
    with _isolation_lock:
        if _isolation is None:
            for cand in _candidates():
                res = _execute("import json, os\n", 10.0, 256, cand)
                if res.ok:
                    _isolation = cand
                    break
            else:  # pragma: no cover - the bare interpreter always works
                _isolation = Isolation((), False, False, None)
            if _isolation.missing:
                log.warning("autoalign sandbox: weaker isolation on this machine, missing: %s",
                            "; ".join(_isolation.missing))
        return _isolation


def _tasks_of(uid: int) -> int:
    """Processes + threads ``uid`` runs now (what ``RLIMIT_NPROC`` counts), so the limit is relative to it."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            n += int(fields.get("Threads", "1").strip())
    return n


def _limits(timeout_s: float, memory_mb: int, nproc: int | None):
    """``preexec_fn``: only async-signal-safe-ish work (setrlimit) between fork and exec."""
    cpu = int(timeout_s) + 1
    mem = memory_mb * 1024 * 1024
    fsize = MAX_FILE_MB * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


def _rmtree(path: str) -> None:
    """Remove the scratch tree even if the program made parts of it unreadable."""

    def fix(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
                shutil.rmtree(p, ignore_errors=True)
            else:
                func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def _feed(fd: int, data: bytes) -> None:
    """Write the job to the child's input pipe and close it (a thread: the job may exceed the pipe buffer)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:  # the child died before reading all of it
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Raw:
    result: ExecResult
    verdict: bytes


def _execute(code: str, timeout_s: float, memory_mb: int, iso: Isolation,
             tests: Sequence[str] | None = None, nonce: str = "") -> ExecResult:
    return _spawn(code, timeout_s, memory_mb, iso, tests, nonce).result


def _spawn(code: str, timeout_s: float, memory_mb: int, iso: Isolation, tests: Sequence[str] | None,
           nonce: str) -> _Raw:
    job: dict[str, object] = {"code": code}
    if tests is not None:
        job.update(tests=list(tests), nonce=nonce)
    payload = json.dumps(job).encode("utf-8")
    host_root = None
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    feeder = None
    try:
        uid = iso.user[0] if iso.user is not None else os.getuid()
        nproc = None if uid == 0 else _tasks_of(uid) + MAX_PROCS  # root ignores RLIMIT_NPROC anyway
        interp = _interpreter()
        if iso.mount_namespace:
            scratch = "/tmp/autoalign-sandbox-" + secrets.token_hex(6)
            real, prefix = os.path.realpath(interp), os.path.realpath(sys.base_prefix)
            rel = os.path.relpath(real, prefix)
            inside = interp if rel.startswith("..") else os.path.join(scratch, "python", rel)
            owner = f"{iso.user[0]}:{iso.user[1]}" if iso.user is not None else "-"
            work, cwd = os.path.join(scratch, "work"), "/"
            head = [*iso.prefix, scratch, prefix, owner, *iso.drop, inside]
            lib = [os.path.join(scratch, "python", "lib")]
        else:
            host_root = tempfile.mkdtemp(prefix="autoalign-sandbox-")
            work = cwd = os.path.join(host_root, "work")
            os.mkdir(work, 0o700)
            os.chmod(host_root, 0o711)
            if iso.user is not None:
                os.chown(work, *iso.user)
            head = [*iso.prefix, *iso.drop, interp]
            lib = []
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8"}
        if lib and os.environ.get("LD_LIBRARY_PATH"):
            env["LD_LIBRARY_PATH"] = lib[0]
        argv = [*head, "-I", "-S", "-B", "-X", "utf8", "-c", _PREAMBLE, str(r_in), str(w_out)]
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                                pass_fds=(r_in, w_out), preexec_fn=_limits(timeout_s, memory_mb, nproc))
        os.close(r_in)
        os.close(w_out)
        r_in = w_out = -1
        feeder = threading.Thread(target=_feed, args=(w_in, payload), daemon=True)
        w_in = -1
        feeder.start()
        return _collect(proc, timeout_s, r_out)
    finally:
        for fd in (r_in, w_in, w_out, r_out):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if feeder is not None:
            feeder.join(timeout=_GRACE_S)
        if host_root is not None:
            _rmtree(host_root)


def _exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: while it is a zombie its pid (= process group id) cannot be
    reused, so killing the group afterwards never hits a stranger."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill(proc: subprocess.Popen) -> None:
    """Kill the namespace's init (the child of ``unshare``) first, so ``unshare`` reaps it and nothing is left
    as a zombie under the host's init; then the whole process group."""
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        kids = []
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    end = time.monotonic() + _GRACE_S
    while kids and not _exited(proc.pid) and time.monotonic() < end:
        time.sleep(0.005)  # ``unshare`` reaps its child (the namespace is torn down first), then exits itself
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect(proc: subprocess.Popen, timeout_s: float, verdict_fd: int) -> _Raw:
    """Read the pipes (keeping at most ``MAX_OUTPUT_BYTES`` of each stream) until they close, the program exits or
    the wall clock runs out; then kill whatever is left of the process group and reap the child."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray(), verdict_fd: bytearray()}
    room_of = {out_fd: MAX_OUTPUT_BYTES, err_fd: MAX_OUTPUT_BYTES, verdict_fd: _VERDICT_BYTES}
    cut = dict.fromkeys(bufs, False)
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    timed_out = killed = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if not killed and now >= deadline:
                timed_out = not _exited(proc.pid)
                _kill(proc)
                killed, deadline = True, now + _GRACE_S
            elif killed and now >= deadline:
                break  # a process outside the group still holds a pipe: give up on the rest of the output
            elif not killed and _exited(proc.pid):
                deadline = min(deadline, now + _GRACE_S)  # leftovers may hold the pipes open
            for key, _ in sel.select(min(0.05, max(0.0, deadline - now))):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                room = room_of[key.fd] - len(buf)
                if room > 0:
                    buf += data[:room]
                cut[key.fd] = cut[key.fd] or len(data) > room
        if not killed:
            while not _exited(proc.pid):  # the pipes closed early; the program may still run
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                time.sleep(0.01)
    finally:
        sel.close()
        _kill(proc)  # whatever is left (the leader is not reaped yet: the pgid is still ours)
        returncode = proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    if timed_out:
        # We killed the namespace's init; ``unshare`` then tries to re-raise SIGKILL on itself, cannot block it,
        # says so and exits 1. Report the kill as the contract says (-9), without that line.
        returncode = -signal.SIGKILL
        err = bufs[err_fd]
        for noise in (b"unshare: sigprocmask unblock failed: Invalid argument\n",):
            if err.endswith(noise):
                del err[-len(noise):]

    def text(fd: int) -> str:
        return bufs[fd].decode("utf-8", errors="replace") + (_TRUNCATED if cut[fd] else "")

    result = ExecResult(ok=returncode == 0 and not timed_out, returncode=returncode, stdout=text(out_fd),
                        stderr=text(err_fd), timed_out=timed_out)
    return _Raw(result, bytes(bufs[verdict_fd]))


def _check(value: float | int, name: str) -> None:
    if value <= 0:
        raise ValueError(f"sandbox: {name} must be positive")


def _last_line(stderr: str) -> str:
    """The last non-empty line of a traceback (exception type and message), bounded: never the whole stderr."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and "truncated by the sandbox" not in ln]
    return lines[-1][:REASON_CHARS] if lines else ""


def _verdict(raw: _Raw, nonce: str, total: int) -> TestVerdict:
    r = raw.result

    def make(passed: bool, ran: int, failed: int, reason: str) -> TestVerdict:
        return TestVerdict(passed, total, ran, failed, reason[:REASON_CHARS], timed_out=r.timed_out,
                           returncode=r.returncode, stdout=r.stdout)

    if r.timed_out:
        return make(False, 0, 0, "timed out")
    lines = [ln for ln in raw.verdict.decode("utf-8", "replace").splitlines() if ln.startswith(nonce + " ")]
    if len(lines) != 1:
        tail = _last_line(r.stderr)
        reason = "the harness reported no verdict (the program ended before its tests ran"
        return make(False, 0, 0, reason + (f"; exit status {r.returncode}: {tail})" if tail else
                                           f"; exit status {r.returncode})"))
    try:
        rep = json.loads(lines[0][len(nonce) + 1:])
        ran, failed, reason = int(rep["ran"]), int(rep["failed"]), str(rep["reason"])
        same_total = int(rep["total"]) == total
    except (ValueError, KeyError, TypeError):
        return make(False, 0, 0, "malformed verdict")
    passed = same_total and ran == total and failed == 0 and r.returncode == 0 and not reason
    if not passed and not reason:
        reason = f"exit status {r.returncode}" if r.returncode else "not every test ran"
    return make(passed, ran, failed, reason)


def run_tests(code: str, tests: Sequence[str], timeout_s: float = 5.0, memory_mb: int = 512) -> TestVerdict:
    """Grade one program: run ``code`` and then each test statement under the sandbox's harness (module
    docstring). ``passed`` only when the harness reports every test ran and passed."""
    _check(timeout_s, "timeout_s")
    _check(memory_mb, "memory_mb")
    tests = [str(t) for t in tests]
    nonce = secrets.token_hex(16)
    raw = _spawn(code, float(timeout_s), int(memory_mb), isolation(), tests, nonce)
    return _verdict(raw, nonce, len(tests))


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
    return _execute(code, float(timeout_s), int(memory_mb), isolation())


def default_workers() -> int:
    """A small pool: each program is its own process, so more threads than cores only adds contention."""
    return max(1, min(4, os.cpu_count() or 1))


def run_many(codes: Sequence[str], timeout_s: float = 5.0, memory_mb: int = 512,
             workers: int | None = None) -> list[ExecResult]:
    """Run programs in parallel (each in its own sandboxed process); results in the order of ``codes``."""
    if not codes:
        return []
    isolation()  # probe once, before the threads race for it
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return list(pool.map(lambda c: run_python(c, timeout_s, memory_mb), codes))
