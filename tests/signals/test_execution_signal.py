"""Environment feedback by execution: hand-written samples for each env kind, checked by running the sandbox."""

from __future__ import annotations

import pytest

from autoalign.records import Prompt, Sample
from autoalign.signals.environment.execution import (
    Execution,
    calc_value,
    expr_program,
    number_matches,
    text_matches,
)


def P(pid: str, env: dict | None, q: str = "q?") -> Prompt:
    return Prompt(id=pid, messages=[{"role": "user", "content": q}], env=env)


def S(pid: str, texts: list[str]) -> list[Sample]:
    return [Sample(prompt_id=pid, index=i, text=t, model="m") for i, t in enumerate(texts)]


def of(result, pid: str, what: str) -> list:
    items = [x for x in getattr(result, what) if x.prompt_id == pid]
    if what == "labels":
        return [(lb.sample_index, lb.verdict, lb.score) for lb in items]
    if what == "sft":
        return [e.messages[-1]["content"] for e in items]
    return [(p.chosen, p.rejected) for p in items]


CALC = P("calc", {"kind": "calc", "expr": "23 + 58"}, "What is 23 + 58?")
CALC_TEXTS = ["The answer is 81.", "The answer is 80.", "23 + 58 = 81", "I can't help with that.",
              "The answer is 81."]
# final_number: 81, 80, 81 (last number of the text), None, 81 -> correct T F T F T

REV = P("rev", {"kind": "python_expr", "expr": "'hello'[::-1]"})
REV_TEXTS = ["The answer is olleh.", "The answer is 'Olleh'.", "The answer is hello."]  # T T F

SORT = P("sort", {"kind": "python_expr", "expr": "sorted([3, 1, 2])"})  # str(value) = "[1, 2, 3]"
SORT_TEXTS = ["The answer is [1,2,3].", "The answer is [1, 2, 3].", "The answer is [3, 2, 1]."]  # T T F

TESTS = ["assert add_three(1) == 4", "assert add_three(-3) == 0"]
CODE = P("code", {"kind": "python_tests", "entry_point": "add_three", "tests": TESTS})
GOOD = "```python\ndef add_three(x):\n    return x + 3\n```"
WRONG = "```python\ndef add_three(x):\n    return x + 2\n```"
CRASH = "```python\ndef add_three(x):\n    return x / 0\n```"
LOOP = "```python\ndef add_three(x):\n    while True:\n        pass\n```"
REFUSE = "I can't help with that."
CODE_TEXTS = [GOOD, WRONG, CRASH, LOOP, REFUSE, GOOD]  # T F F F F T

BROKEN_CALC = P("broken_calc", {"kind": "calc", "expr": "1 / 0"})
BROKEN_EXPR = P("broken_expr", {"kind": "python_expr", "expr": "undefined_name"})
NO_ENV = P("chat", None)
ODD_ENV = P("odd", {"kind": "browser", "url": "x"})

PROMPTS = [CALC, REV, SORT, CODE, BROKEN_CALC, BROKEN_EXPR, NO_ENV, ODD_ENV]
SAMPLES = (S("calc", CALC_TEXTS) + S("rev", REV_TEXTS) + S("sort", SORT_TEXTS) + S("code", CODE_TEXTS)
           + S("broken_calc", ["The answer is 0."]) + S("broken_expr", ["The answer is x."])
           + S("chat", ["Hello!"]) + S("odd", ["ok"]))


@pytest.fixture(scope="module")
def both():
    return Execution(mode="both", max_per_prompt=2, timeout_s=1.0, memory_mb=256, workers=2)(PROMPTS, SAMPLES, None)


def test_calc_labels_sft_and_pairs(both):
    assert of(both, "calc", "labels") == [(0, "correct", 1.0), (1, "incorrect", 0.0), (2, "correct", 1.0),
                                          (3, "incorrect", 0.0), (4, "correct", 1.0)]
    assert of(both, "calc", "sft") == ["The answer is 81.", "23 + 58 = 81"]  # distinct correct, index order
    # good = [81., "23 + 58 = 81"], bad = [80., refusal]: pairs (good[i % 2], bad[i % 2]), i < min(2, max(2, 2))
    assert of(both, "calc", "preferences") == [("The answer is 81.", "The answer is 80."),
                                               ("23 + 58 = 81", "I can't help with that.")]
    sft = [e for e in both.sft if e.prompt_id == "calc"][0]
    assert sft.messages == [{"role": "user", "content": "What is 23 + 58?"},
                            {"role": "assistant", "content": "The answer is 81."}]
    assert sft.signal == "execution"
    label = [lb for lb in both.labels if lb.prompt_id == "calc"][1]
    assert label.detail == {"kind": "calc", "answer": "80"}


def test_python_expr_strings_and_lists(both):
    assert [v for _, v, _ in of(both, "rev", "labels")] == ["correct", "correct", "incorrect"]
    assert of(both, "rev", "sft") == ["The answer is olleh.", "The answer is 'Olleh'."]
    # good = 2, bad = 1: pairs (good[0], bad[0]), (good[1], bad[0])
    assert of(both, "rev", "preferences") == [("The answer is olleh.", "The answer is hello."),
                                              ("The answer is 'Olleh'.", "The answer is hello.")]
    assert [v for _, v, _ in of(both, "sort", "labels")] == ["correct", "correct", "incorrect"]


def test_python_tests_pass_fail_crash_loop_refusal(both):
    labels = sorted((lb for lb in both.labels if lb.prompt_id == "code"), key=lambda lb: lb.sample_index)
    assert [lb.verdict for lb in labels] == ["correct", "incorrect", "incorrect", "incorrect", "incorrect", "correct"]
    assert labels[0].detail == {"kind": "python_tests"}
    assert "AssertionError" in labels[1].detail["error"] and not labels[1].detail["timed_out"]
    assert "ZeroDivisionError" in labels[2].detail["error"]
    assert labels[3].detail["timed_out"] is True
    assert labels[4].detail["error"] == "no code defining add_three"  # never run
    assert of(both, "code", "sft") == [GOOD]  # the duplicate correct sample is kept once
    # good = [GOOD], bad = [WRONG, CRASH, LOOP, REFUSE]: i < min(2, 4) -> (GOOD, WRONG), (GOOD, CRASH)
    assert of(both, "code", "preferences") == [(GOOD, WRONG), (GOOD, CRASH)]


def test_skips_and_stats(both):
    for pid in ("broken_calc", "broken_expr", "chat", "odd"):
        assert of(both, pid, "labels") == [] and of(both, pid, "sft") == []
    assert both.stats == {
        "prompts": 8, "checked_prompts": 4, "skipped_no_env": 1, "skipped_unknown_env": 1,
        "skipped_no_samples": 0, "skipped_env_failed": 2, "samples_checked": 5 + 3 + 3 + 6, "correct": 3 + 2 + 2 + 2,
        "incorrect": 2 + 1 + 1 + 4, "accuracy": round(9 / 17, 6),
        # calc, rev, sort, 2 broken envs: one run per prompt; code: GOOD, WRONG, CRASH, LOOP (distinct, refusal not run)
        "sandbox_runs": 5 + 4, "timed_out": 1, "sft": 2 + 2 + 2 + 1, "preferences": 2 + 2 + 2 + 2,
    }
    assert of(both, "sort", "preferences") == [("The answer is [1,2,3].", "The answer is [3, 2, 1]."),
                                               ("The answer is [1, 2, 3].", "The answer is [3, 2, 1].")]


def test_modes_and_max_per_prompt():
    prompts, samples = [CALC], S("calc", CALC_TEXTS)
    sft = Execution(mode="sft", max_per_prompt=1)(prompts, samples, None)
    assert of(sft, "calc", "sft") == ["The answer is 81."] and sft.preferences == []
    dpo = Execution(mode="dpo", max_per_prompt=3)(prompts, samples, None)
    assert dpo.sft == []
    # good 2, bad 2: i < min(3, max(2, 2)) = 2 pairs
    assert of(dpo, "calc", "preferences") == [("The answer is 81.", "The answer is 80."),
                                              ("23 + 58 = 81", "I can't help with that.")]
    assert Execution(mode="dpo")(prompts, S("calc", ["The answer is 81."]), None).preferences == []  # no bad one


def test_prompt_without_samples_and_empty_input():
    r = Execution()([CALC], [], None)
    assert r.stats["skipped_no_samples"] == 1 and r.stats["sandbox_runs"] == 0 and r.labels == []
    assert Execution()([], [], None).stats["prompts"] == 0


def test_helpers():
    assert calc_value("81") == 81 and calc_value("2.5") == 2.5
    assert calc_value("'x'") is None and calc_value("inf") is None
    assert number_matches("81", 81) and not number_matches("80", 81) and not number_matches(None, 81)
    assert not number_matches("0.333", 1 / 3) and number_matches("2.5", 2.5) and not number_matches("x", 2.5)
    assert text_matches("[1,2,3]", "[1, 2, 3]") and not text_matches("1,2,3", "[1, 2, 3]")
    assert "repr(" in expr_program("1 + 1", "calc") and "str(" in expr_program("'a'", "python_expr")


def test_bad_parameters():
    with pytest.raises(ValueError):
        Execution(mode="ppo")
    with pytest.raises(ValueError):
        Execution(max_per_prompt=0)
