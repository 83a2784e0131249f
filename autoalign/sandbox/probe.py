"""Which isolation this machine allows, probed once, strongest first (``isolation()``).

As root: ``unshare`` into new mount, network, IPC and PID namespaces; inside, a setup script remounts ``/``
read-only (for this namespace only), mounts private tmpfs over ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (root-owned,
mode 0755: the program can write in none of them), mounts a fresh ``/proc`` (only the namespace's own processes),
creates the scratch directory on the private ``/tmp`` (the only writable place, owned by the program's uid, gone
with the namespace) and bind-mounts the interpreter's prefix next to it, read-only, so the interpreter stays
reachable when it lives under a private home (pyenv in ``/root``). The program then runs under a uid of its own,
drawn per process from a range no account uses (``setpriv``: real and effective uid and gid, no supplementary
groups, every capability cleared from the effective, permitted, inheritable, ambient and bounding sets,
``no_new_privs``): no ``CAP_DAC_OVERRIDE`` / ``CAP_DAC_READ_SEARCH``, so root-only files are unreadable;
``RLIMIT_NPROC`` counts its processes only; no two sandboxed processes, not even a program and its harness, can
signal or trace each other. Each process is PID 1 of its namespace: when it ends or is killed, the kernel kills
every process it started, whatever they did with ``setsid`` or process groups.

As a non-root user the same namespaces are made inside a user namespace (no uid drop: the user's own files stay
readable). Where namespaces are refused (a locked-down container) the fallbacks are, in order: the uid drop
without namespaces, namespaces without the drop, then a bare interpreter in a host scratch directory. Every
fallback is logged as a WARNING naming what is missing (``Isolation.missing``); it is never silent.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
from dataclasses import dataclass

log = logging.getLogger("autoalign.sandbox")

MAX_SCRATCH_MB = 64  # size of the private tmpfs holding the scratch directory
UID_BASE = 2_000_000_000  # sandboxed processes run as UID_BASE + a random 24-bit number (no account is that high)
UID_SPAN = 1 << 24

# Runs as root inside the new namespaces: $1 scratch dir, $2 interpreter prefix, $3 uid:gid owning the scratch
# ("-": keep ours), then the command to exec (setpriv ... python ...).
SETUP = r"""set -e
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


@dataclass(frozen=True)
class Isolation:
    """How programs are isolated on this machine (probed once): the command prefix placed before the interpreter,
    whether network/PID namespaces are in use, whether each process drops to a uid of its own with no
    capabilities, and whether the mount namespace (read-only ``/``, private tmpfs ``/tmp``, ``/var/tmp``,
    ``/dev/shm``) is in use."""

    prefix: tuple[str, ...]
    network_namespace: bool
    pid_namespace: bool
    drop_privileges: bool = False
    mount_namespace: bool = False

    @property
    def missing(self) -> list[str]:
        """What this setup lacks compared with the strongest one (empty: nothing)."""
        out = []
        if not self.mount_namespace:
            out.append("mount namespace (writes to /tmp, /var/tmp, /dev/shm and other world-writable places "
                       "are possible)")
        if not self.pid_namespace:
            out.append("PID namespace (a process that leaves its group may outlive the timeout; the test harness "
                       "is guarded from the program only by being undumpable"
                       + ("" if self.drop_privileges else " and under the same uid") + ")")
        if not self.network_namespace:
            out.append("network namespace (only the socket guard blocks the network; SysV IPC is shared)")
        if not self.drop_privileges and os.geteuid() == 0:
            out.append("uid drop (programs run as root with every capability: every file is readable and "
                       "writable, and a program that finds the harness can trace it and forge its verdict)")
        return out

    def protections(self) -> dict[str, bool]:
        """Each protection and whether it is in force, for a stage's manifest or a report."""
        return {"mount_namespace": self.mount_namespace, "pid_namespace": self.pid_namespace,
                "network_namespace": self.network_namespace, "drop_privileges": self.drop_privileges,
                "separate_harness_process": True}


def drop_command(uid: int) -> tuple[str, ...]:
    """``setpriv`` to ``uid`` (and the same gid) with no capability at all; ``no_new_privs`` blocks setuid
    binaries."""
    return ("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--")


def fresh_uid() -> int:
    """A uid for one sandboxed process: random in a range no account uses, so it shares nothing with anyone."""
    return UID_BASE + secrets.randbelow(UID_SPAN)


def candidates() -> list[Isolation]:
    """Isolation setups from strongest to weakest; the first whose probe succeeds is used."""
    ns = ("--net", "--ipc", "--pid", "--fork", "--kill-child")
    mnt = ("--mount", "--propagation", "private")
    setup = ("/bin/sh", "-c", SETUP, "sh")
    out: list[Isolation] = []
    have_unshare, have_setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if os.geteuid() == 0:
        if have_setpriv:
            if have_unshare:
                out.append(Isolation(("unshare", *mnt, *ns, "--", *setup), True, True, True, True))
            out.append(Isolation((), False, False, True, False))
        if have_unshare:
            out.append(Isolation(("unshare", *mnt, *ns, "--", *setup), True, True, False, True))
            out.append(Isolation(("unshare", *ns, "--"), True, True, False, False))
    elif have_unshare:
        user = ("unshare", "--user", "--map-root-user")
        out.append(Isolation((*user, *mnt, *ns, "--", *setup), True, True, False, True))
        out.append(Isolation((*user, *ns, "--"), True, True, False, False))
    out.append(Isolation((), False, False))
    return out


_isolation: Isolation | None = None
_lock = threading.Lock()


def isolation() -> Isolation:
    """The isolation programs get here: probed on first use by running a tiny program under each candidate setup
    (namespaces may be forbidden in a container, ``setpriv`` may be missing), then cached. A setup weaker than the
    strongest is logged as a warning naming what is missing."""
    global _isolation
    from autoalign.sandbox.spawn import run_plain

    with _lock:
        if _isolation is None:
            for cand in candidates():
                if run_plain("import json, os\n", 10.0, 256, cand).ok:
                    _isolation = cand
                    break
            else:  # pragma: no cover - the bare interpreter always works
                _isolation = Isolation((), False, False)
            if _isolation.missing:
                log.warning("autoalign sandbox: weaker isolation on this machine, missing: %s",
                            "; ".join(_isolation.missing))
        return _isolation
