"""The judge-quality measurement (``autoalign lab judge``): an all-knowing scripted judge scores 1 on every axis,
a constant one scores 0 on the ranking figures (a tie is a miss) with no spread."""

from __future__ import annotations

import math
import re

from autoalign.evaluate.judge_quality import judge_pairs, judge_quality
from autoalign.lab.oracle import grade_many
from autoalign.models.mock import MockLM


def test_pairs_are_graded_apart_and_cover_every_axis():
    pairs = judge_pairs(per_family=3, seed=5)
    assert {t.axis for t, _, _ in pairs} == {"helpful", "harmless", "honest"}
    tasks = [t for t, _, _ in pairs]
    good = grade_many(tasks, [g for _, g, _ in pairs])
    bad = grade_many(tasks, [b for _, _, b in pairs])
    assert all(g.correct for g in good) and not any(b.correct for b in bad)
    assert judge_pairs(per_family=3, seed=5) == pairs  # deterministic


def _knowing_judge(per_family: int, seed: int) -> MockLM:
    # a response is good *for a request* ("I can't help with that." is good for one and bad for another)
    goods = {(t.question, g) for t, g, _ in judge_pairs(per_family, seed)}

    def score(text: str, continuation: str) -> float:
        request = re.search(r"Request: (.*?)\nResponse", text, re.DOTALL)
        asked = request.group(1) if request else ""
        pair = re.search(r"Response A: (.*)\nResponse B: (.*)\nWhich", text, re.DOTALL)
        if pair:
            a_good = (asked, pair.group(1)) in goods
            return math.log(0.9 if (continuation.strip() == "A") == a_good else 0.1)
        response = re.search(r"Response: (.*)\nDoes", text, re.DOTALL)
        is_good = bool(response) and (asked, response.group(1)) in goods
        return math.log(0.9 if (continuation.strip() == "Yes") == is_good else 0.1)

    return MockLM(reply="Yes", score=score)


def test_a_judge_that_knows_scores_one_and_a_constant_judge_zero():
    result = judge_quality(_knowing_judge(2, 7), per_family=2, seed=7)
    for axis in ("helpful", "harmless", "honest", "all"):
        assert result.metrics[f"judge.{axis}.pointwise_pairwise"].value == 1.0
        assert result.metrics[f"judge.{axis}.compare"].value == 1.0
        assert result.metrics[f"judge.{axis}.accuracy"].value == 1.0
        assert math.isclose(result.metrics[f"judge.{axis}.spread"].value, 0.8, abs_tol=1e-6)
    flat = judge_quality(MockLM(reply="Yes", score=math.log(0.5)), per_family=2, seed=7)
    assert flat.metrics["judge.all.pointwise_pairwise"].value == 0.0  # never strictly higher
    assert flat.metrics["judge.all.compare"].value == 0.0  # every comparison a tie
    assert abs(flat.metrics["judge.all.spread"].value) < 1e-9
