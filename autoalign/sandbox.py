"""The execution sandbox for model-written code (CONTRACTS.md, "Sandbox API").

Model-written programs are untrusted: they may loop forever, allocate without bound, fork, write files or open
connections. Each program therefore runs in its own short-lived process with layered defences:

- an isolated interpreter (``python -I -S -B``: no site-packages, no user paths, no ``PYTHON*`` variables) with a
  scrubbed environment and a fresh scratch directory as its cwd (also ``HOME`` and ``TMPDIR``), removed afterwards;
- ``resource.setrlimit`` limits set between fork and exec: address space, CPU seconds, file size, open files,
  processes, no core dumps;
- a wall-clock timeout after which the whole process group is killed (SIGKILL);
- where the system allows it, new network and PID namespaces (``unshare``): no interface but a downed loopback,
  and every process the program starts dies with it, even one that left the process group. When autoalign runs as
  root, the program runs as ``nobody`` (``setpriv``) so it cannot write outside world-writable places and the
  process limit applies (root ignores ``RLIMIT_NPROC``); it keeps only ``CAP_DAC_READ_SEARCH`` so the interpreter
  and standard library stay readable wherever they are installed;
- in every case a preamble replaces the socket constructors with one that raises before user code runs, so code
  that merely tries the network fails fast even without a namespace.

The strongest available isolation is probed once per process (``isolation()``) and cached.
"""

from __future__ import annotations

import os
import pwd
import resource
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

MAX_OUTPUT_BYTES = 64 * 1024  # per stream; the rest is read and discarded so the child never blocks on a pipe
MAX_PROCS = 32  # processes/threads the sandboxed user may add to what it already runs
MAX_FILE_MB = 16
MAX_OPEN_FILES = 64
_GRACE_S = 0.5  # after the program exits (or is killed): how long to wait for its pipes to close
_TRUNCATED = "\n[... output truncated by the sandbox ...]\n"

# Runs inside the child before the user's program: read the program, turn the network off, run the program as
# ``__main__`` with tracebacks that start at the user's code.
_PREAMBLE = r"""
import sys
def _autoalign_sandbox():
    path = sys.argv[1]
    with open(path, "rb") as f:
        source = f.read()
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
    main = type(sys)("__main__")
    main.__file__ = "main.py"
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["main.py"]
    code = compile(source, "main.py", "exec")
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        import linecache, traceback
        linecache.cache["main.py"] = (len(source), None, source.decode("utf-8", "replace").splitlines(True), "main.py")
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        sys.stderr.flush()
        sys.exit(1)
_autoalign_sandbox()
"""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program. ``ok``: exited with status 0 and did not time out. ``returncode`` is negative when a
    signal killed the program (``-9`` after a timeout)."""

    ok: bool
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


@dataclass(frozen=True)
class Isolation:
    """How programs are isolated on this machine (probed once): the command prefix placed before the
    interpreter, whether network/PID namespaces are in use, and the uid/gid programs run as (None: ours)."""

    prefix: tuple[str, ...]
    network_namespace: bool
    pid_namespace: bool
    user: tuple[int, int] | None


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
    # Drop to ``nobody``; keep only CAP_DAC_READ_SEARCH (read/traverse, never write) so an interpreter installed
    # under a private home (pyenv in /root) still starts; no_new_privs blocks setuid binaries.
    caps = "-all,+dac_read_search"
    return ("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", f"--inh-caps={caps}",
            f"--ambient-caps={caps}", f"--bounding-set={caps}", "--no-new-privs", "--")


def _candidates() -> list[Isolation]:
    """Isolation setups from strongest to weakest; the first whose probe succeeds is used."""
    ns = ("--net", "--pid", "--fork", "--kill-child")
    out: list[Isolation] = []
    have_unshare, have_setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if os.geteuid() == 0:
        nobody = _nobody()
        if nobody and have_setpriv:
            drop = _setpriv(*nobody)
            if have_unshare:
                out.append(Isolation(("unshare", *ns, "--", *drop), True, True, nobody))
            out.append(Isolation(drop, False, False, nobody))
        if have_unshare:
            out.append(Isolation(("unshare", *ns, "--"), True, True, None))
    elif have_unshare:
        out.append(Isolation(("unshare", "--user", "--map-root-user", *ns, "--"), True, True, None))
    out.append(Isolation((), False, False, None))
    return out


def isolation() -> Isolation:
    """The isolation programs get here: probed on first use by running a tiny program under each candidate
    setup (namespaces may be forbidden in a container, ``nobody`` may be missing), then cached."""
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


def _execute(code: str, timeout_s: float, memory_mb: int, iso: Isolation) -> ExecResult:
    root = tempfile.mkdtemp(prefix="autoalign-sandbox-")
    try:
        work = os.path.join(root, "work")
        os.mkdir(work, 0o700)
        main = os.path.join(root, "main.py")
        with open(main, "w", encoding="utf-8") as f:
            f.write(code)
        os.chmod(main, 0o444)
        os.chmod(root, 0o711)
        if iso.user is not None:
            os.chown(work, *iso.user)
        uid = iso.user[0] if iso.user is not None else os.getuid()
        nproc = None if uid == 0 else _tasks_of(uid) + MAX_PROCS  # root ignores RLIMIT_NPROC anyway
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8"}
        argv = [*iso.prefix, _interpreter(), "-I", "-S", "-B", "-X", "utf8", "-c", _PREAMBLE, main]
        proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                                preexec_fn=_limits(timeout_s, memory_mb, nproc))
        return _collect(proc, timeout_s)
    finally:
        _rmtree(root)


def _exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: while it is a zombie its pid (= process group id) cannot be
    reused, so killing the group afterwards never hits a stranger."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _collect(proc: subprocess.Popen, timeout_s: float) -> ExecResult:
    """Read both pipes (keeping at most ``MAX_OUTPUT_BYTES`` each) until they close, the program exits or the
    wall clock runs out; then kill whatever is left of the process group and reap the child."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
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
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
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
                room = MAX_OUTPUT_BYTES - len(buf)
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
        try:  # whatever the program left behind in its group (the leader is not reaped yet: the pgid is ours)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        returncode = proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    def text(fd: int) -> str:
        return bufs[fd].decode("utf-8", errors="replace") + (_TRUNCATED if cut[fd] else "")

    return ExecResult(ok=returncode == 0 and not timed_out, returncode=returncode, stdout=text(out_fd),
                      stderr=text(err_fd), timed_out=timed_out)


def run_python(code: str, timeout_s: float = 5.0, memory_mb: int = 512) -> ExecResult:
    """Run one Python program in the sandbox and return what happened (never raises for the program's faults).

    ``timeout_s`` is wall-clock (the CPU limit is one second more); ``memory_mb`` caps the address space."""
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError("run_python: timeout_s and memory_mb must be positive")
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
