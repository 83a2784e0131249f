"""train.report_to: validated when the recipe is read (one line naming the field), kept out of the train stage's
key, and handed to every phase's TrainingArguments (report_to), none by default. No training runs here: the
phase is a stand-in that records the arguments a trainer would get."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.recipe import load_recipe
from autoalign.train import phases as phases_mod
from autoalign.train import tracking
from autoalign.train.common import common_args
from autoalign.train.run import train_round

DEMO = Path(__file__).resolve().parents[2] / "recipes" / "demo.yaml"


@pytest.fixture
def installed(monkeypatch):
    """Pretend every tracker is installed (none is in the test environment)."""
    monkeypatch.setattr(tracking, "_installed", lambda modules: True)


def test_parse_report_to_forms(installed):
    assert tracking.parse_report_to(None) == []
    assert tracking.parse_report_to("none") == []
    assert tracking.parse_report_to("") == []
    assert tracking.parse_report_to("wandb") == ["wandb"]
    assert tracking.parse_report_to("wandb, tensorboard,wandb") == ["wandb", "tensorboard"]
    assert tracking.parse_report_to(["mlflow"]) == ["mlflow"]
    with pytest.raises(ValueError, match="unknown tracker 'bogus'"):
        tracking.parse_report_to("bogus")
    with pytest.raises(ValueError, match="expected a tracker name"):
        tracking.parse_report_to(3)


def test_a_tracker_that_is_not_installed_is_one_line_naming_the_field(monkeypatch):
    monkeypatch.setattr(tracking, "_installed", lambda modules: False)
    with pytest.raises(UserError) as err:
        load_recipe(DEMO, ["train.report_to=wandb"])
    line = str(err.value)
    assert "\n" not in line
    assert "train.report_to" in line and "wandb is not installed (pip install wandb)" in line


def test_unknown_tracker_is_a_recipe_error():
    with pytest.raises(UserError, match=r"train\.report_to: .*unknown tracker 'tensorbord'"):
        load_recipe(DEMO, ["train.report_to=tensorbord"])


def test_report_to_is_not_part_of_the_train_stage_key(installed):
    plain = load_recipe(DEMO, [])
    tracked = load_recipe(DEMO, ["train.report_to=[wandb,tensorboard]"])
    assert plain.train.report_to == [] and tracked.train.report_to == ["wandb", "tensorboard"]
    assert tracked.train.model_dump() == plain.train.model_dump()  # the loop hashes this dump


def test_trainers_report_to_nothing_by_default_and_to_the_recipe_s_trackers(installed, monkeypatch, tmp_path):
    assert common_args(tmp_path, 0, 1.0, 1e-4, 2, 1)["report_to"] == []
    seen: list[list[str]] = []

    def fake_run(phase, policy, rows, out_dir, seed):
        seen.append(common_args(out_dir / "trainer", seed, phase.epochs, phase.learning_rate, phase.batch_size,
                                phase.grad_accum)["report_to"])
        return {"steps": 0}

    sft = phases_mod.PHASES["sft"]
    monkeypatch.setitem(phases_mod.PHASES, "sft", phases_mod.PhaseKind(sft.config, fake_run))
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    r = load_recipe(DEMO, ["train.phases=[{kind: sft}]", "train.report_to=tensorboard"])
    metrics = train_round(tmp_path / "policy", rows, [], tmp_path / "train", r.train, seed=0)
    assert metrics["trained"] and seen == [["tensorboard"]]
    assert common_args(tmp_path, 0, 1.0, 1e-4, 2, 1)["report_to"] == []  # scoped to the round's training
    plain = load_recipe(DEMO, ["train.phases=[{kind: sft}]"])
    train_round(tmp_path / "policy", rows, [], tmp_path / "train-2", plain.train, seed=0)
    assert seen[-1] == []
