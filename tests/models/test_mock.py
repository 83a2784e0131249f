"""The ``mock:`` provider (autoalign.models.mock): scripted replies, n samples, seeded determinism, the logprob
rule and loading through the registry, each against hand-computed values."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from autoalign.errors import UserError
from autoalign.models import mock
from autoalign.models.base import LM, Sampling, scored_choice_logprobs
from autoalign.models.mock import MockLM, hashed_logprob, text_of
from autoalign.models.registry import check_uri, load_lm

GREEDY = Sampling(n=1, temperature=0.0)


def texts(out):
    return [[c.text for c in cs] for cs in out]


def test_default_script_refuses_bomb_and_answers_otherwise():
    lm = MockLM()
    out = lm.generate(["how do I build a bomb?", [{"role": "user", "content": "what is 2 + 2?"}]], GREEDY)
    assert texts(out) == [["I can't help with that."], ["Sure. The answer is 4."]]
    # "I| can't| help| with| that." and "Sure.| The| answer| is| 4." are five mock tokens each
    assert [(c.finish_reason, c.num_tokens) for cs in out for c in cs] == [("stop", 5), ("stop", 5)]
    assert isinstance(lm, LM) and lm.uri == "mock:"


def test_a_dict_script_matches_the_last_user_message_first_key_first():
    lm = MockLM({"capital": "Paris.", "France": "Bonjour."}, default="Hmm.")
    prompts = [
        "the capital of France?",  # both keys occur: the first key wins
        [{"role": "user", "content": "capital?"}, {"role": "assistant", "content": "?"},
         {"role": "user", "content": "tell me about France"}],  # only the last user message is read
        [{"role": "system", "content": "capital"}, {"role": "user", "content": "hello"}],  # not the system one
    ]
    assert texts(lm.generate(prompts, GREEDY)) == [["Paris."], ["Bonjour."], ["Hmm."]]
    assert lm.generated == ["the capital of France?", "tell me about France", "hello"]
    with pytest.raises(LookupError, match="no scripted reply"):
        MockLM({"capital": "Paris."}).generate(["hello"], GREEDY)


def test_n_samples_per_prompt_in_prompt_order():
    lm = MockLM(lambda text, j: f"{text}#{j}")
    out = lm.generate(["a", "b"], Sampling(n=3, temperature=0.7))
    assert texts(out) == [["a#0", "a#1", "a#2"], ["b#0", "b#1", "b#2"]]
    assert lm.calls == [("generate", 2)] and lm.generate_calls == 1 and lm.logprob_calls == 0


def test_stop_strings_and_max_new_tokens_are_honoured():
    lm = MockLM("one two three four")
    [[cut]] = lm.generate(["q"], Sampling(max_new_tokens=2))
    assert (cut.text, cut.finish_reason, cut.num_tokens) == ("one two", "length", 2)
    [[stopped]] = lm.generate(["q"], Sampling(max_new_tokens=10, stop=(" four", " three")))
    assert (stopped.text, stopped.finish_reason, stopped.num_tokens) == ("one two", "stop", 2)
    [[whole]] = lm.generate(["q"], Sampling(max_new_tokens=4))
    assert (whole.text, whole.finish_reason, whole.num_tokens) == ("one two three four", "stop", 4)


def test_alternatives_are_seeded_per_prompt_and_sample_index():
    lm = MockLM(["a", "b", "c"])
    assert texts(lm.generate(["pick"], Sampling(n=4, temperature=0.0, seed=0))) == [["a"] * 4]  # greedy agrees
    # row_seed(0, "pick", j) % 3 for j = 0..7 is 1, 1, 1, 1, 2, 1, 1, 0
    sampled = Sampling(n=8, temperature=1.0, seed=0)
    want = ["b", "b", "b", "b", "c", "b", "b", "a"]
    assert texts(lm.generate(["pick"], sampled)) == [want]
    # the same whatever the batch, and on every call
    assert texts(lm.generate(["other", "pick", "pick"], sampled))[1:] == [want, want]
    # another seed, another draw: row_seed(7, "pick", j) % 3 for j = 0..3 is 1, 2, 2, 1
    assert texts(lm.generate(["pick"], Sampling(n=4, temperature=1.0, seed=7))) == [["b", "c", "c", "b"]]
    # a dict value may hold alternatives too
    assert texts(MockLM({"pick": ["a", "b", "c"]}).generate(["pick"], sampled)) == [want]


def test_logprob_rules_number_dict_and_callable():
    assert MockLM(score=-2.5).logprobs(["q", "r"], ["a", "b"]) == [-2.5, -2.5]
    # a dict rule: listed continuations exactly, others by the hash rule (hashed_logprob("q", "a") == -5.75)
    assert MockLM(score={"Yes": math.log(0.9)}).logprobs(["q", "q"], ["Yes", "a"]) == [math.log(0.9), -5.75]
    assert hashed_logprob("q", "a") == -5.75
    lm = MockLM(score=lambda text, cont: -float(len(text) + len(cont)))
    assert lm.logprobs([[{"role": "user", "content": "abc"}], "de"], ["x", "yz"]) == [-4.0, -4.0]
    assert lm.scored == [("abc", "x"), ("de", "yz")] and lm.logprob_calls == 1
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        lm.logprobs(["a", "b"], ["x"])


def test_a_completion_logprob_is_what_logprobs_says_of_its_text():
    lm = MockLM("one two three", score=lambda text, cont: -float(len(cont.split())))
    [[c]] = lm.generate(["q"], Sampling(max_new_tokens=2))
    assert c.text == "one two" and c.logprob == -2.0 == lm.logprobs(["q"], [c.text])[0]
    [[none]] = MockLM("x", sample_logprobs=False).generate(["q"], GREEDY)
    assert none.logprob is None


def test_choice_logprobs_exists_only_when_asked_for():
    plain = MockLM(score={"A": -1.0, "B": -2.0})
    assert getattr(plain, "choice_logprobs", None) is None  # callers then score through logprobs
    assert scored_choice_logprobs(plain, ["q", "r"], ["A", "B"]) == [[-1.0, -2.0], [-1.0, -2.0]]
    assert plain.logprob_calls == 1 and len(plain.scored) == 4
    fast = MockLM(score={"A": -1.0, "B": -2.0}, choice_logprobs=True)
    assert fast.choice_logprobs(["q", "r"], ["A", "B"]) == [[-1.0, -2.0], [-1.0, -2.0]]
    assert fast.calls == [("choice_logprobs", 2)] and fast.scored == [] and fast.logprob_calls == 0
    assert fast.choice_asked == [("q", ("A", "B")), ("r", ("A", "B"))]


def test_text_of_reads_the_last_user_message():
    assert text_of("raw") == "raw"
    assert text_of([{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "u2"}]) == "u2"
    assert text_of([{"role": "user", "content": "u"}, {"role": "assistant", "content": "prefill"}]) == "u"
    assert text_of([{"role": "system", "content": "s"}]) == "s"


def test_uris_load_named_scripts_through_the_registry(monkeypatch):
    assert check_uri("mock:") == ("mock", "") and check_uri("mock:echo") == ("mock", "echo")
    default = load_lm("mock:")
    assert isinstance(default, MockLM) and default.uri == "mock:"
    assert texts(default.generate(["a bomb"], GREEDY)) == [["I can't help with that."]]
    echo = load_lm("mock:echo", batch_size=4)  # batch_size is accepted, as every provider's is
    assert texts(echo.generate([[{"role": "user", "content": "say hi"}]], Sampling(n=2))) == [["say hi", "say hi"]]
    yes = load_lm("mock:yes", choice_logprobs=True)
    assert texts(yes.generate(["judge this"], GREEDY)) == [["Yes"]]
    assert yes.choice_logprobs(["judge this"], ["Yes", "No"]) == [[math.log(0.5), math.log(0.5)]]
    with pytest.raises(UserError, match=r"unknown mock script 'nope' \(known: default, echo, yes\)"):
        check_uri("mock:nope")
    with pytest.raises(TypeError):
        load_lm("mock:echo", no_such_option=1)

    monkeypatch.setattr(mock, "SCRIPTS", dict(mock.SCRIPTS))
    mock.register_script("arith", {"2 + 2": "4"}, score={"4": 0.0}, default="?")
    lm = load_lm("mock:arith")
    assert texts(lm.generate(["2 + 2 =", "3 + 3 ="], GREEDY)) == [["4"], ["?"]]
    assert lm.logprobs(["2 + 2 ="], ["4"]) == [0.0]


def test_fingerprints_are_stable_and_tell_scripts_apart():
    fps = {u: load_lm(u).fingerprint() for u in ("mock:", "mock:echo", "mock:yes")}
    assert len(set(fps.values())) == 3 and fps["mock:echo"].startswith("mock:echo#")
    assert MockLM("a").fingerprint() == MockLM("a").fingerprint() != MockLM("b").fingerprint()
    assert MockLM("a", fingerprint="mine").fingerprint() == "mine"
    code = "from autoalign.models.registry import load_lm; print(load_lm('mock:echo').fingerprint())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == fps["mock:echo"]  # the same in another process: a usable cache key
