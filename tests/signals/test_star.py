"""STaR as a verifier signal: hand-written round samples checked in the sandbox, rationalisation asked of a scripted
``mock:`` policy (replies chosen by a substring of the last user message), and the recipe built through the
catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoalign.models.mock import MockLM
from autoalign.records import Prompt, Sample
from autoalign.signals.environment.star import STaR, prompt_seed

ROOT = Path(__file__).resolve().parents[2]
HINT_81 = "(Hint: the answer is 81.)"
HINT_7 = "(Hint: the answer is 7.)"


def P(pid: str, env: dict | None, q: str) -> Prompt:
    return Prompt(id=pid, messages=[{"role": "user", "content": q}], env=env)


def S(pid: str, texts: list[str]) -> list[Sample]:
    return [Sample(prompt_id=pid, index=i, text=t, model="m") for i, t in enumerate(texts)]


SOLVED = P("solved", {"kind": "calc", "expr": "23 + 58"}, "What is 23 + 58?")
SOLVED_TEXTS = ["The answer is 80.", "The answer is 81.", "The answer is 81.", "23 + 58 = 81"]  # F T T T
FAILED = P("failed", {"kind": "calc", "expr": "3 + 4"}, "What is 3 + 4?")
FAILED_TEXTS = ["The answer is 8.", "I can't help with that."]  # F F
TESTS = ["assert add_three(1) == 4"]
CODE = P("code", {"kind": "python_tests", "entry_point": "add_three", "tests": TESTS}, "Write add_three.")
CODE_TEXTS = ["```python\ndef add_three(x):\n    return x + 2\n```"]  # F
CHAT = P("chat", None, "Hello?")



class Recording(MockLM):
    """The mock, also recording each generate call's sampling seed."""

    seeds: list[int]

    def generate(self, prompts, sampling):
        self.seeds = [*getattr(self, "seeds", []), sampling.seed]
        return super().generate(prompts, sampling)


def by_index(text: str, index: int) -> str:
    """Rationale i of a hinted prompt: 0 correct, 1 wrong, 2 copies the hint (a reply rule of (text, index))."""
    if HINT_7 in text:
        return ["3 plus 4 is 7. The answer is 7.", "The answer is 6.", f"{HINT_7} The answer is 7."][index]
    if "(Hint: the answer is cba.)" in text:
        return "Reversed: The answer is cba."
    raise LookupError(text)


def run(prompts, samples, policy, **params):
    return STaR(timeout_s=2.0, memory_mb=256, workers=2, **params)(prompts, samples, policy)


@pytest.fixture(scope="module")
def result():
    policy = MockLM(reply={HINT_7: "3 plus 4 is 7. The answer is 7."})
    out = run([SOLVED, FAILED, CODE, CHAT], S("solved", SOLVED_TEXTS) + S("failed", FAILED_TEXTS)
              + S("code", CODE_TEXTS) + S("chat", ["Hi."]), policy)
    return out, policy


def test_a_solved_prompt_keeps_its_correct_samples_and_is_not_rationalised(result):
    out, policy = result
    labels = [(lb.sample_index, lb.score, lb.kind, lb.selected) for lb in out.labels if lb.prompt_id == "solved"]
    # correct F T T T; kept: distinct correct texts, at most 2: index 1 ("81.") and 3 ("23 + 58 = 81"); 2 repeats 1
    assert labels == [(0, 0.0, "unit", False), (1, 1.0, "unit", True), (2, 1.0, "unit", False),
                      (3, 1.0, "unit", True)]
    assert [e.messages for e in out.sft if e.prompt_id == "solved"] == [
        [{"role": "user", "content": "What is 23 + 58?"}, {"role": "assistant", "content": "The answer is 81."}],
        [{"role": "user", "content": "What is 23 + 58?"}, {"role": "assistant", "content": "23 + 58 = 81"}]]
    assert not any(HINT_81 in t for t in policy.generated)  # never asked for the solved prompt


def test_a_failed_calc_prompt_is_rationalised_with_the_sandbox_answer_and_trained_without_the_hint(result):
    out, policy = result
    assert [(lb.sample_index, lb.score, lb.selected) for lb in out.labels if lb.prompt_id == "failed"] == [
        (0, 0.0, False), (1, 0.0, False)]
    assert policy.generated == ["What is 3 + 4?\n(Hint: the answer is 7.)"]  # one call, the sandbox's 3 + 4
    assert policy.calls == [("generate", 1)]
    sft = [e.messages for e in out.sft if e.prompt_id == "failed"]
    # two identical rationales (the script has one reply): one distinct target, on the original prompt
    assert sft == [[{"role": "user", "content": "What is 3 + 4?"},
                    {"role": "assistant", "content": "3 plus 4 is 7. The answer is 7."}]]
    assert all("Hint" not in m["content"] for m in sft[0])
    s = out.stats
    assert (s["correct_direct"], s["failed_prompts"], s["rationalised_asked"], s["rationalised_samples"],
            s["rationalised_correct"], s["rationalised_prompt_ids"]) == (1, 2, 1, 2, 2, ["failed"])
    assert (s["sft_direct"], s["sft_rationalised"], s["sft"]) == (2, 1, 3)


def test_a_failed_python_tests_prompt_is_counted_not_rationalised(result):
    out, policy = result
    assert [(lb.score, lb.selected) for lb in out.labels if lb.prompt_id == "code"] == [(0.0, False)]
    assert not any("add_three" in t for t in policy.generated)
    assert out.stats["skipped_no_hint_python_tests"] == 1 and out.stats["skipped_no_env"] == 1
    assert not [e for e in out.sft if e.prompt_id in ("code", "chat")]


def test_wrong_and_hint_copying_rationales_are_dropped_and_seeds_follow_the_prompt_id():
    other = P("other", {"kind": "python_expr", "expr": "'abc'[::-1]"}, "Reverse 'abc'.")
    samples = S("failed", FAILED_TEXTS) + S("other", ["The answer is abc."])
    policy = Recording(reply=by_index)
    out = run([other, FAILED], samples, policy, rationalise_samples=3, seed=5)
    assert [(e.prompt_id, e.messages) for e in out.sft] == [
        ("other", [{"role": "user", "content": "Reverse 'abc'."},  # the interpreter's printed value as the hint
                   {"role": "assistant", "content": "Reversed: The answer is cba."}]),
        ("failed", [{"role": "user", "content": "What is 3 + 4?"},  # not the wrong one, not the copied hint
                    {"role": "assistant", "content": "3 plus 4 is 7. The answer is 7."}])]
    s = out.stats
    # other: 3 x cba (correct, identical: 1 target); failed: correct, wrong, correct-but-copies-the-hint
    assert (s["rationalised_asked"], s["rationalised_samples"], s["rationalised_correct"],
            s["rationalised_echoed_hint"], s["sft_rationalised"]) == (2, 6, 5, 1, 2)
    assert policy.seeds == [prompt_seed(5, "other"), prompt_seed(5, "failed")]
    alone = Recording(reply=by_index)
    run([FAILED], S("failed", FAILED_TEXTS), alone, rationalise_samples=3, seed=5)
    assert alone.seeds == [prompt_seed(5, "failed")]  # batching and order never change a prompt's seed
    assert len({prompt_seed(5, "failed"), prompt_seed(6, "failed"), prompt_seed(5, "other")}) == 3


def test_rationalise_off_asks_nothing():
    out = run([FAILED], S("failed", FAILED_TEXTS), MockLM(reply={}), rationalise=False)
    assert out.sft == [] and out.stats["skipped_rationalise_off"] == 1 and out.stats["rationalised_asked"] == 0


def test_bad_params_are_errors():
    with pytest.raises(ValueError):
        STaR(hint_template="{question} {nope}")
    with pytest.raises(ValueError):
        STaR(hint_template="{question} without the answer")
    with pytest.raises(ValueError):
        STaR(max_per_prompt=0)


def test_the_recipe_loads_and_builds_through_the_catalog():
    from autoalign.recipe import load_recipe
    from autoalign.signals import catalog

    recipe = load_recipe(ROOT / "recipes" / "star.yaml")
    assert recipe.name == "star" and recipe.rounds == 2 and recipe.eval.suites == ["lab"]
    assert [p.kind for p in recipe.train.phases] == ["sft"]
    assert [s.method for s in recipe.signals] == ["star"]
    signal = catalog.build_signal("star", recipe.signals[0].params)
    assert isinstance(signal, STaR) and signal.name == "star" and signal.rationalise_samples == 2
    with pytest.raises(Exception, match="rationalise_samples"):
        catalog.build_signal("star", {"rationalise_samples": "many"})
