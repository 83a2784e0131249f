"""The Hugging Face provider: seeded, batch-invariant sampling; n samples; one-pass log-probs."""

import math

import pytest
import torch

from autoalign.models.base import Sampling
from autoalign.models.hf import HFModel
from tests.random_model import build_random_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_random_model(tmp_path_factory.mktemp("rand"))


PROMPTS = ["hello", [{"role": "user", "content": "hello world"}], [{"role": "user", "content": "the answer"}]]


def same_completions(a, b) -> bool:
    assert a and len(a) == len(b), "nothing to compare"
    return [[(c.text, c.finish_reason, c.num_tokens) for c in x] for x in a] == [
        [(c.text, c.finish_reason, c.num_tokens) for c in x] for x in b
    ] and all(abs(c.logprob - d.logprob) < 1e-3 for x, y in zip(a, b) for c, d in zip(x, y))


def test_sampling_is_seeded_and_independent_of_batching(model_dir):
    s = Sampling(n=3, temperature=1.0, top_p=0.9, max_new_tokens=6, seed=7)
    small = HFModel(model_dir, batch_size=2).generate(PROMPTS, s)
    big = HFModel(model_dir, batch_size=64).generate(PROMPTS, s)
    alone = HFModel(model_dir, batch_size=64).generate(PROMPTS[1:2], s)
    assert [len(x) for x in small] == [3, 3, 3]
    # Texts are identical whatever the batch layout; log-probs only up to float rounding (padding changes the
    # shapes of the matrix products, and CPU kernels sum in a different order: ~1e-6 apart).
    assert same_completions(small, big)
    assert same_completions(alone, big[1:2])
    other = HFModel(model_dir).generate(PROMPTS, Sampling(n=3, temperature=1.0, max_new_tokens=6, seed=8))
    assert other != big
    # different sample indices of one prompt differ (random model, 6 tokens of a 320-token vocabulary)
    assert len({c.text for c in big[0]}) > 1


def test_greedy_is_deterministic_and_matches_argmax(model_dir):
    lm = HFModel(model_dir)
    s = Sampling(n=2, temperature=0.0, max_new_tokens=4)
    out = lm.generate(["hello"], s)
    assert out[0][0] == out[0][1]
    ids = lm.tokenizer("hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        first = int(lm.model(ids).logits[0, -1].argmax())
    assert out[0][0].num_tokens >= 1
    generated = lm.tokenizer(out[0][0].text, add_special_tokens=False)["input_ids"]
    assert generated[0] == first or lm.tokenizer.decode([first]) in out[0][0].text


def test_logprobs_equal_a_manual_sum(model_dir):
    lm = HFModel(model_dir, batch_size=2)
    got = lm.logprobs(["hello", "hello world", "x"], [" world", " the answer", " y"])
    assert len(got) == 3
    for prompt, cont, value in zip(["hello", "hello world", "x"], [" world", " the answer", " y"], got):
        head = lm.tokenizer(prompt)["input_ids"]
        tail = lm.tokenizer(cont, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([head + tail])
        with torch.no_grad():
            logp = lm.model(ids).logits[0].log_softmax(-1)
        manual = sum(float(logp[len(head) - 1 + i, t]) for i, t in enumerate(tail))
        assert math.isclose(value, manual, rel_tol=1e-4, abs_tol=1e-4)


def test_choice_logprobs_read_single_token_choices_from_one_pass(model_dir):
    lm = HFModel(model_dir, batch_size=2)
    vocab = lm.tokenizer.get_vocab()
    # two strings that are one token each in this tokenizer, and one that is several
    singles = [t for t in ("a", "b", "c", "d", "e", "x", "y") if t in vocab][:2]
    assert len(singles) == 2
    prompts = ["hello", [{"role": "user", "content": "hello world"}], "x y z w"]
    fast = lm.choice_logprobs(prompts, singles)
    slow = lm.logprobs([p for p in prompts for _ in singles], singles * len(prompts))
    assert [len(r) for r in fast] == [2, 2, 2] and len(slow) == 6
    for got, want in zip([v for row in fast for v in row], slow):
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4)
    multi = lm.choice_logprobs(prompts[:1], ["hello world", singles[0]])  # falls back to scored rows
    assert math.isclose(multi[0][0], lm.logprobs(prompts[:1], ["hello world"])[0], abs_tol=1e-4)


def test_prompts_longer_than_the_context_keep_their_end(model_dir):
    lm = HFModel(model_dir, batch_size=4)
    assert lm.max_positions == 256
    long = "hello world " * 200  # far past 256 positions
    ids = lm._encode_prompt(long)
    assert len(ids) > 256
    s = Sampling(n=1, temperature=0.0, max_new_tokens=6)
    got = lm.generate([long], s)[0][0]
    assert lm.truncated == 1
    # the same as generating from the prompt's last 250 tokens, decoded back to text
    tail_text = lm.tokenizer.decode(ids[-(256 - 6):])
    assert lm.tokenizer(tail_text, add_special_tokens=False)["input_ids"] == ids[-(256 - 6):]
    assert got == lm.generate([tail_text], s)[0][0]
    score = lm.logprobs([long], [" the answer"])[0]
    assert math.isfinite(score) and lm.truncated == 2
    assert [len(r) for r in lm.choice_logprobs([long], ["a", "b"])] == [2] and lm.truncated == 3
    short = lm.generate(["hello"], s)
    assert lm.truncated == 3 and short[0][0].num_tokens >= 1  # short prompts are untouched


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_drawn_token_logprobs_match_the_retained_logits_they_replace(model_dir, temperature):
    """The log-probabilities recorded as tokens are drawn equal those read afterwards from every step's retained
    raw logits (``output_logits``, what the provider kept before), and the text drawn is the same with and without
    the recorder (it returns the scores unchanged)."""
    from transformers import GenerationConfig, LogitsProcessorList, TemperatureLogitsWarper

    from autoalign.models.hf import _DrawnLogprobs, _SeededGumbel

    lm = HFModel(model_dir)
    ids = [lm._encode_prompt(p) for p in PROMPTS]
    width, pad = max(len(x) for x in ids), lm.tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
    attention = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    config = GenerationConfig(do_sample=False, max_new_tokens=12, pad_token_id=pad,
                              eos_token_id=lm.tokenizer.eos_token_id, return_dict_in_generate=True, output_logits=True)

    def run(with_recorder: bool):
        drawn = _DrawnLogprobs()
        procs = LogitsProcessorList([drawn] if with_recorder else [])
        if temperature > 0:
            procs.extend([TemperatureLogitsWarper(temperature), _SeededGumbel([1, 2, 3])])
        out = lm.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                logits_processor=procs)
        return out, drawn

    with torch.inference_mode():
        plain, _ = run(False)
        recorded, drawn = run(True)
    new = recorded.sequences[:, width:]
    assert torch.equal(plain.sequences, recorded.sequences) and new.shape[1] > 0
    reference = torch.stack(recorded.logits, dim=1).float().log_softmax(-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
    got = drawn.finish(new)
    assert got.shape == reference.shape
    assert torch.allclose(got, reference, atol=1e-4)


def test_choice_logprobs_read_the_output_layer_at_the_last_positions_only(model_dir):
    """The judge's one-row verdicts run the output layer on each row's last position only; the figures are those
    of the full forward pass (the model's logits at that position)."""
    lm = HFModel(model_dir)
    prompts = ["hello", "hello world, the answer is", [{"role": "user", "content": "the answer"}]]
    choices = ["hello", " world"]
    ids = [lm.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
    got = lm.choice_logprobs(prompts, choices)
    with torch.inference_mode():
        for p, row in zip(prompts, got):
            x = torch.tensor([lm._fit(lm._encode_prompt(p), 1)])
            full = lm.model(input_ids=x).logits[0, -1].float().log_softmax(-1)
            assert row == pytest.approx([float(full[i]) for i in ids], abs=1e-4)


def test_choice_logprobs_compute_a_shared_prefix_once_with_the_figures_of_the_full_pass(model_dir):
    """Judge prompts that open with the same rubric run it once and repeat its KV cache per row: the verdicts
    equal those of each prompt's own full forward pass (to float rounding), rows of different lengths included."""
    lm = HFModel(model_dir)
    rubric = "rate the answer below from the rubric: helpful, harmless and honest answers score yes. " * 2
    prompts = [rubric + tail for tail in ["hello", "the answer is world", "no", "hello world hello world again"]]
    heads = [lm._fit(lm._encode_prompt(p), 1) for p in prompts]
    from autoalign.models.hf import _shared_prefix

    assert _shared_prefix(heads) >= lm.min_shared_prefix  # the shared path is the one under test
    choices = ["hello", " world"]
    ids = [lm.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
    calls = []
    original = lm._last_logits_shared
    lm._last_logits_shared = lambda *a: calls.append(1) or original(*a)
    got = lm.choice_logprobs(prompts, choices)
    assert calls, "the shared-prefix path did not run"
    with torch.inference_mode():
        for h, row in zip(heads, got):
            full = lm.model(input_ids=torch.tensor([h])).logits[0, -1].float().log_softmax(-1)
            assert row == pytest.approx([float(full[i]) for i in ids], abs=1e-4)


def test_shared_prefix_leaves_every_row_its_last_token():
    from autoalign.models.hf import _shared_prefix

    assert _shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3]]) == 2
    assert _shared_prefix([[1, 2], [3, 2]]) == 0
    assert _shared_prefix([[7, 7, 7], [7, 7, 7]]) == 2
