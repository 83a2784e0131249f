"""A run directory: locked while a run writes it, cleaned of a killed write's temporaries, and movable (manifests
name the run's own models relative to it)."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.recipe import Recipe
from autoalign.store import clean_temporaries, run_lock

HOLDER = """
import sys
from autoalign.store import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
"""


def test_a_second_run_is_refused_while_the_first_holds_the_directory(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # blocks until the child holds the lock
        with pytest.raises(UserError, match=rf"in use by another run \(pid {holder.pid}\)") as err:
            with run_lock(tmp_path):
                pass
        assert "\n" not in str(err.value)
    finally:
        holder.stdin.close()
        holder.wait()
    with run_lock(tmp_path):  # released when its holder ended
        assert (tmp_path / ".lock").read_text().strip().isdigit()


def test_a_lock_path_that_cannot_be_opened_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / ".lock").mkdir()  # a lock path that cannot be opened as a file
    with pytest.raises(UserError, match=r"cannot write .*\.lock \(Is a directory\)") as err:
        with run_lock(ro):
            pass
    assert "\n" not in str(err.value)


HOLDER_THEN_MARK = HOLDER + """    open(sys.argv[1] + "/released", "w").close()  # still holding the lock: written before it is released
"""


def test_wait_blocks_until_the_holder_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER_THEN_MARK, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    got: list[bool] = []

    def second() -> None:
        with run_lock(tmp_path, wait=True):
            got.append((tmp_path / "released").exists())  # only true if we got the lock after the holder let go

    thread = threading.Thread(target=second)
    thread.start()
    holder.stdin.close()  # the holder marks, then ends, and its lock goes with it
    thread.join(timeout=60)
    holder.wait()
    assert not thread.is_alive() and got == [True]


RECIPE = "name: r\npolicy: 'mock:'\nrounds: 1\nsignals: [{method: execution}]\n"


def test_a_second_autoalign_run_on_a_held_directory_exits_2_with_one_line(tmp_path):
    """Before: two runs on one run directory both did all the work, with no lock and no warning."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    run_dir = tmp_path / "runs"
    (run_dir / "r").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir / "r")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = subprocess.run([sys.executable, "-m", "autoalign.cli", "run", str(recipe), f"run_dir={run_dir}"],
                              capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        holder.stdin.close()
        holder.wait()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert lines == [f"error: run directory {run_dir / 'r'} is in use by another run (pid {holder.pid}); wait for "
                     "it to end (--wait), or give this run another name"], lines
    assert sorted(p.name for p in (run_dir / "r").iterdir()) == [".lock", "cache"]  # nothing else was written


def _blocked_on_a_lock(pid: int) -> bool:
    """The kernel lists a process waiting for a flock as ``N: -> FLOCK ... <pid> ...`` in /proc/locks."""
    return any("->" in line and f" {pid} " in line for line in Path("/proc/locks").read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc/locks to see a waiting process")
def test_run_wait_blocks_on_a_held_directory_then_runs(tmp_path):
    """``autoalign run --wait``: the second run waits in flock (seen in /proc/locks, not guessed from time) while
    the first holds the directory, and runs once it is released."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    run_dir = tmp_path / "runs"
    (run_dir / "r").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir / "r")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = subprocess.Popen([sys.executable, "-m", "autoalign.cli", "run", str(recipe), f"run_dir={run_dir}",
                                 "--wait"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=Path(__file__).resolve().parents[2], env={**os.environ, "OMP_NUM_THREADS": "1"})
        while proc.poll() is None and not _blocked_on_a_lock(proc.pid):
            try:  # polls a condition (no duration is assumed): it either waits in flock or ends (fails below)
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    finally:
        holder.stdin.close()
        holder.wait()
    out, _ = proc.communicate(timeout=600)
    # it got the directory: round 0 ran (the mock policy then cannot be trained, which ends this run with one line)
    assert "round 0: eval computed" in out and "in use by another run" not in out, out


def test_temporaries_of_a_killed_write_are_removed(tmp_path):
    stage = tmp_path / "round-1" / "train"
    stage.mkdir(parents=True)
    (stage / ".results.json.abc123.tmp").write_text("")
    (stage / ".model.x9y8").mkdir()
    (stage / ".model.x9y8" / "config.json").write_text("{}")
    for keep in (stage / "results.json", stage / ".key", tmp_path / ".lock"):
        keep.write_text("x")
    assert clean_temporaries(tmp_path) == 2
    assert sorted(p.name for p in stage.iterdir()) == [".key", "results.json"] and (tmp_path / ".lock").exists()


def test_manifests_name_the_runs_own_models_relative_to_it(tmp_path):
    from autoalign.loop import Run

    recipe = Recipe(name="r", policy="lab:tiny", run_dir=str(tmp_path / "a"), signals=[{"method": "execution"}])
    run = Run(recipe, load_lm=lambda uri, **o: object())
    model = run.dir / "round-1" / "train" / "model"
    assert run.to_run_uri(f"hf:{model}") == "run:round-1/train/model"
    assert run.to_run_uri("lab:tiny") == "lab:tiny" and run.to_run_uri("hf:/elsewhere/m") == "hf:/elsewhere/m"
    moved = Run(recipe.model_copy(update={"run_dir": str(tmp_path / "b")}), load_lm=lambda uri, **o: object())
    assert moved.from_run_uri("run:round-1/train/model") == f"hf:{(tmp_path / 'b' / 'r' / 'round-1/train/model').resolve()}"
    assert Path(moved.from_run_uri("lab:tiny")) == Path("lab:tiny")
