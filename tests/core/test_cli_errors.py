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
