"""Starting sandboxed processes and collecting what they leave: limits, pipes, the wall clock, the kill, the reap.

Each process is one interpreter (``python -I -S -B``, a scrubbed environment) under the isolation ``probe`` found,
with ``resource.setrlimit`` limits set between fork and exec (address space, CPU seconds, file size, open files,
processes, no core dumps). Its source is one of the programs in ``inside/``, given with ``-c``; its job arrives on
a pipe that the program reads to the end and closes before anything else runs. At the wall-clock deadline the
namespace's init and then the process group are killed, and every child is reaped: no zombie is left.
"""

from __future__ import annotations

import json
import os
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    from autoalign.sandbox.probe import Isolation

MAX_OUTPUT_BYTES = 64 * 1024  # per stream; the rest is read and discarded so the child never blocks on a pipe
MAX_PROCS = 32  # processes/threads a sandboxed process may add
MAX_FILE_MB = 16
MAX_OPEN_FILES = 64
GRACE_S = 0.5  # after the main process exits (or is killed): how long to wait for the other pipes to close
_TRUNCATED = "\n[... output truncated by the sandbox ...]\n"
_INSIDE = Path(__file__).with_name("inside")


def inside_source(*names: str) -> str:
    """The source of the named ``inside/`` programs, concatenated (they share one namespace in the child)."""
    return "\n".join((_INSIDE / f"{n}.py").read_text(encoding="utf-8") for n in names)


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program. ``ok``: exited with status 0 and did not time out; for a test program made by
    ``tests_program``: the harness reported every test run and passed (``stderr`` is then the verdict's one-line
    reason, not the program's stderr). ``returncode`` is negative when a signal killed the program (``-9`` after
    a timeout). ``stdout`` is what the program printed: untrusted, at most ``MAX_OUTPUT_BYTES``."""

    ok: bool
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def interpreter() -> str:
    """The base interpreter (not a venv launcher): with ``-I -S`` the venv adds nothing, and its path may not be
    readable once privileges are dropped."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _tasks_of(uid: int) -> int:
    """Processes + threads ``uid`` runs now (what ``RLIMIT_NPROC`` counts), so a shared uid's limit is relative."""
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


def _limits(timeout_s: float, memory_mb: int, nproc: int | None) -> Callable[[], None]:
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
    """Remove a host scratch tree even if the program made parts of it unreadable."""

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


@dataclass
class Child:
    """One started sandboxed process: the process, its feeder thread, and its host scratch dir (no mount
    namespace only)."""

    proc: subprocess.Popen
    feeder: threading.Thread
    host_root: str | None = None
    returncode: int | None = None


def _command(iso: Isolation, uid: int | None) -> tuple[list[str], str, str, dict[str, str], str | None]:
    """``(argv head, cwd, scratch work dir, environment, host scratch root)`` for one process."""
    interp = interpreter()
    drop = _drop(uid)
    host_root = None
    if iso.mount_namespace:
        scratch = "/tmp/autoalign-sandbox-" + secrets.token_hex(6)
        real, prefix = os.path.realpath(interp), os.path.realpath(sys.base_prefix)
        rel = os.path.relpath(real, prefix)
        inside = interp if rel.startswith("..") else os.path.join(scratch, "python", rel)
        owner = f"{uid}:{uid}" if uid is not None else "-"
        work, cwd = os.path.join(scratch, "work"), "/"
        head = [*iso.prefix, scratch, prefix, owner, *drop, inside]
    else:
        host_root = tempfile.mkdtemp(prefix="autoalign-sandbox-")
        work = cwd = os.path.join(host_root, "work")
        os.mkdir(work, 0o700)
        os.chmod(host_root, 0o711)
        if uid is not None:
            os.chown(work, uid, uid)
        head = [*iso.prefix, *drop, interp]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8"}
    if iso.mount_namespace and os.environ.get("LD_LIBRARY_PATH"):
        env["LD_LIBRARY_PATH"] = os.path.join(scratch, "python", "lib")
    return head, cwd, work, env, host_root


def _drop(uid: int | None) -> tuple[str, ...]:
    from autoalign.sandbox.probe import drop_command

    return drop_command(uid) if uid is not None else ()


def start(source: str, args: Sequence[str], job: dict, timeout_s: float, memory_mb: int, iso: Isolation,
          pass_fds: Sequence[int] = ()) -> Child:
    """Start ``source`` (``python -c``) in the sandbox with ``argv[1] =`` its job pipe, then ``args``; ``pass_fds``
    are inherited (the pipes to a peer). The job is written on a thread and the pipe closed."""
    from autoalign.sandbox.probe import fresh_uid

    uid = fresh_uid() if iso.drop_privileges else None
    if uid is not None:
        nproc: int | None = MAX_PROCS  # a uid of its own: the limit counts this process's tasks only
    else:
        nproc = None if os.getuid() == 0 else _tasks_of(os.getuid()) + MAX_PROCS  # root ignores RLIMIT_NPROC
    head, cwd, _work, env, host_root = _command(iso, uid)
    r_in, w_in = os.pipe()
    try:
        argv = [*head, "-I", "-S", "-B", "-X", "utf8", "-c", source, str(r_in), *args]
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                                pass_fds=(r_in, *pass_fds), preexec_fn=_limits(timeout_s, memory_mb, nproc))
    except BaseException:
        os.close(w_in)
        if host_root is not None:
            _rmtree(host_root)
        raise
    finally:
        os.close(r_in)
    feeder = threading.Thread(target=_feed, args=(w_in, json.dumps(job).encode("utf-8")), daemon=True)
    feeder.start()
    return Child(proc, feeder, host_root)


def _exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: while it is a zombie its pid (= process group id) cannot be
    reused, so killing the group afterwards never hits a stranger."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill(proc: subprocess.Popen) -> None:
    """Kill the namespace's init (the child of ``unshare``) first, so ``unshare`` reaps it and nothing is left as
    a zombie under the host's init; then the whole process group."""
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
    end = time.monotonic() + GRACE_S
    while kids and not _exited(proc.pid) and time.monotonic() < end:
        time.sleep(0.005)  # ``unshare`` reaps its child (the namespace is torn down first), then exits itself
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def abandon(child: Child) -> None:
    """Kill and reap a child whose run could not be set up (its peer failed to start)."""
    _kill(child.proc)
    child.returncode = child.proc.wait()
    for stream in (child.proc.stdout, child.proc.stderr):
        if stream is not None:
            stream.close()
    if child.host_root is not None:
        _rmtree(child.host_root)


@dataclass
class Collected:
    """What the children left: the bytes kept per stream (and whether they were cut), whether the main child
    outlived the deadline, and each child's return code (``-9`` for a child the deadline killed)."""

    data: dict[int, bytes] = field(default_factory=dict)
    cut: dict[int, bool] = field(default_factory=dict)
    timed_out: bool = False

    def text(self, fd: int) -> str:
        return self.data[fd].decode("utf-8", errors="replace") + (_TRUNCATED if self.cut[fd] else "")


def collect(children: Sequence[Child], main: Child, streams: dict[int, int], timeout_s: float) -> Collected:
    """Read ``streams`` (fd -> bytes kept; the rest is read and dropped) until they close, ``main`` exits (then
    the others get ``GRACE_S``) or the wall clock runs out (then everything is killed); reap every child."""
    bufs = {fd: bytearray() for fd in streams}
    out = Collected(cut=dict.fromkeys(streams, False))
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    killed = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if not killed and now >= deadline:
                out.timed_out = not _exited(main.proc.pid)
                for c in children:
                    _kill(c.proc)
                killed, deadline = True, now + GRACE_S
            elif killed and now >= deadline:
                break  # a process outside the group still holds a pipe: give up on the rest of the output
            elif not killed and _exited(main.proc.pid):
                deadline = min(deadline, now + GRACE_S)  # leftovers may hold the pipes open
            for key, _ in sel.select(min(0.05, max(0.0, deadline - now))):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                room = streams[key.fd] - len(buf)
                if room > 0:
                    buf += data[:room]
                out.cut[key.fd] = out.cut[key.fd] or len(data) > room
        if not killed:
            while not _exited(main.proc.pid):  # the pipes closed early; the program may still run
                if time.monotonic() >= deadline:
                    out.timed_out = True
                    break
                time.sleep(0.01)
    finally:
        sel.close()
        for c in children:
            _kill(c.proc)  # whatever is left (the leader is not reaped yet: the pgid is still ours)
        for c in children:
            c.returncode = c.proc.wait()
            for stream in (c.proc.stdout, c.proc.stderr):
                if stream is not None:
                    stream.close()
            c.feeder.join(timeout=GRACE_S)
            if c.host_root is not None:
                _rmtree(c.host_root)
    out.data = {fd: bytes(b) for fd, b in bufs.items()}
    return out


def _strip_unshare_noise(err: str) -> str:
    """We killed the namespace's init; ``unshare`` then tries to re-raise SIGKILL on itself, cannot, says so and
    exits 1: drop that line."""
    noise = "unshare: sigprocmask unblock failed: Invalid argument\n"
    return err[:-len(noise)] if err.endswith(noise) else err


def run_plain(code: str, timeout_s: float, memory_mb: int, iso: Isolation) -> ExecResult:
    """Run ``code`` as ``__main__`` (``inside/plain.py``): ``ok`` = exit status 0 within the time limit."""
    source = inside_source("guard", "plain") + "\nrun_plain(int(sys.argv[1]))\n"
    child = start("import sys\n" + source, (), {"code": code}, timeout_s, memory_mb, iso)
    assert child.proc.stdout is not None and child.proc.stderr is not None
    out_fd, err_fd = child.proc.stdout.fileno(), child.proc.stderr.fileno()
    got = collect([child], child, {out_fd: MAX_OUTPUT_BYTES, err_fd: MAX_OUTPUT_BYTES}, timeout_s)
    assert child.returncode is not None
    returncode = -signal.SIGKILL if got.timed_out else child.returncode
    err = _strip_unshare_noise(got.text(err_fd)) if got.timed_out else got.text(err_fd)
    return ExecResult(ok=returncode == 0 and not got.timed_out, returncode=returncode, stdout=got.text(out_fd),
                      stderr=err, timed_out=got.timed_out)
