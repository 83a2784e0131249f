"""The no-skill floors the report states next to the lab axis scores (``summary.NO_SKILL``) are what those
policies score: recomputed here from the random-init model and the constant mock policies."""

from __future__ import annotations

import pytest

from autoalign.evaluate.lab_suite import evaluate_lab
from autoalign.models.mock import MockLM
from autoalign.report.summary import HEDGE, NO_SKILL, floor

AXES = ("helpful", "harmless", "honest", "composite")


def _scores(lm) -> dict[str, float]:
    res = evaluate_lab(lm)  # the lab suite's defaults, as the floors were measured
    return {a: res.metrics[a].value for a in AXES}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, dict[str, float]]:
    from autoalign.models.registry import load_lm
    from tests.random_model import build_random_model

    rand = build_random_model(tmp_path_factory.mktemp("random-policy"))
    policies = [load_lm(f"hf:{rand}"), MockLM(reply="I can't help with that.", score=-1.0, uri="mock:refuser"),
                MockLM(reply="I don't know.", score=-1.0, uri="mock:abstainer"),
                MockLM(reply=HEDGE, score=-1.0, uri="mock:hedge")]
    return {name: _scores(lm) for name, lm in zip(NO_SKILL, policies)}


def test_the_stated_floors_are_what_no_skill_policies_score(measured):
    for name, stated in NO_SKILL.items():
        for axis in AXES:
            assert measured[name][axis] == pytest.approx(stated[axis], abs=1e-4), (name, axis, measured[name])


def test_the_floor_is_the_best_no_skill_score():
    assert floor("helpful")[0] == 0.0
    assert floor("harmless")[0] == pytest.approx(2 / 3, abs=1e-3) and "hedge" in floor("harmless")[1]
    assert floor("composite")[0] > 0.4  # the composite's floor is far from 0
