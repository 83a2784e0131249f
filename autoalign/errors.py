"""The one error type a user's mistake raises; the CLI turns it into one line and exit code 2.

A disk that refuses a write (read-only, full, not ours) is the user's to fix too, so it is a ``UserError``
(``DiskError``): one line naming the path, the fault and the remedy, never a traceback whose last line hides the
cause. ``disk_error`` recognises one in any exception chain (an ``OSError`` errno, or SQLite's own words for it).
"""

from __future__ import annotations

import errno
import os
import sqlite3


class UserError(Exception):
    """Bad input from the user: a recipe field, a file, a model URI. The message names the culprit."""


class DiskError(UserError, OSError):
    """A write the disk refused. Still an ``OSError`` (with its errno and filename), so code that handles one
    keeps working; ``str()`` is the one line the CLI prints."""

    def __init__(self, line: str, code: int | None = None, filename: str | None = None):
        OSError.__init__(self, code, line)
        self.line = line
        self.filename = filename

    def __str__(self) -> str:
        return self.line

    def __reduce__(self):  # picklable across processes with its three arguments
        return (type(self), (self.line, self.errno, self.filename))


_RESUME = "then rerun the same command: it resumes where it stopped"
_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", f"free space there or point the run at another disk, {_RESUME}"),
    errno.EDQUOT: ("the disk quota is exceeded", f"free space or raise the quota, {_RESUME}"),
    errno.EROFS: ("read-only file system", "choose a writable directory (run_dir: in the recipe, --out for eval)"),
    errno.EACCES: ("permission denied", "make it writable by this user or choose another directory"),
    errno.EPERM: ("operation not permitted", "make it writable by this user or choose another directory"),
    errno.EIO: ("the disk failed a write", f"check that it has space and is healthy, {_RESUME}"),
}
_NEED_A_PATH = {errno.EACCES, errno.EPERM, errno.EIO}  # a disk fault only when a file is named
# SQLite reports a disk fault in words, without an errno: its messages mapped to the errno they stand for.
_SQLITE_FAULTS = {
    "database or disk is full": errno.ENOSPC,
    "attempt to write a readonly database": errno.EROFS,
    "unable to open database file": errno.EACCES,
    "disk I/O error": errno.EIO,  # what SQLite says when it cannot grow its WAL index on a full disk, among others
}


def _full(path: str | os.PathLike | None) -> bool:
    """Is the file system holding ``path`` (or its nearest existing parent) out of space?"""
    if path is None:
        return False
    current = os.path.abspath(os.fspath(path))
    while not os.path.exists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    try:
        st = os.statvfs(current)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def disk_error(exc: BaseException, path: str | os.PathLike | None = None) -> DiskError | None:
    """The ``DiskError`` for ``exc`` when it (or an exception it was raised from or during) is a disk fault,
    else None. ``path``: what was being written, when the exception does not say (SQLite never does)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskError):
            return current
        code, detail, where = None, "", None
        if isinstance(current, OSError) and current.errno in _FAULTS:
            code, detail, where = current.errno, current.strerror or "", current.filename
            if code in _NEED_A_PATH and where is None and path is None:
                code = None  # EPERM from a signal or a namespace, EACCES from a port: not a disk's refusal
        elif isinstance(current, sqlite3.Error):
            text = str(current)
            code = next((c for words, c in _SQLITE_FAULTS.items() if words in text), None)
            detail = text
        if code == errno.EIO and _full(where if where is not None else path):
            code = errno.ENOSPC  # an I/O error on a disk with no space left: the full disk is the cause
        if code is not None:
            what, remedy = _FAULTS[code]
            target = where if where is not None else path
            place = "disk" if target is None else str(os.fspath(target) if isinstance(target, os.PathLike) else target)
            shown = f" ({detail})" if detail and detail.lower() != what else ""
            return DiskError(f"{place}: {what}{shown}; {remedy}", code, place)
        current = current.__cause__ or current.__context__
    return None
