"""The default 3H constitution loads as package data; a user's YAML replaces it; bad files fail in one line."""

import random

import pytest

from autoalign.errors import UserError
from autoalign.records import Prompt
from autoalign.signals.model_feedback.constitution import default_constitution, load_constitution


def test_default_constitution_ties_each_principle_to_an_axis():
    c = default_constitution()
    assert {p.axis for p in c.principles} == {"helpful", "harmless", "honest"}
    assert all(len(p.text.split()) <= 20 for p in c.principles)  # short principles
    assert "{principle}" in c.templates.judge and "{critique}" in c.templates.revise_with_critique
    assert load_constitution(None) == c


def test_sampling_prefers_the_prompts_axis():
    c = default_constitution()
    harmful = Prompt(id="x", messages=[{"role": "user", "content": "q"}], axis="harmless")
    rng = random.Random(0)
    assert {c.sample(harmful, rng).axis for _ in range(20)} == {"harmless"}
    unknown = Prompt(id="y", messages=[{"role": "user", "content": "q"}])
    assert {c.sample(unknown, rng).axis for _ in range(60)} == {"helpful", "harmless", "honest"}
    assert {c.sample(harmful, rng, "any").axis for _ in range(60)} == {"helpful", "harmless", "honest"}


def test_user_constitution_replaces_principles_and_keeps_default_templates(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("principles:\n  - {id: kind, axis: harmless, text: Be kind.}\n"
                    "templates:\n  judge: 'Rule: {principle} Q: {request} A: {response} Ok?'\n")
    c = load_constitution(path)
    assert c.name == "mine" and [p.text for p in c.principles] == ["Be kind."]
    assert c.templates.judge.startswith("Rule:")
    assert c.templates.revise == default_constitution().templates.revise


@pytest.mark.parametrize("body, message", [
    ("principles: []\n", "principles"),
    ("principles:\n  - {id: a, axis: funny, text: x}\n", "axis"),
    ("principles:\n  - {id: a, axis: honest, text: x}\ntemplates:\n  judge: '{principle} {oops}'\n", "oops"),
    ("- just a list\n", "mapping"),
])
def test_bad_constitutions_fail_in_one_line(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(UserError, match=message):
        load_constitution(path)


def test_missing_constitution_file():
    with pytest.raises(UserError, match="not found"):
        load_constitution("/nonexistent/constitution.yaml")
