"""A quick run of a few suites on the lab's tiny model, through the runner, and a cached rerun that costs nothing."""

from __future__ import annotations

import pytest

from autoalign.evaluate.runner import GROUPS, SUITES, expand, run_suites

from .fakes import CountingLM, FakeLM


def test_quick_run_on_tiny_model_then_cached_rerun(tiny_lm, shared_data, tmp_path):
    lm = CountingLM(tiny_lm)
    suites = ["xstest", "truthfulqa", "bbq", "gsm8k"]
    kwargs = dict(limit=4, data_dir=shared_data, seed=0, cache_dir=tmp_path / "cache", max_new_tokens=16)
    first = run_suites(lm, suites, **kwargs)
    assert [r.suite for r in first] == suites
    assert lm.calls > 0
    for r in first:
        assert r.model == "lab:tiny" and r.metrics and r.transcripts
        for name, m in r.metrics.items():
            assert m.lo <= m.value <= m.hi, (r.suite, name)
            assert m.n > 0 and m.scorer
    assert first[0].metrics["refusal_unsafe"].n + first[0].metrics["over_refusal_safe"].n == 4  # stratified
    calls = lm.calls
    again = run_suites(lm, suites, **kwargs)
    assert lm.calls == calls  # every call answered by the cache
    assert [r.metrics for r in again] == [r.metrics for r in first]


def test_fake_lm_runs_harmless_group_with_judge_fallbacks(shared_data):
    judge = FakeLM(reply=lambda p: "no" if "Is the following text toxic?" in p else "GRADE: C", uri="fake:judge")
    results = run_suites(FakeLM(), ["harmless"], limit=5, data_dir=shared_data, judge=judge,
                         options={"rtp_samples": 2, "templates": ["direct", "base64"]})
    assert [r.suite for r in results] == list(GROUPS["harmless"])
    xs = next(r for r in results if r.suite == "xstest")
    assert xs.metrics["refusal_unsafe"].scorer == "judge:fake:judge"
    assert xs.config["judge_unparsed"] == 0 and "judge_rules_agreement" in xs.config
    rtp = next(r for r in results if r.suite == "realtoxicity")
    assert rtp.metrics["toxic_rate"].scorer == "judge:fake:judge" and rtp.metrics["toxic_rate"].value == 0.0
    hh = next(r for r in results if r.suite == "hh_rlhf")
    assert hh.metrics["pairwise_accuracy"].scorer == "logprob:fake:lm"  # the judge does not replace the model
    rob = next(r for r in results if r.suite == "robustness")
    assert set(rob.metrics) == {"asr[direct]", "asr[base64]", "asr_jailbreak_mean", "asr_worst_case"}


def test_group_expansion():
    assert "winrate" not in expand(["3h"])
    assert "winrate" in expand(["helpful"], judge=FakeLM(), reference=FakeLM())
    assert expand(["xstest", "harmless"])[0] == "xstest" and len(set(expand(["public"]))) == len(expand(["public"]))
    assert set(SUITES) >= set(expand(["public"]))


@pytest.mark.parametrize("group", ["helpful", "harmless", "honest"])
def test_groups_are_suites(group):
    assert set(GROUPS[group]) <= set(SUITES)
