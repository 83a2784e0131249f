"""The vLLM provider. vLLM needs CUDA: here its glue is tested against ``fake_vllm`` (vLLM's offline API shapes,
backed by a real transformers model); the ``gpu`` test runs the real engine where one exists and skips cleanly
elsewhere."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from autoalign.errors import UserError
from autoalign.models.base import Sampling, row_seed
from autoalign.models.registry import load_lm
from tests.backends import fake_vllm

PROMPTS = ["hello", [{"role": "user", "content": "hello world"}], [{"role": "user", "content": "the answer"}]]


@pytest.fixture
def fake(monkeypatch, one_torch_thread):
    mod = fake_vllm.module()
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


def test_missing_vllm_is_a_clear_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(UserError, match=r"not installed: pip install 'autoalign\[vllm\]'"):
        load_lm("vllm:some/model")
    with pytest.raises(UserError, match="expected vllm:MODEL"):
        from autoalign.models.vllm_provider import VLLMModel

        VLLMModel.from_uri("vllm:")


def test_greedy_and_scores_match_the_hf_provider(fake, backend_model_dir):
    from autoalign.models.hf import HFModel

    lm = load_lm(f"vllm:{backend_model_dir}", batch_size=8, gpu_memory_utilization=0.5)
    assert fake.LLM.instances[0].engine_options["gpu_memory_utilization"] == 0.5
    hf = HFModel(backend_model_dir)
    greedy = Sampling(n=2, temperature=0.0, max_new_tokens=6)
    got, want = lm.generate(PROMPTS, greedy), hf.generate(PROMPTS, greedy)
    assert [[c.text for c in cs] for cs in got] == [[c.text for c in cs] for cs in want]
    # the provider handed vLLM the same token ids HFModel conditions on
    assert [ids for ids, _ in fake.LLM.instances[0].requests] == [hf._encode_prompt(p) for p in PROMPTS]
    for a, b in zip(got, want):
        if a[0].finish_reason == "length":
            assert math.isclose(a[0].logprob, b[0].logprob, rel_tol=1e-4, abs_tol=1e-4)
    conts = [" world", "the answer is 42.", " I don't know."]
    scores = lm.logprobs(PROMPTS, conts)
    assert len(scores) == len(PROMPTS)
    assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4) for a, b in zip(scores, hf.logprobs(PROMPTS, conts)))


def test_one_seeded_request_per_sample(fake, backend_model_dir):
    from autoalign.models.vllm_provider import VLLMModel

    lm = load_lm(f"vllm:{backend_model_dir}")
    s = Sampling(n=2, temperature=1.0, top_p=0.9, max_new_tokens=4, seed=5, stop=("\n\n",))
    out = lm.generate(PROMPTS, s)
    assert [len(cs) for cs in out] == [2, 2, 2]
    sent = fake.LLM.instances[0].requests
    assert [sp.seed for _, sp in sent] == [row_seed(5, p, j) for p in PROMPTS for j in range(2)]
    assert all(sp.n == 1 and sp.top_p == 0.9 and sp.stop == ["\n\n"] and sp.logprobs == 0 for _, sp in sent)
    # a sample depends on (seed, prompt, index) only: alone or batched, the same text
    assert lm.generate(PROMPTS[1:2], s)[0] == out[1]
    assert lm.path == str(backend_model_dir)  # a local directory: the loop can train from it
    assert lm.fingerprint() == VLLMModel(str(backend_model_dir), llm=lm.llm).fingerprint()


@pytest.mark.gpu
def test_real_vllm_on_a_gpu(backend_model_dir):
    torch = pytest.importorskip("torch")
    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        pytest.skip("needs vLLM and a CUDA GPU")
    from autoalign.models.hf import HFModel

    lm = load_lm(f"vllm:{backend_model_dir}", gpu_memory_utilization=0.3, enforce_eager=True)
    hf = HFModel(backend_model_dir)
    conts = [" world", "the answer is 42.", " I don't know."]
    got = lm.logprobs(PROMPTS, conts)
    assert len(got) == len(PROMPTS)
    for a, b in zip(got, hf.logprobs(PROMPTS, conts)):
        assert math.isclose(a, b, rel_tol=2e-2, abs_tol=5e-2)
    out = lm.generate(PROMPTS, Sampling(n=4, temperature=1.0, max_new_tokens=8, seed=1))
    assert [len(cs) for cs in out] == [4, 4, 4]
    assert lm.generate(PROMPTS, Sampling(n=4, temperature=1.0, max_new_tokens=8, seed=1)) == out
