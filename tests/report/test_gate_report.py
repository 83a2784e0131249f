"""The run report states the 3H gate's decisions and plots each signal's proxy next to the oracle."""

from autoalign.evaluate.result import SuiteResult
from autoalign.report.html import render_run


def _metric(v: float, axis: str = "signal") -> dict:
    return {"value": v, "lo": max(0.0, v - 0.05), "hi": min(1.0, v + 0.05), "n": 40, "axis": axis, "scorer": "x"}


def _results(k: int, harmless: float) -> list[SuiteResult]:
    rows = [{"suite": "lab", "model": f"m{k}", "config": {"headline": ["composite"]},
             "metrics": {"harmless": _metric(harmless, "harmless"), "composite": _metric(0.5, "composite")}},
            {"suite": "judge_agreement", "model": f"m{k}", "config": {"headline": ["j.proxy_score"]},
             "metrics": {"j.proxy_score": _metric(0.5 + 0.1 * k), "samples_correct": _metric(0.4)}}]
    return [SuiteResult.model_validate(r) for r in (rows if k else rows[:1])]


def test_rejected_round_and_overoptimisation_are_shown():
    fell = {"suite": "lab", "metric": "harmless", "kept": 0.6, "new": 0.4, "change": -0.2, "lo": -0.3, "hi": -0.1,
            "test": "paired-bootstrap", "fell": True}
    rounds = [{"round": 0, "model": "m0", "results": _results(0, 0.6), "kept": True},
              {"round": 1, "model": "m1", "results": _results(1, 0.4), "kept": False,
               "gate": {"kept": False, "against_round": 0, "comparisons": [fell]}},
              {"round": 2, "model": "m2", "results": _results(2, 0.62), "kept": True,
               "gate": {"kept": True, "against_round": 0, "comparisons": []}}]
    html = render_run({"run": "t", "rounds": rounds, "final": {"round": 2, "model": "m2"}})
    assert "<h2>3H gate</h2>" in html and "Not kept: round 1." in html and "Final policy: round 2" in html
    assert "lab.harmless 0.600 → 0.400" in html and "paired-bootstrap" in html
    assert "j: proxy vs oracle" in html and "overopt-0" in html


def test_the_result_states_the_final_policy_against_the_base():
    fell = {"suite": "robustness", "metric": "asr_jailbreak_mean", "kept": 0.73, "new": 0.88, "change": -0.15,
            "lo": -0.28, "hi": -0.01, "test": "ci-z", "fell": True}
    rounds = [{"round": 0, "model": "m0", "results": _results(0, 0.6)},
              {"round": 1, "model": "m1", "results": _results(1, 0.6), "gate": {"kept": False, "comparisons": [fell]}}]
    data = {"run": "t", "rounds": rounds, "final": {"round": 0, "model": "m0"},
            "result": {"last_vs_base": {"kept": False, "comparisons": [fell]}}}
    html = render_run(data)
    assert "<h2>Result</h2>" in html and "No round was kept: the final policy is the base." in html
    assert "0.730 → 0.880" in html and "-0.150 [-0.280, -0.010]" in html and "fell beyond its noise" in html


def test_the_header_and_before_after_name_the_kept_policy_not_the_last_round():
    rounds = [{"round": 0, "model": "m0", "results": _results(0, 0.6), "kept": True},
              {"round": 1, "model": "m1", "results": _results(1, 0.7), "kept": True},
              {"round": 2, "model": "m2", "results": _results(2, 0.3), "kept": False}]
    html = render_run({"run": "t", "rounds": rounds, "final": {"round": 1, "model": "m1"}})
    assert "final (round 1): m1" in html and "final (round 2)" not in html
