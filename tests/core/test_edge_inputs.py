"""The edge refuses what it cannot read: exit code 2 and one line naming the file, field or argument.

No test here loads a model: every refusal comes before one would load.
"""

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import pytest
import typer

from autoalign import yaml_input as recipe_module  # the bounds live where user YAML is read
from autoalign.cli import run_cli
from autoalign.errors import UserError
from autoalign.recipe import load_recipe

AUTOALIGN = str(Path(sys.executable).parent / "autoalign")
GOOD = "name: t\npolicy: lab:tiny\nsignals:\n  - method: self_consistency\n"
BASE = {"name": "t", "policy": "lab:tiny", "signals": [{"method": "self_consistency"}]}


def _run(args, cwd):
    return subprocess.run([AUTOALIGN, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _one_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _laughs(levels: int = 9, width: int = 9) -> list[str]:
    """A "billion laughs" document: each level an anchored list of ``width`` aliases of the one before."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return lines  # expands to width**levels strings: 387,420,489 for 9 x 9


# ---- recipe files --------------------------------------------------------------------------------------------------
def test_billion_laughs_recipe_is_refused(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(GOOD + "\n".join(_laughs()) + "\n")
    line = _one_line(_run(["run", str(path)], tmp_path))
    assert "laughs.yaml" in line and "expands to more than" in line and "nested aliases" in line


def test_billion_laughs_inside_a_field_is_refused_in_process(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(GOOD.replace("self_consistency", "self_consistency\n    params:\n      bomb:")
                    + "".join(f"        {x}\n" for x in _laughs()))
    with pytest.raises(UserError, match=r"laughs\.yaml: the YAML expands to more than \d+ nodes"):
        load_recipe(path)


def test_billion_laughs_override_is_refused():
    levels = ", ".join(_laughs())  # a flow mapping on one line: {l0: &l0 [...], l1: &l1 [*l0, ...], ...}
    with pytest.raises(UserError, match=r"override signals\.0\.params: the YAML expands to more than"):
        load_recipe(None, ["signals.0.params={" + levels + "}"], data=BASE)


def test_the_node_bound_counts_expanded_values(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "models: {m: {xs: &xs [1, 2, 3, 4, 5]}, n: {a: *xs, b: *xs}}\n")
    assert load_recipe(path).models["n"] == {"a": [1, 2, 3, 4, 5], "b": [1, 2, 3, 4, 5]}
    # the same file, expanded: 27 values; a bound of 20 refuses it although its text names only 5 numbers
    monkeypatch.setattr(recipe_module, "MAX_RECIPE_NODES", 20)
    with pytest.raises(UserError, match="expands to more than 20 nodes"):
        load_recipe(path)


def test_non_utf8_recipe_is_refused(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    line = _one_line(_run(["run", str(path)], tmp_path))
    assert f"recipe {path}: not UTF-8 text (byte 0xe9 at offset {len(GOOD) + 5})" in line


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD + "x: &r [*r]\n", "nested more than 64 levels deep (a recursive alias?)"),
        (GOOD + "x: " + "[" * 3000 + "]" * 3000 + "\n", "the YAML nests too deeply"),
        (GOOD + "x: \x00\n", "unacceptable character #x0000"),
        (GOOD + "seed: !!binary aGVsbG8=\n", "seed: a bytes value is not allowed in a recipe"),
        (GOOD + "---\nname: u\n", "expected a single document in the stream, but found another document"),
    ],
    ids=["recursive-alias", "deep-nesting", "nul-character", "binary-value", "two-documents"],
)
def test_unreadable_yaml_is_one_line(tmp_path, text, expected):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match="^recipe .*r.yaml: ") as info:
        load_recipe(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_recipe_larger_than_the_bound_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text(GOOD + "#" * 200 + "\n")
    monkeypatch.setattr(recipe_module, "MAX_RECIPE_BYTES", 100)
    with pytest.raises(UserError, match=r"big\.yaml: .*larger than a recipe may be \(100 bytes\)"):
        load_recipe(path)


def test_yaml_dates_become_text(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD.replace("name: t", "name: 2024-01-01"))
    assert load_recipe(path).name == "2024-01-01"


def test_override_into_a_scalar_is_named():
    with pytest.raises(UserError, match=r"override policy\.x: policy is 'lab:tiny', not a mapping or a list"):
        load_recipe(None, ["policy.x=3"], data=BASE)
    with pytest.raises(UserError, match="empty field name"):
        load_recipe(None, ["train..epochs=3"], data=BASE)


# ---- command-line arguments and options ----------------------------------------------------------------------------
def test_bad_integer_option_names_it(tmp_path):
    line = _one_line(_run(["eval", "lab:tiny", "--limit", "x"], tmp_path))
    assert line.startswith("error: autoalign eval: --limit: ") and "valid integer" in line and "'x'" in line


@pytest.mark.parametrize(
    "args, expected",
    [
        (["eval", "lab:tiny", "--no-such-option"], "autoalign eval: No such option: --no-such-option"),
        (["eval"], "autoalign eval: Missing argument 'model'"),
        (["eval", "lab:tiny", "--limit"], "autoalign eval: Option '--limit' requires an argument"),
        (["eval", "lab:tiny", "surplus"], "autoalign eval: Got unexpected extra argument(s) (surplus)"),
        (["eval", "lab:tiny", "--seed", "1.5"], "autoalign eval: --seed: "),
        (["lab", "pretrain"], "autoalign lab pretrain: Missing argument 'size'"),
        (["frobnicate"], "autoalign: No such command 'frobnicate'"),
    ],
    ids=["unknown-option", "missing-argument", "option-without-value", "extra-argument", "bad-int", "lab-missing",
         "unknown-command"],
)
def test_parse_errors_are_one_line(tmp_path, args, expected):
    assert expected in _one_line(_run(args, tmp_path))


def test_bad_choice_names_the_option(capsys):
    app = typer.Typer()

    @app.command()
    def go(mode: Annotated[Literal["fast", "slow"], typer.Option()] = "fast"):
        typer.echo(f"mode {mode}")

    assert run_cli(app, ["--mode", "medium"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mode: 'medium' is not one of 'fast', 'slow'" in err[0], err
    assert run_cli(app, ["--mode", "slow"]) == 0
    assert capsys.readouterr().out.strip() == "mode slow"


def test_user_error_text_is_not_markup(capsys):
    app = typer.Typer()

    @app.command()
    def go():
        raise UserError("field [bold]x[/bold]: bad")

    assert run_cli(app, []) == 2
    assert "error: field [bold]x[/bold]: bad" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["eval", "--help"], ["lab", "pretrain", "--help"]])
def test_help_still_exits_zero(tmp_path, args):
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and not result.stderr.strip()
