"""Runs kept apart and found again: a variant's own run name, ``autoalign runs`` and ``autoalign compare``.

No test here trains: runs are metrics files written by hand, and the one model compared is ``mock:``.
"""

import fcntl
import json
from pathlib import Path

import pytest
import yaml

from autoalign.cli import app, run_cli
from autoalign.errors import UserError
from autoalign.evaluate.result import Metric, SuiteResult
from autoalign.recipe import Recipe, variant_name


# ---- variant names --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, name", [
    ([], "demo"),
    (["rounds=1"], "demo-rounds=1"),
    (["rounds=1", "sampling.n=4"], "demo-rounds=1,sampling.n=4"),
    (["eval.suites=[lab, xstest]"], "demo-eval.suites=_lab__xstest_"),
    (["run_dir=/scratch/runs", "cache_dir=/scratch/cache"], "demo"),  # where a run goes is not a variant
    (["rounds=1", "name=mine"], "demo"),  # the user named it (the name given is already the recipe's)
    (["prompts.path=/data/my prompts.jsonl"], "demo-prompts.path=_data_my_prompts.jsonl"),
])
def test_a_variant_gets_its_own_name(overrides, name):
    assert variant_name("demo", overrides) == name


def test_a_long_variant_is_cut_and_hashed_so_two_stay_apart():
    a = variant_name("demo", ["rounds=1", "sampling.n=4", "train.epochs=1", "eval.limit=10"])
    b = variant_name("demo", ["rounds=1", "sampling.n=4", "train.epochs=1", "eval.limit=20"])
    assert a != b and a.startswith("demo-rounds=1,sampling.n=4,train.e") and len(a) == len("demo-") + 31 + 1 + 8
    assert a == variant_name("demo", ["rounds=1", "sampling.n=4", "train.epochs=1", "eval.limit=10"])


def _recipe_file(root: Path, **changes) -> Path:
    data = {"name": "t", "policy": "lab:tiny", "signals": [{"method": "self_consistency"}],
            "run_dir": str(root / "runs"), **changes}
    path = root / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(args, capsys) -> tuple[int, str, str]:
    code = run_cli(app, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_runs_a_variant_under_its_own_name(tmp_path, capsys):
    recipe = _recipe_file(tmp_path)
    for extra, name in (([], "t"), (["rounds=1"], "t-rounds=1"), (["rounds=1", "name=one"], "one"),
                        ([f"run_dir={tmp_path / 'elsewhere'}"], "t")):
        code, out, err = _cli(["run", recipe, *extra, "--dry-run"], capsys)
        assert code == 0, err
        assert out.splitlines()[0].startswith(f"run {name} -> ") and out.splitlines()[0].endswith(f"/{name}")
    assert not (tmp_path / "runs").exists()


def test_the_python_api_refuses_a_bad_recipe_before_creating_the_run_directory(tmp_path):
    from autoalign.loop import Run

    recipe = Recipe(name="r", policy="lab:tiny", run_dir=str(tmp_path / "runs"),
                    signals=[{"method": "self_consistency"}], eval={"suites": ["lab", "winrate"]})
    with pytest.raises(UserError, match="winrate needs a judge"):
        Run(recipe, load_lm=lambda uri, **o: object())
    assert not (tmp_path / "runs").exists()


# ---- runs on disk -----------------------------------------------------------------------------------------------
def _metric(value: float, axis: str, width: float = 0.05) -> Metric:
    return Metric(value=value, lo=max(0.0, value - width), hi=min(1.0, value + width), n=40, axis=axis,
                  scorer="lab-oracle")


def _lab(model: str, composite: float, helpful: float, harmless: float, honest: float) -> dict:
    return SuiteResult(suite="lab", model=model, metrics={
        "composite": _metric(composite, "composite"), "helpful": _metric(helpful, "helpful"),
        "harmless": _metric(harmless, "harmless"), "honest": _metric(honest, "honest")}).model_dump()


def _finished_run(runs: Path, name: str, rounds: list[tuple[float, float, float, float]], final: int,
                  kept: list[int]) -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / "recipe.yaml").write_text(yaml.safe_dump({"name": name, "rounds": len(rounds) - 1, "policy": "lab:tiny"}))
    data = {"run": name, "recipe": {}, "final": {"round": final, "model": f"m{final}"},
            "rounds": [{"round": k, "model": f"m{k}", "results": [_lab(f"m{k}", *figs)], "kept": k in kept}
                       for k, figs in enumerate(rounds)]}
    (d / "metrics.json").write_text(json.dumps(data))
    return d


@pytest.fixture
def runs_dir(tmp_path):
    runs = tmp_path / "runs"
    _finished_run(runs, "alpha", [(0.5, 0.4, 0.5, 0.6), (0.7, 0.6, 0.8, 0.7)], final=1, kept=[0, 1])
    _finished_run(runs, "beta", [(0.5, 0.4, 0.5, 0.6), (0.9, 0.9, 0.1, 0.9)], final=0, kept=[0])  # gate said no
    stopped = runs / "gamma"
    (stopped / "round-0" / "eval").mkdir(parents=True)
    (stopped / "recipe.yaml").write_text(yaml.safe_dump({"name": "gamma", "rounds": 3}))
    (stopped / "round-0" / "eval" / "manifest.json").write_text("{}")
    (runs / "not-a-run").mkdir()
    (runs / "notes.txt").write_text("x")
    return runs


def test_list_runs_reads_status_and_the_final_policys_figures(runs_dir):
    from autoalign.runs_index import list_runs

    found = {r.name: r for r in list_runs(runs_dir)}
    assert sorted(found) == ["alpha", "beta", "gamma"]
    alpha, beta, gamma = found["alpha"], found["beta"], found["gamma"]
    assert (alpha.status, alpha.rounds_done, alpha.rounds_planned, alpha.final_round) == ("finished", 1, 1, 1)
    assert alpha.figures["composite"].value == 0.7 and alpha.figures["harmless"].value == 0.8
    assert beta.final_round == 0 and beta.figures["composite"].value == 0.5  # the kept base, not rejected round 1
    assert (gamma.status, gamma.rounds_done, gamma.rounds_planned, gamma.figures) == ("stopped", 0, 3, {})


def test_a_run_holding_its_lock_is_running(runs_dir):
    from autoalign.runs_index import read_run

    lock = runs_dir / "gamma" / ".lock"
    with open(lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # what store.run_lock holds while a run writes
        assert read_run(runs_dir / "gamma").status == "running"
    assert read_run(runs_dir / "gamma").status == "stopped"


def test_the_runs_command_prints_a_table(runs_dir, capsys):
    code, out, err = _cli(["runs", runs_dir], capsys)
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "finished" in rows["alpha"] and "round 1" in rows["alpha"] and "0.700 [0.65, 0.75]" in rows["alpha"]
    assert "base" in rows["beta"] and "stopped" in rows["gamma"] and "0/3" in rows["gamma"]


def test_the_runs_command_on_a_missing_directory(tmp_path, capsys):
    code, out, err = _cli(["runs", tmp_path / "nothing"], capsys)
    assert code == 2 and "nothing: not a directory" in err


def test_compare_puts_runs_and_a_model_side_by_side(runs_dir, tmp_path, capsys):
    out_dir = tmp_path / "cmp"
    code, out, err = _cli(["compare", runs_dir / "alpha", "beta", "mock:", "--runs-dir", runs_dir,
                           "--per-family", "1", "--out", out_dir], capsys)
    assert code == 0, err
    head = next(line for line in out.splitlines() if "figure" in line)
    assert "alpha (round 1)" in head and "beta (base)" in head and "mock:" in head
    composite = next(line for line in out.splitlines() if "lab: composite" in line)
    assert "0.700 [0.65, 0.75]" in composite and "0.500 [0.45, 0.55] (-0.200)" in composite
    page = (out_dir / "compare.html").read_text()
    assert "alpha (round 1)" in page and "beta (base)" in page and "<svg" in page
    saved = json.loads((out_dir / "compare.json").read_text())
    assert [e["label"] for e in saved] == ["alpha (round 1)", "beta (base)", "mock:"]
    assert saved[2]["results"][0]["suite"] == "lab"


@pytest.mark.parametrize("args, expected", [
    (["alpha"], "compare needs at least two runs or models"),
    (["alpha", "nonsense"], "compare nonsense: not a finished run nor an eval directory"),
    (["alpha", "gamma"], "gamma: not finished (no metrics.json)"),
    (["alpha", "mock:", "--suite", "winrate"], "winrate needs a judge"),
])
def test_compare_refuses_before_anything_loads_or_is_written(runs_dir, tmp_path, capsys, args, expected):
    code, out, err = _cli(["compare", *args, "--runs-dir", runs_dir, "--out", tmp_path / "cmp"], capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "cmp").exists()


def test_the_plan_knows_the_multistep_families_only_for_their_source(tmp_path, capsys):
    ok = _recipe_file(tmp_path, prompts={"source": "lab_multistep", "families": ["chain", "arithmetic"]})
    code, out, err = _cli(["run", ok, "--dry-run"], capsys)
    assert code == 0, err
    bad = _recipe_file(tmp_path, prompts={"source": "lab", "families": ["chain"]})
    code, out, err = _cli(["run", bad, "--dry-run"], capsys)
    assert code == 2 and "prompts.families" in err and "chain" in err
    assert not (tmp_path / "runs").exists()
