"""A run directory: locked while a run writes it, cleaned of a killed write's temporaries, and movable (manifests
name the run's own models relative to it)."""

import subprocess
import sys
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


def test_a_read_only_directory_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / ".lock").mkdir()  # a lock path that cannot be opened as a file, as on a read-only disk
    with pytest.raises(UserError, match="cannot write it"):
        with run_lock(ro):
            pass


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
