"""Bad input exits with code 2 and one line naming the field or file; never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

AUTOALIGN = str(Path(sys.executable).parent / "autoalign")
GOOD = "name: t\npolicy: lab:tiny\nsignals:\n  - method: self_consistency\n"


def _run(args, cwd):
    return subprocess.run([AUTOALIGN, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "recipe, overrides, expected",
    [
        (GOOD + "trian: {}\n", [], "trian: Extra inputs are not permitted"),
        (GOOD, ["train.epochs=lots"], "train.epochs: Input should be a valid number"),
        (GOOD, ["policy=gpt:nothing"], "unknown scheme 'gpt'"),
        (GOOD, ["policy=lab:huge"], "unknown lab model 'huge'"),
        (GOOD, ["policy=hf:/no/such/dir"], "/no/such/dir is not a directory"),
        (GOOD.replace("self_consistency", "telepathy"), [], "signals.0.method: unknown signal 'telepathy'"),
        ("name: t\nsignals: [\n", [], "malformed YAML"),
        (GOOD + "rounds: -1\n", [], "rounds: Input should be greater than or equal to 1"),
    ],
)
def test_bad_recipes(tmp_path, recipe, overrides, expected):
    path = tmp_path / "r.yaml"
    path.write_text(recipe)
    result = _run(["run", str(path), *overrides], tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_recipe_file(tmp_path):
    result = _run(["run", str(tmp_path / "nope.yaml")], tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_uri_for_eval(tmp_path):
    result = _run(["eval", "nonsense-model"], tmp_path)
    assert result.returncode == 2
    assert "model URI 'nonsense-model'" in result.stderr and "Traceback" not in result.stderr


def test_report_of_missing_run(tmp_path):
    result = _run(["report", str(tmp_path / "run")], tmp_path)
    assert result.returncode == 2 and "no metrics.json" in result.stderr


# ---- checked before anything loads or is written (in process: fast, and a model load would fail the test) ----------
import yaml  # noqa: E402

from autoalign.cli import app, run_cli  # noqa: E402

BASE_RECIPE = {"name": "t", "policy": "lab:tiny", "rounds": 1, "signals": [{"method": "self_consistency"}],
               "eval": {"suites": ["lab"]}}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A directory holding an earlier run ``runs/t`` (its recipe.yaml), where loading a model is an error."""
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("autoalign.models.registry.load_lm", no_model)
    monkeypatch.setattr("autoalign.lab.pretrain.ensure_lab_model", no_model)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "t").mkdir(parents=True)
    (tmp_path / "runs" / "t" / "recipe.yaml").write_text("an earlier run's recipe\n")
    return tmp_path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


def _cli(args, capsys) -> tuple[int, str, str]:
    code = run_cli(app, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(args, capsys, root: Path, *expected: str) -> str:
    """Exit code 2, one line on stderr holding every ``expected`` piece, and nothing written under ``root``."""
    before = _tree(root)
    code, out, err = _cli(args, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for piece in expected:
        assert piece in lines[0], (piece, lines[0])
    assert _tree(root) == before, "something was written"
    return lines[0]


def _recipe(root: Path, **changes) -> Path:
    data = {**BASE_RECIPE, "run_dir": str(root / "runs"), **changes}
    path = root / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _not_a_model(root: Path) -> Path:
    d = root / "models" / "notes"
    d.mkdir(parents=True)
    (d / "README.txt").write_text("not a model")
    return d


def test_a_misspelt_suite(workspace, capsys):
    _refused(["run", _recipe(workspace), "eval.suites=[lab,xstst]", "name=t"], capsys, workspace,
             "eval.suites", "unknown suite 'xstst'")


def test_a_file_source_without_a_path(workspace, capsys):
    _refused(["run", _recipe(workspace, prompts={"source": "file"})], capsys, workspace,
             "prompts", "path: required when source is file")


def test_a_missing_prompt_file(workspace, capsys):
    _refused(["run", _recipe(workspace, prompts={"source": "file", "path": "nope.jsonl"})], capsys, workspace,
             "prompts.path", "nope.jsonl")


def test_a_prompt_file_with_a_bad_row_names_the_file_and_the_line(workspace, capsys):
    prompts = workspace / "prompts.jsonl"
    prompts.write_text('{"prompt": "fine"}\n{"messages": [{"role": "assistant", "content": "no question"}]}\n')
    _refused(["run", _recipe(workspace, prompts={"source": "file", "path": str(prompts)})], capsys, workspace,
             f"prompts file {prompts}: line 2: messages: no user turn")


def test_a_directory_that_is_not_a_model_is_one_full_line(workspace, capsys):
    d = _not_a_model(workspace)
    line = _refused(["run", _recipe(workspace, policy=f"hf:{d}")], capsys, workspace,
                    "recipe policy", f"{d} is not a Hugging Face model directory", "no config.json")
    assert line.endswith("save_pretrained)")  # the whole line, not cut at a library's first line


@pytest.mark.parametrize("signal, expected", [
    ({"method": "telepathy"}, "signals.0.method: unknown signal 'telepathy'"),
    ({"method": "self_consistency", "params": {"kk": 1}}, "signals.0.params: got an unexpected keyword argument 'kk'"),
    ({"method": "self_consistency", "params": {"max_per_prompt": "many"}}, "signals.0.params.max_per_prompt"),
    ({"method": "llm_judge", "params": {"judge": "lab:huge"}}, "signals.0.params.judge: model URI 'lab:huge'"),
])
def test_unknown_signal_method_or_params(workspace, capsys, signal, expected):
    _refused(["run", _recipe(workspace, signals=[signal])], capsys, workspace, expected)


def test_missing_data_files(workspace, capsys):
    data = workspace / "data"
    data.mkdir()
    _refused(["run", _recipe(workspace, eval={"suites": ["lab", "harmbench"], "data_dir": str(data)})], capsys,
             workspace, str(data / "harmbench" / "harmbench_prompts.txt"), "not found")
    _refused(["run", _recipe(workspace, eval={"suites": ["lab", "harmbench"], "data_dir": str(workspace / "nodir")})],
             capsys, workspace, "eval.data_dir", "not a directory")


def test_winrate_in_a_recipe_needs_a_judge(workspace, capsys):
    _refused(["run", _recipe(workspace, eval={"suites": ["lab", "winrate"]})], capsys, workspace,
             "eval.suites", "winrate needs a judge")


def test_eval_winrate_without_a_judge(workspace, capsys):
    _refused(["eval", "lab:tiny", "--suite", "winrate", "--out", workspace / "ev"], capsys, workspace,
             "--suite", "winrate needs a judge model (--judge URI)")
    _refused(["eval", "lab:tiny", "--suite", "lab,winrate", "--judge", "lab:tiny", "--out", workspace / "ev"],
             capsys, workspace, "winrate needs a reference model (--reference URI)")


def test_eval_of_a_directory_that_is_not_a_model(workspace, capsys):
    d = _not_a_model(workspace)
    for args, where in ((["eval", f"hf:{d}"], "model URI"), (["eval", "lab:tiny", "--judge", f"hf:{d}"], "--judge")):
        line = _refused([*args, "--out", workspace / "ev"], capsys, workspace, where, "not a Hugging Face model")
        assert line.endswith("save_pretrained)")


def test_dry_run_prints_the_plan_and_writes_nothing(workspace, capsys):
    data = workspace / "data" / "harmbench"
    data.mkdir(parents=True)
    (data / "harmbench_prompts.txt").write_text("".join(f"harmful request {i}\n" for i in range(30)))
    recipe = _recipe(workspace, name="fresh", rounds=2, prompts={"count": 10}, sampling={"n": 3},
                     signals=[{"method": "llm_judge", "params": {"judge": "lab:teacher"}}],
                     eval={"suites": ["lab", "harmbench"], "limit": 20, "per_family": 2,
                           "data_dir": str(workspace / "data")})
    before = _tree(workspace)
    code, out, err = _cli(["run", recipe, "--dry-run"], capsys)
    assert code == 0, err
    assert _tree(workspace) == before and not (workspace / "runs" / "fresh").exists()
    assert f"run fresh -> {workspace / 'runs' / 'fresh'}" in out
    assert "models: policy lab:tiny, llm_judge judge lab:teacher" in out
    assert "prompts: 10 per round from the lab" in out and "3 samples per prompt" in out
    assert "round 0: eval (lab (" in out and "harmbench (20 items)" in out
    assert out.count("-> samples (10x3) -> signals (llm_judge (with lab:teacher)) -> train (sft) -> eval") == 2
    assert f"data files: {data / 'harmbench_prompts.txt'}" in out
    # 2 rounds x 30 samples, each judged once; 3 evaluations of (lab items + 20)
    lab_items = int(out.split("round 0: eval (lab (")[1].split(" ")[0])
    assert f"expected model calls: about {60 + 60 + 3 * (lab_items + 20)} " in out


def test_demo_dry_run(workspace, capsys):
    code, out, err = _cli(["demo", "--dry-run", "eval.suites=[lab]"], capsys)
    assert code == 0, err
    assert "run demo-eval.suites=_lab_ -> runs/demo-eval.suites=_lab_" in out and "round 2: prompts" in out
    assert not (workspace / "runs" / "demo-eval.suites=_lab_").exists()


def test_version(tmp_path):
    from autoalign.cli import package_version

    for flag in ("--version", "-V"):
        result = _run([flag], tmp_path)
        assert result.returncode == 0 and result.stdout.strip() == f"autoalign {package_version()}"
    assert package_version().count(".") >= 1
