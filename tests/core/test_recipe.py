"""Recipes: strict validation, dotted overrides, one-line errors that name the field or file."""

import re

import pytest

from autoalign.errors import UserError
from autoalign.recipe import apply_override, load_recipe

BASE = {"name": "t", "signals": [{"method": "self_consistency", "params": {"k": 1}}]}


def test_overrides_parse_values_as_yaml():
    d = {"train": {"epochs": 1}, "signals": [{"method": "a", "params": {}}]}
    apply_override(d, "train.epochs=3")
    apply_override(d, "train.lora.r=4")
    apply_override(d, "signals.0.params.k=[1, 2]")
    apply_override(d, "name=demo")
    assert d == {"train": {"epochs": 3, "lora": {"r": 4}}, "signals": [{"method": "a", "params": {"k": [1, 2]}}],
                 "name": "demo"}


def test_defaults_and_overrides_validate():
    r = load_recipe(None, ["rounds=3", "train.method=dpo", "sampling.n=4"], data=BASE)
    assert (r.rounds, r.train.method, r.sampling.n, r.policy) == (3, "dpo", 4, "lab:small")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.learnin_rate=1"], "train.learnin_rate: Extra inputs are not permitted"),
        (["rounds=two"], "rounds: Input should be a valid integer"),
        (["train.method=ppo"], "train.method: Input should be 'sft', 'dpo' or 'sft+dpo'"),
        (["sampling.n=0"], "sampling.n: Input should be greater than or equal to 1"),
        (["signals.3.method=x"], "signals.3 is not a valid list index"),
        (["nonsense"], "expected key.sub=value"),
    ],
)
def test_bad_fields_are_named(overrides, message):
    with pytest.raises(UserError, match=re.escape(message)):
        load_recipe(None, overrides, data=BASE)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="missing.yaml: file not found"):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsignals: [\n  - a: b\n")
    with pytest.raises(UserError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_recipe(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(UserError, match="scalar.yaml: expected a mapping"):
        load_recipe(scalar)


def test_a_file_source_needs_a_path():
    with pytest.raises(UserError, match=re.escape("prompts: Value error, path: required when source is file")):
        load_recipe(None, ["prompts.source=file"], data=BASE)
    assert load_recipe(None, ["prompts.source=file", "prompts.path=p.jsonl"], data=BASE).prompts.path == "p.jsonl"


def test_a_misspelt_suite_is_named():
    with pytest.raises(UserError, match=re.escape("eval.suites: Value error, unknown suite 'xstst'")):
        load_recipe(None, ["eval.suites=[lab,xstst]"], data=BASE)
