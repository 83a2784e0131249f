"""The one place that touches disk: atomic writes, JSON-lines parts, stage manifests and the model-call cache.

Atomic means write to a temp file in the same directory, fsync, rename, fsync the directory: a reader sees the old
file or the new one, never half of one. A write that fails (a full disk) removes its temp file; one a kill
interrupted leaves ``.<name>.<pid>-<hex>.tmp``, removed by the next write of that file once its writer is gone,
and by ``clean_temporaries`` when a run starts. Files and directories get the modes the umask gives (0666 / 0777
less the umask), as ``open`` and ``mkdir`` would, not ``mkstemp``'s private 0600.

A disk that refuses a write (read-only, full, permission denied) is a ``DiskError``: one line naming the path and
the remedy (``autoalign.errors``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TypeVar

from pydantic import BaseModel

from autoalign.errors import DiskError, UserError, disk_error
from autoalign.models.base import Completion, Prompt, Sampling, prompt_key

T = TypeVar("T", bound=BaseModel)

# what a temporary of ours is named after its target: ``<pid>-<16 hex>``; ``mkstemp``'s 8 characters (older runs)
_TEMP_TOKEN = re.compile(r"(?:(?P<pid>\d+)-[0-9a-f]{16}|[a-z0-9_]{8})")


@contextlib.contextmanager
def on_disk(path: str | os.PathLike) -> Iterator[None]:
    """Turn a disk fault raised inside into a ``DiskError`` naming ``path`` (when the error names no file)."""
    try:
        yield
    except DiskError:
        raise
    except (OSError, sqlite3.Error) as exc:
        err = disk_error(exc, path)
        if err is None:
            raise
        raise err from exc


def _writer_gone(token: str) -> bool:
    """Is the process that made a temporary with this name token gone (so the temporary is stale)?"""
    m = _TEMP_TOKEN.fullmatch(token)
    if m is None:
        return False  # not one of ours
    if m["pid"] is None:
        return True  # a mkstemp name: written by an older version, whose writes never outlive it
    pid = int(m["pid"])
    if pid == os.getpid():
        return False  # maybe another thread's write in flight
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _remove_stale(parent: Path, name: str) -> None:
    """Remove temporaries of ``parent/name`` that a killed writer left (never one a live process is writing)."""
    prefix = f".{name}."
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in entries:
            n = entry.name
            if n.startswith(prefix) and n.endswith(".tmp") and _writer_gone(n[len(prefix) : -len(".tmp")]):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _temp_name(final: Path, suffix: str = "") -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(8)}{suffix}")


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---- atomic files -----------------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    with on_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path.parent, path.name)
        tmp = _temp_name(path, ".tmp")
        # O_EXCL on a fresh random name; mode 0o666 so the umask decides, as for any file the user's tools make
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory (a saved model) beside ``path`` and rename it into place when the block succeeds; on any
    failure (a full disk) the half-built directory is removed. ``with atomic_directory(out) as tmp: save(tmp)``.
    A kill leaves ``.<name>.<pid>-<hex>``, which ``clean_temporaries`` removes when the run starts again."""
    path = Path(path)
    with on_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(path)
        tmp.mkdir()  # mode 0o777 less the umask, unlike mkdtemp's 0700
        try:
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(path.parent)


@contextlib.contextmanager
def run_lock(directory: str | os.PathLike, wait: bool = False) -> Iterator[None]:
    """Hold ``directory/.lock`` (an advisory ``flock``, released by the kernel when the process ends, however it
    ends, so a crashed run never leaves a stale lock) while a run writes the directory. A second run is refused
    with one line naming the holder's pid, or with ``wait=True`` blocks until the holder ends."""
    directory = Path(directory)
    path = directory / ".lock"
    try:
        with on_disk(directory):
            directory.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")  # noqa: SIM115 - held open for the whole block, closed in the finally below
    except DiskError:
        raise
    except OSError as exc:  # not a disk fault: e.g. the lock's path is taken by a directory
        raise UserError(f"run directory {directory}: cannot write {path} ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise UserError(f"run directory {directory} is in use by another run (pid {holder}); wait for it to "
                            "end (--wait), or give this run another name") from None
        with on_disk(path):
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
        yield
    finally:
        fh.close()


# a temporary directory of ``atomic_directory`` (``.<name>.<pid>-<hex>``) or of an older ``save_policy`` (``.model.*``)
_TEMP_DIR = re.compile(r"\..+\.\d+-[0-9a-f]{16}|\.model\..+")


def clean_temporaries(directory: str | os.PathLike) -> int:
    """Remove what a killed atomic write left: ``.<name>.*.tmp`` files and half-built model directories. Call only
    while holding ``run_lock`` (no other writer is then alive in the directory). Returns how many were removed."""
    removed = 0
    with on_disk(directory):
        for root, dirs, files in os.walk(Path(directory)):
            for name in [d for d in dirs if _TEMP_DIR.fullmatch(d)]:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                dirs.remove(name)
                removed += 1
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    Path(root, name).unlink(missing_ok=True)
                    removed += 1
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text("utf-8"))


def write_jsonl(path: str | os.PathLike, rows: Iterable[BaseModel | dict]) -> int:
    lines = [
        (r.model_dump_json() if isinstance(r, BaseModel) else json.dumps(r, sort_keys=True, ensure_ascii=False))
        for r in rows
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: str | os.PathLike, model: type[T] | None = None) -> list:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(model.model_validate_json(line) if model else json.loads(line))
    return out


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_json(obj: Any) -> str:
    return sha256_text(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str))[:16]


# ---- stages -----------------------------------------------------------------------------------------------------
class Stage:
    """``runs/<run>/round-<k>/<stage>/``: outputs written in numbered parts, then a manifest that marks it done.

    The manifest records the stage's config hash and input hashes; ``is_done(key)`` is true only when a manifest
    exists with the same key, so a changed recipe or changed inputs rerun the stage. Parts are written atomically
    one chunk at a time, so a killed stage resumes from its last complete part without losing or duplicating a
    record (``part_done`` / ``read_parts``).
    """

    MANIFEST = "manifest.json"

    def __init__(self, root: str | os.PathLike, name: str):
        self.dir = Path(root) / name
        self.name = name
        with on_disk(self.dir):
            self.dir.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()

    @property
    def manifest_path(self) -> Path:
        return self.dir / self.MANIFEST

    def manifest(self) -> dict | None:
        return read_json(self.manifest_path) if self.manifest_path.exists() else None

    def is_done(self, key: str) -> bool:
        m = self.manifest()
        return m is not None and m.get("key") == key

    def reset_if_stale(self, key: str) -> None:
        """Drop parts written under another key (a changed recipe or input) so they are not mixed in."""
        marker = self.dir / ".key"
        if marker.exists() and marker.read_text() != key:
            for f in self.dir.iterdir():
                if f.is_file():
                    f.unlink()
        if not marker.exists():
            atomic_write_text(marker, key)

    def part_path(self, kind: str, index: int) -> Path:
        return self.dir / f"{kind}-{index:05d}.jsonl"

    def part_done(self, kind: str, index: int) -> bool:
        return self.part_path(kind, index).exists()

    def write_part(self, kind: str, index: int, rows: Sequence[BaseModel | dict]) -> None:
        write_jsonl(self.part_path(kind, index), rows)

    def read_parts(self, kind: str, model: type[T] | None = None) -> list:
        rows: list = []
        for p in sorted(self.dir.glob(f"{kind}-*.jsonl")):
            rows.extend(read_jsonl(p, model))
        return rows

    def write(self, kind: str, rows: Sequence[BaseModel | dict]) -> None:
        write_jsonl(self.dir / f"{kind}.jsonl", rows)

    def read(self, kind: str, model: type[T] | None = None) -> list:
        return read_jsonl(self.dir / f"{kind}.jsonl", model)

    def finish(self, key: str, config: Any, inputs: dict[str, str], counts: dict[str, int], extra: dict | None = None):
        """Write the manifest last: its presence (with this key) is what marks the stage done."""
        outputs = {
            f.name: sha256_file(f)
            for f in sorted(self.dir.iterdir())
            if f.is_file() and f.suffix in {".jsonl", ".json"} and f.name != self.MANIFEST
        }
        write_json(
            self.manifest_path,
            {
                "stage": self.name,
                "key": key,
                "config_hash": hash_json(config),
                "config": config,
                "inputs": inputs,
                "outputs": outputs,
                "counts": counts,
                "seconds": round(time.monotonic() - self._started, 3),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **(extra or {}),
            },
        )


def chunks(items: Sequence, size: int) -> Iterator[tuple[int, Sequence]]:
    for index, start in enumerate(range(0, len(items), size)):
        yield index, items[start : start + size]


# ---- call cache -------------------------------------------------------------------------------------------------
class CallCache:
    """Model calls keyed by (model fingerprint, prompt, sampling, seed) in SQLite (WAL, one file per directory).

    Safe for concurrent processes and killed runs: each put is its own committed transaction.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / "calls.sqlite"
        self._local = threading.local()
        with on_disk(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection. Opening is serialised across processes by an flock on ``calls.sqlite.lock``:
        SQLite answers ``PRAGMA journal_mode=WAL`` on a new file with "database is locked" at once, without waiting
        out the busy timeout, when another process is switching the same file at the same moment (seen when two
        runs, or the concurrency test's writers, open one fresh cache together)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @staticmethod
    def key(kind: str, fingerprint: str, prompt: Prompt, extra: str) -> str:
        return sha256_text("\x00".join([kind, fingerprint, prompt_key(prompt), extra]))

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with on_disk(self.path):
            conn = self._conn()
            for start in range(0, len(keys), 500):
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                for k, v in conn.execute(f"SELECT key, value FROM calls WHERE key IN ({marks})", batch):
                    found[k] = json.loads(v)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        """One committed transaction. When it fails (a full disk fails the COMMIT, and SQLite has then already
        rolled back) the original error is raised, as a ``DiskError`` when it is a disk fault: the rollback is
        attempted only while a transaction is open, so it can never replace that error with its own."""
        rows = [(k, json.dumps(v)) for k, v in items.items()]
        with on_disk(self.path):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO calls (key, value) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with on_disk(self.path):
            return self._conn().execute("SELECT COUNT(*) FROM calls").fetchone()[0]


class CachedLM:
    """Wraps any LM: answers cached calls from the cache and sends only the misses to the model."""

    def __init__(self, lm, cache: CallCache):
        self.lm = lm
        self.cache = cache
        self.uri = lm.uri
        self.hits = 0
        self.misses = 0

    def fingerprint(self) -> str:
        return self.lm.fingerprint()

    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        fp, extra = self.fingerprint(), sampling.key()
        keys = [CallCache.key("generate", fp, p, extra) for p in prompts]
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(prompts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.lm.generate([prompts[i] for i in missing], sampling)
            self.cache.put_many({keys[i]: [c.__dict__ for c in comps] for i, comps in zip(missing, fresh)})
            for i, comps in zip(missing, fresh):
                found[keys[i]] = [c.__dict__ for c in comps]
        return [[Completion(**c) for c in found[k]] for k in keys]

    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        fp = self.fingerprint()
        keys = [CallCache.key("logprobs", fp, p, c) for p, c in zip(prompts, continuations)]
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.lm.logprobs([prompts[i] for i in missing], [continuations[i] for i in missing])
            self.cache.put_many({keys[i]: v for i, v in zip(missing, fresh)})
            found.update({keys[i]: v for i, v in zip(missing, fresh)})
        return [found[k] for k in keys]

    def __getattr__(self, name):
        return getattr(self.lm, name)
