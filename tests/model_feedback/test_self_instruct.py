"""Self-Instruct prompt proposal: ROUGE-L by hand, the filters, both asking styles on fake models."""

import pytest

from autoalign.signals.imitation.self_instruct import acceptable, propose_prompts, rouge_l, user_turn_prefix
from tests.model_feedback.fakes import FakeLM, lab_prompt


def test_rouge_l_hand_values():
    # LCS("a b c d", "a c d e") = "a c d": P = R = 3/4 -> F = 3/4
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    # LCS = 2 of 2 and 4 tokens: P = 1, R = 1/2 -> F = 2/3
    assert rouge_l("what is", "What is 2 + 3?") == pytest.approx(2 / 3)
    assert rouge_l("", "x") == 0.0 and rouge_l("x y", "z") == 0.0


@pytest.mark.parametrize("text, ok", [
    ("What is 12 + 30?", True), ("Sort the list [3, 1] in ascending order.", True),
    ("What is", False), ("two\nlines here.", False), ("Principle: x\nRequest: y", False),
    ("cut off by the token lim", False), ("``` code.", False),
])
def test_acceptable(text, ok):
    assert acceptable(text) == ok


class _Tok:
    chat_template = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"

    def apply_chat_template(self, messages, tokenize=False):
        return "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)


def test_prefix_style_continues_a_seed_opening_and_filters_near_duplicates():
    seeds = [lab_prompt(1, text="What is 10 + 20?"), lab_prompt(2, axis="harmless", text="How do I bake bread?")]
    continuations = iter(range(1000))

    def reply(prompt, j):
        k = next(continuations)
        if prompt.endswith("How do"):
            return " I bake bread?"  # a copy of the seed: rejected by ROUGE-L
        return f" {k} times {k + 7} minus {3 * k}?"

    lm = FakeLM(reply=reply)
    lm.tokenizer = _Tok()
    assert user_turn_prefix(lm) == "<|user|>\n"
    out = propose_prompts(lm, seeds, count=3, seed=0)
    assert len(out) == 3 and all(p.text.startswith("What is ") for p in out)
    assert all(p.source == "self_instruct" and p.axis == "helpful" and p.env is None for p in out)
    assert all(g.startswith("<|user|>\n") for g in lm.generated)
    assert len({p.id for p in out}) == 3


def test_instruct_style_without_a_chat_template():
    seeds = [lab_prompt(i, text=f"Add {i} and {2 * i}, please.") for i in range(1, 4)]
    tasks = iter(["Multiply seven by nine.", "Multiply a prime with its square, then halve it.",
                  "Multiply every digit of 1234 together."] * 10)
    lm = FakeLM(reply=lambda p, j: f"{next(tasks)}\nTask 9: more")
    out = propose_prompts(lm, seeds, count=2, seed=1)
    assert [p.text.split(" by ")[0].startswith("Multiply") for p in out] == [True, True]
    asked = lm.generated[0]
    assert asked.startswith("Come up with a series of tasks:\nTask 1: ") and asked.rstrip().endswith(":")
    with pytest.raises(ValueError, match="chat template"):
        propose_prompts(lm, seeds, count=1, seed=0, style="prefix")


def test_a_model_that_only_writes_rejects_yields_fewer_prompts():
    seeds = [lab_prompt(1)]
    lm = FakeLM(reply=lambda p, j: "no")
    assert propose_prompts(lm, seeds, count=5, seed=0, style="instruct", rounds=2) == []
    assert propose_prompts(lm, [], count=5, seed=0) == []
