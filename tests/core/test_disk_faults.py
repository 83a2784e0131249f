"""Disk faults (issue 18): a read-only, full or forbidden disk is one line naming the path and the remedy (exit 2),
nothing half-written is left behind, a rerun after the fault is fixed writes what an uninterrupted run writes, a
killed write's temporaries are cleaned, and files get the modes the umask gives.

Faults are real where the machine allows it: a tiny (or read-only) tmpfs mounted in a private mount namespace
(``unshare -m`` as root, ``unshare -rm`` in an unprivileged user namespace), else skipped with the reason; and
injected everywhere (SQLite's own ``max_page_count`` fills a database; ``os.fsync`` / ``mkdir`` patched to fail).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from autoalign.errors import DiskError, UserError, disk_error
from autoalign.store import (
    CallCache,
    Stage,
    atomic_directory,
    atomic_write_text,
    clean_temporaries,
    read_json,
    write_json,
)

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
HIDDEN_OK = {".lock", ".key"}  # the only dot-names a run keeps; anything else hidden is a temporary


def _namespace(probe: Path) -> list[str] | None:
    """A prefix that runs a command in a private mount namespace where it may mount a tmpfs, or None."""
    if shutil.which("unshare") is None:
        return None
    probe.mkdir(parents=True, exist_ok=True)
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        test = subprocess.run([*prefix, "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$0" && umount "$0"',
                               str(probe)], capture_output=True)
        if test.returncode == 0:
            return prefix
    return None


@pytest.fixture
def namespace(tmp_path) -> list[str]:
    prefix = _namespace(tmp_path / "probe")
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -m / -rm refused): the injected faults still run")
    return prefix


def _in_namespace(prefix: list[str], script: str, *args: Path, timeout: float = 300) -> None:
    proc = subprocess.run([*prefix, "sh", "-c", script, "sh", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.name not in HIDDEN_OK)


def _one_error_line(text: str) -> str:
    """The one error line of a command's output (progress lines may come before it; no traceback may)."""
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in text, text
    return errors[0]


# ---- the error line ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "the disk is full (No space left on device); free space there"),
    (errno.EROFS, "read-only file system; choose a writable directory"),
    (errno.EACCES, "permission denied; make it writable by this user"),
])
def test_a_disk_fault_is_one_line_naming_the_path_and_the_remedy(code, words):
    err = disk_error(OSError(code, os.strerror(code), "/runs/r/metrics.json"))
    assert isinstance(err, DiskError) and isinstance(err, UserError) and isinstance(err, OSError)
    assert str(err).startswith(f"/runs/r/metrics.json: {words}")
    assert "\n" not in str(err) and err.errno == code


def test_sqlites_words_are_recognised_and_a_cause_deep_in_a_chain_is_found():
    err = disk_error(sqlite3.OperationalError("database or disk is full"), "/c/calls.sqlite")
    assert err is not None and str(err).startswith("/c/calls.sqlite: the disk is full (database or disk is full)")
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/ro/x")
        except OSError as inner:
            raise RuntimeError("while saving") from inner
    except RuntimeError as outer:
        found = disk_error(outer)
    assert found is not None and str(found).startswith("/ro/x: read-only file system")
    assert disk_error(ValueError("no")) is None and disk_error(OSError(errno.ENOENT, "gone")) is None
    assert disk_error(PermissionError(errno.EPERM, "Operation not permitted")) is None  # os.kill, not a disk


# ---- full disk, injected ---------------------------------------------------------------------------------------
def test_a_full_call_cache_names_the_real_error_and_recovers(tmp_path):
    """Before: ``cannot rollback - no transaction is active`` (the error path's own error) hid ``database or disk
    is full``. SQLite's ``max_page_count`` makes the database full without a full disk."""
    cache = CallCache(tmp_path)
    cache.put_many({"a": "kept"})
    conn = cache._conn()
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(DiskError) as info:
        cache.put_many({f"k{i}": "x" * 4000 for i in range(8)})
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'calls.sqlite'}: the disk is full (database or disk is full)")
    assert "rollback" not in message and not conn.in_transaction
    assert cache.get_many(["a", "k0"]) == {"a": "kept"}  # nothing half-written, the old entry intact
    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: the same call now goes through
    cache.put_many({f"k{i}": "x" * 4000 for i in range(8)})
    assert len(cache) == 9


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_json(target, {"v": 1})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskError, match=rf"^{target}: the disk is full \(No space left on device\)"):
        write_json(target, {"v": 2})
    monkeypatch.undo()
    assert read_json(target) == {"v": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_failed_model_save_leaves_no_half_built_directory(tmp_path):
    model = tmp_path / "train" / "model"
    with atomic_directory(model) as tmp:
        (tmp / "weights").write_text("old")
    with pytest.raises(DiskError, match=rf"^{model}: the disk is full"):
        with atomic_directory(model) as tmp:
            (tmp / "weights").write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert sorted(p.name for p in model.parent.iterdir()) == ["model"]  # no .model.* beside it
    assert (model / "weights").read_text() == "old"


def test_a_read_only_stage_directory_is_one_line(tmp_path, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DiskError, match=r"ro/r/samples: read-only file system; choose a writable directory"):
        Stage(tmp_path / "ro" / "r", "samples")
    with pytest.raises(DiskError, match="read-only file system"):
        CallCache(tmp_path / "ro" / "cache")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a mode 0500 directory; the tmpfs tests cover it")
def test_a_directory_without_write_permission_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(DiskError, match="permission denied"):
            write_json(locked / "metrics.json", {})
    finally:
        locked.chmod(0o700)


# ---- temporaries and modes -------------------------------------------------------------------------------------
def test_the_next_write_removes_a_dead_writers_temporary(tmp_path):
    """Before: a kill between creating the temp file and renaming it left an empty file no one ever removed."""
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has ended
    stale = tmp_path / f".metrics.json.{dead_pid}-{'0' * 16}.tmp"
    old_style = tmp_path / ".metrics.json.ab12cd34.tmp"  # what mkstemp named it before
    live = tmp_path / f".metrics.json.{os.getpid()}-{'1' * 16}.tmp"  # maybe another thread's write in flight
    other = tmp_path / f".other.json.{dead_pid}-{'2' * 16}.tmp"  # another file's: left to clean_temporaries
    for p in (stale, old_style, live, other):
        p.write_bytes(b"")
    write_json(tmp_path / "metrics.json", {"v": 1})
    assert not stale.exists() and not old_style.exists() and live.exists() and other.exists()
    assert clean_temporaries(tmp_path) == 2 and _leftovers(tmp_path) == []


KILLED_MID_WRITE = """
import os, signal, sys
from autoalign import store
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # kill -9 after the temp file is written, before rename
store.write_json(sys.argv[1], {"v": 2})
"""


def test_a_write_killed_by_sigkill_is_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"v": 1})
    proc = subprocess.run([PY, "-c", KILLED_MID_WRITE, str(target)], cwd=ROOT)
    assert proc.returncode == -9
    assert len(_leftovers(tmp_path)) == 1 and read_json(target) == {"v": 1}  # the old file, and the kill's temp
    write_json(target, {"v": 3})
    assert _leftovers(tmp_path) == [] and read_json(target) == {"v": 3}


def test_clean_temporaries_removes_half_built_directories_of_both_namings(tmp_path):
    stage = tmp_path / "round-1" / "train"
    stage.mkdir(parents=True)
    (stage / ".model.x9y8z7w6").mkdir()  # mkdtemp's, from an older save_policy
    (stage / f".reward_model.{os.getpid()}-{'a' * 16}").mkdir()  # atomic_directory's
    (stage / ".model.x9y8z7w6" / "config.json").write_text("{}")
    (stage / "model").mkdir()
    assert clean_temporaries(tmp_path) == 2 and sorted(p.name for p in stage.iterdir()) == ["model"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_and_directories_get_the_modes_the_umask_gives(tmp_path, mask):
    """Before: every artifact came out 0600 (mkstemp) or 0700 (mkdtemp), whatever the umask."""
    before = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_directory(tmp_path / "model") as tmp:
            (tmp / "w").write_text("y")
        Stage(tmp_path, "s").write_part("samples", 0, [{"v": 1}])
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "s" / "samples-00000.jsonl").stat().st_mode) == 0o666 & ~mask


# ---- real faults on a tmpfs ------------------------------------------------------------------------------------
def _comparable(run: Path) -> dict[str, object]:
    """What a run wrote, less what may differ between two correct runs (timings, SQLite's page layout)."""
    out: dict[str, object] = {}
    for p in sorted(run.rglob("*")):
        rel = str(p.relative_to(run))
        if not p.is_file() or rel.startswith("cache/") or p.name == ".lock":
            continue
        if p.name == "manifest.json":
            m = json.loads(p.read_text())
            out[rel] = {k: v for k, v in m.items() if k not in {"seconds", "finished_at"}}
        else:
            out[rel] = p.read_bytes()
    cache = CallCache(run / "cache")
    out["cache rows"] = sorted(cache._conn().execute("SELECT key, value FROM calls").fetchall())
    return out


@pytest.mark.parametrize("size", ["16k", "64k", "128k", "200k"])  # full at: cache, cache put, a part, the model
def test_a_full_disk_is_one_line_and_the_rerun_gives_the_uninterrupted_runs_files(namespace, tmp_path, size):
    clean = tmp_path / "clean"
    subprocess.run([PY, "-m", "tests.core.disk_driver", str(clean)], check=True, cwd=ROOT)
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    _in_namespace(namespace, f"""
        mount -t tmpfs -o size={size} tmpfs "$1" || exit 1
        {PY} -m tests.core.disk_driver "$1/run" 2> "$2/first.err"; echo $? > "$2/first.rc"
        (cd "$1" && find . -mindepth 1 -name '.*' ! -name .lock ! -name .key) > "$2/leftovers"
        mount -o remount,size=8m "$1" || exit 1
        {PY} -m tests.core.disk_driver "$1/run" 2> "$2/second.err"; echo $? > "$2/second.rc"
        cp -a "$1/run" "$2/resumed"
    """, mnt, out)
    line = _one_error_line((out / "first.err").read_text())
    assert (out / "first.rc").read_text().strip() == "2"
    assert f"{mnt}/run/" in line and "the disk is full" in line and "rerun the same command" in line, line
    assert "rollback" not in line
    assert (out / "leftovers").read_text().split() == [], "temporaries left behind by the failed write"
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()
    assert _comparable(out / "resumed") == _comparable(clean)


RECIPE = "name: r\npolicy: 'mock:'\nrounds: 1\nsignals: [{method: execution}]\n"


@pytest.mark.parametrize("command", ["eval", "run"])
def test_a_read_only_out_or_run_directory_is_one_line_and_exit_2(namespace, tmp_path, command):
    """Before: a 52-54-line traceback and exit 1. A read-only tmpfs refuses root too, unlike chmod."""
    ro, out = tmp_path / "ro", tmp_path / "out"
    ro.mkdir()
    out.mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    args = {"eval": 'eval "mock:" --suite lab --limit 1 --out "$1/ev"',
            "run": f'run "{recipe}" run_dir="$1"'}[command]
    _in_namespace(namespace, f"""
        mount -t tmpfs -o ro,size=64k tmpfs "$1" || exit 1
        {PY} -m autoalign.cli {args} > "$2/stdout" 2> "$2/stderr"; echo $? > "$2/rc"
    """, ro, out)
    assert (out / "rc").read_text().strip() == "2"
    line = _one_error_line((out / "stdout").read_text() + (out / "stderr").read_text())
    where = f"{ro}/ev" if command == "eval" else f"{ro}/r"
    assert line.startswith(f"error: {where}") and "read-only file system; choose a writable directory" in line, line


@pytest.fixture
def root_namespace(namespace) -> list[str]:
    if namespace != ["unshare", "-m"]:
        pytest.skip("the lab suite's sandbox needs real root inside the mount namespace (unshare -m)")
    return namespace


@pytest.mark.parametrize("size", ["60k", "90k"])  # full at: the call cache's put, the results file
def test_eval_on_a_full_disk_is_one_line_and_resumes_to_the_same_results(root_namespace, tmp_path, size):
    """Before: a traceback ending in ``cannot rollback - no transaction is active`` and, for a model save, a
    ``.model.*`` directory left behind."""
    clean = tmp_path / "clean"
    ev = [PY, "-m", "autoalign.cli", "eval", "mock:", "--suite", "lab", "--limit", "2"]
    subprocess.run([*ev, "--out", str(clean)], check=True, cwd=ROOT, capture_output=True)
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    cmd = " ".join(ev[:4]) + ' "mock:" --suite lab --limit 2 --out "$1/ev"'
    _in_namespace(root_namespace, f"""
        mount -t tmpfs -o size={size} tmpfs "$1" || exit 1
        {cmd} > "$2/first.out" 2>&1; echo $? > "$2/first.rc"
        (cd "$1" && find . -mindepth 1 -name '.*') > "$2/leftovers"
        mount -o remount,size=8m "$1" || exit 1
        {cmd} > "$2/second.out" 2>&1; echo $? > "$2/second.rc"
        cp -a "$1/ev" "$2/resumed"
    """, mnt, out)
    first = (out / "first.out").read_text()
    assert (out / "first.rc").read_text().strip() == "2", first
    line = _one_error_line(first)
    assert "rollback" not in first
    assert f"{mnt}/ev" in line and "the disk is full" in line, line
    assert (out / "leftovers").read_text().split() == []
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.out").read_text()

    def results(d: Path) -> list:
        rows = json.loads((d / "results.json").read_text())
        for r in rows:
            r["config"].pop("seconds", None)
        return rows

    assert results(out / "resumed") == results(clean)
