"""The OpenAI-compatible provider against a real ``transformers serve`` on 127.0.0.1, with and without faults."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.models.base import Sampling, row_seed
from autoalign.models.openai_provider import OpenAIModel
from autoalign.models.registry import load_lm
from autoalign.records import Sample
from autoalign.store import CallCache, read_jsonl, write_jsonl
from tests.backends.fault_proxy import KINDS, FaultProxy
from tests.backends.servers import free_port

WORDS = ["hello", "world", "the answer", "is 42", "I don't know", "I can't help with that", "hello world"]
PROMPTS = [
    [{"role": "user", "content": f"{WORDS[i % 7]} {WORDS[(3 * i + 1) % 7]} {i}"}] if i % 3 else f"{WORDS[i % 7]} {i}"
    for i in range(30)
]
GREEDY = Sampling(n=2, temperature=0.0, max_new_tokens=8)


def generation_stage(lm, prompts, sampling: Sampling, path: Path) -> bytes:
    """What the loop's sampling stage writes: one ``Sample`` record per (prompt, sample index), as JSON lines."""
    outs = lm.generate(prompts, sampling)
    rows = [
        Sample(prompt_id=f"p{i}", index=j, text=c.text, model="served", finish_reason=c.finish_reason,
               logprob=c.logprob)
        for i, comps in enumerate(outs) for j, c in enumerate(comps)
    ]
    write_jsonl(path, rows)
    return path.read_bytes()


def test_uri_and_fingerprint_leave_the_key_out(monkeypatch):
    monkeypatch.setenv("AUTOALIGN_TEST_KEY", "sk-secret-123")
    lm = load_lm("openai:http://127.0.0.1:9/v1#some-model", api_key_env="AUTOALIGN_TEST_KEY")
    assert isinstance(lm, OpenAIModel) and (lm.base_url, lm.model) == ("http://127.0.0.1:9/v1", "some-model")
    other = OpenAIModel("http://127.0.0.1:9/v1/", "some-model", api_key_env=None)
    assert lm.fingerprint() == other.fingerprint()  # the key is not part of the identity
    assert "sk-secret" not in repr(lm) + lm.fingerprint() + lm.uri
    assert OpenAIModel("http://127.0.0.1:9/v1", "other", api_key_env=None).fingerprint() != lm.fingerprint()
    with pytest.raises(UserError, match="expected openai:BASE_URL#MODEL"):
        load_lm("openai:http://127.0.0.1:9/v1")
    with pytest.raises(UserError, match="no model name"):
        load_lm("openai:http://127.0.0.1:9/v1#")


def test_missing_api_key_is_one_clear_line(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AUTOALIGN_TEST_KEY", raising=False)
    # A remote host needs a key; raised when the model is built, before any request is sent.
    with pytest.raises(UserError, match=r"no API key: set the environment variable OPENAI_API_KEY"):
        load_lm("openai:https://api.example.com/v1#gpt-x")
    # An explicitly named variable is required even for a local server.
    with pytest.raises(UserError, match="AUTOALIGN_TEST_KEY"):
        load_lm("openai:http://127.0.0.1:9/v1#m", api_key_env="AUTOALIGN_TEST_KEY")
    # A local server with no key set gets a placeholder.
    assert load_lm("openai:http://127.0.0.1:9/v1#m").fingerprint()


def test_greedy_through_the_server_matches_the_hf_provider(served, one_torch_thread):
    from autoalign.models.hf import HFModel

    lm = load_lm(served.uri, max_concurrency=4)
    got = lm.generate(PROMPTS[:6], GREEDY)
    want = HFModel(served.model_dir).generate(PROMPTS[:6], GREEDY)
    # Same weights, same chat template (rendered by the server), greedy: the same text, prompt by prompt.
    assert [[c.text for c in cs] for cs in got] == [[c.text for c in cs] for cs in want]
    assert all(len(cs) == 2 and cs[0] == cs[1] for cs in got)
    assert lm.stats.calls == 6  # greedy: one request per prompt, replicated to n samples


def test_n_samples_get_one_seed_each_when_the_server_ignores_n(served):
    with FaultProxy(served.root, share=0.0) as proxy:
        lm = OpenAIModel(proxy.url + "/v1", served.model_name, max_concurrency=1)
        s = Sampling(n=3, temperature=0.7, top_p=0.9, max_new_tokens=4, seed=11)
        out = lm.generate(PROMPTS[:2], s)
    assert [len(cs) for cs in out] == [3, 3]
    assert lm._native_n is False  # transformers serve answers one choice whatever n says
    sent = [json.loads(e.body) for e in proxy.events if e.method == "POST"]
    assert len(sent) == 6 and lm.stats.calls == 6
    seeds = {(b.get("messages") and json.dumps(b["messages"]) or b["prompt"], b["seed"]) for b in sent}
    want = {
        (json.dumps(p) if not isinstance(p, str) else p, row_seed(11, p, j) & 0x7FFFFFFF)
        for p in PROMPTS[:2] for j in range(3)
    }
    assert seeds == want
    assert all(b["temperature"] == 0.7 and b["top_p"] == 0.9 for b in sent)


def test_each_completed_prompt_is_cached_at_once(served, tmp_path, monkeypatch):
    """One prompt can never succeed: the call fails, yet every other prompt is already in the cache, and the
    rerun pays only for the one that failed. The API key reaches the server and nothing on disk."""
    monkeypatch.setenv("AUTOALIGN_TEST_KEY", "sk-canary-4242")
    prompts = PROMPTS[:8]
    assert prompts[6] == "hello world 6"
    poison = b'hello world 6"'  # in the body of prompt 6's requests only
    cache = CallCache(tmp_path / "cache")
    with FaultProxy(served.root, share=0.0, poison=poison) as proxy:
        lm = OpenAIModel(proxy.url + "/v1", served.model_name, cache=cache, max_retries=1, max_concurrency=2,
                         api_key_env="AUTOALIGN_TEST_KEY")
        with pytest.raises(UserError, match=r"server error 500 after 2 attempts"):
            lm.generate(prompts, GREEDY)
        assert proxy.injected["poison"] == 2  # first try + one retry, then a clear error
        assert len(cache) == len(prompts) - 1
        proxy.poison = None
        again = OpenAIModel(proxy.url + "/v1", served.model_name, cache=cache, api_key_env="AUTOALIGN_TEST_KEY")
        out = again.generate(prompts, GREEDY)
    assert again.stats.cache_hits == len(prompts) - 1 and again.stats.calls == 1
    assert len(cache) == len(prompts) and all(len(cs) == 2 for cs in out)
    assert {e.authorization for e in proxy.events} == {"Bearer sk-canary-4242"}
    on_disk = b"".join(f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    assert b"sk-canary" not in on_disk and len(on_disk) > 0


def test_request_budget_stops_the_run(served):
    lm = OpenAIModel(served.base_url, served.model_name, request_budget=3, max_concurrency=1)
    lm.generate(PROMPTS[:3], GREEDY)
    with pytest.raises(UserError, match="request budget of 3 calls is spent"):
        lm.generate(PROMPTS[3:4], GREEDY)
    assert lm.stats.calls == 3


@pytest.mark.timeout(300)
def test_thirty_percent_faults_give_the_records_of_a_fault_free_run(served, tmp_path):
    clean = generation_stage(OpenAIModel(served.base_url, served.model_name), PROMPTS, GREEDY, tmp_path / "a.jsonl")
    max_retries, timeout = 6, 4.0
    with FaultProxy(served.root, share=0.3, seed=3, slow_s=timeout + 1, retry_after="1", trickle_s=0.5) as proxy:
        lm = OpenAIModel(proxy.url + "/v1", served.model_name, max_retries=max_retries, timeout=timeout,
                         max_concurrency=4)
        faulty = generation_stage(lm, PROMPTS, GREEDY, tmp_path / "b.jsonl")
    assert faulty == clean
    assert len(read_jsonl(tmp_path / "b.jsonl")) == 2 * len(PROMPTS)
    assert set(proxy.injected) == set(KINDS), proxy.injected  # every kind of fault happened
    # Each injected fault cost exactly one retry of the openai client. The only other retries allowed are genuine
    # timeouts: clean requests the server took longer than the client's timeout to answer (a loaded machine).
    posts = [e for e in proxy.events if e.method == "POST"]
    genuine = sum(1 for e in posts if e.fault is None and (e.elapsed is None or e.elapsed >= timeout - 0.05))
    assert proxy.total_injected <= lm.stats.retries <= proxy.total_injected + genuine
    assert lm.stats.calls == len(PROMPTS)
    assert lm.stats.attempts == len(posts) == len(PROMPTS) + lm.stats.retries
    assert 0 < lm.stats.max_retries_one_call <= max_retries
    # Retry-After was honoured: the retry of a 429 (the same body, one retry later) came at least a second later.
    assert len({e.body for e in posts}) == len(PROMPTS)  # a body names its logical call here
    for e in posts:
        if e.fault == "429":
            (nxt,) = [x for x in posts if x.body == e.body and x.retry == e.retry + 1]
            assert nxt.time - e.time >= 0.95
    # the fault table: each kind, how often it was injected, how often the client retried it (the same body sent
    # again one retry later), and whether the records are those of the fault-free run
    retried = {k: sum(1 for e in posts if e.fault == k and any(x.body == e.body and x.retry == e.retry + 1
                                                              for x in posts)) for k in KINDS}
    assert retried == {k: proxy.injected[k] for k in KINDS}  # every injected fault of every kind was retried
    rows = [f"{'kind':<10} {'injected':>8} {'retried':>8}  records identical"]
    rows += [f"{k:<10} {proxy.injected[k]:>8} {retried[k]:>8}  {faulty == clean}" for k in KINDS]
    print("\n" + "\n".join(rows) + f"\nretries: {lm.stats.retries} ({genuine} slow clean answers); "
          f"most retries of one call: {lm.stats.max_retries_one_call}")


@pytest.mark.parametrize("case", ["down", "wrong_url", "unknown_model"])
def test_misconfiguration_is_one_clear_line(served, case):
    uri = {
        "down": f"openai:http://127.0.0.1:{free_port()}/v1#{served.model_name}",
        "wrong_url": f"openai:{served.root}/api#{served.model_name}",
        "unknown_model": f"openai:{served.base_url}#no-such-model",
    }[case]
    lm = load_lm(uri, max_retries=2)
    with pytest.raises(UserError) as info:
        lm.generate(PROMPTS[:2], GREEDY)
    message = str(info.value)
    assert "\n" not in message
    expected = {
        "down": "cannot reach the server at .* after 3 attempts .*is it running",
        "wrong_url": "wrong base URL: .*/api has no OpenAI-compatible API",
        "unknown_model": "unknown model 'no-such-model': the server at .* serves " + served.model_name,
    }[case]
    assert re.search(expected, message), message
    if case == "down":
        assert lm.stats.attempts == 2 * 3  # two prompts, each tried 1 + max_retries times, then given up


def test_cli_exits_2_with_one_line_for_a_missing_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "autoalign.cli", "eval", "openai:https://api.example.com/v1#gpt-x",
         "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0], lines


def test_logprobs_unsupported_by_the_server_is_a_clear_error(served):
    lm = load_lm(served.uri)
    with pytest.raises(UserError, match="returned no prompt log-probs .*echo=true"):
        lm.logprobs(["hello"], [" world"])
    with pytest.raises(UserError, match="log-probs of chat prompts need the model's chat template"):
        lm.logprobs([[{"role": "user", "content": "hi"}]], [" there"])
    with pytest.raises(UserError, match="returned no log-probs for sampled tokens"):
        load_lm(served.uri, sample_logprobs=True).generate(["hello"], GREEDY)


def test_logprobs_via_echo_match_the_hf_provider(backend_model_dir, one_torch_thread):
    """Against a reference implementation of the legacy echo+logprobs request on the same weights."""
    from autoalign.models.hf import HFModel
    from tests.backends.scoring_server import ScoringServer

    server = ScoringServer(str(backend_model_dir)).start()
    try:
        lm = OpenAIModel(server.base_url, "scorer", tokenizer=str(backend_model_dir))
        prompts = ["hello", "the answer", [{"role": "user", "content": "hello world"}], "I don't"]
        conts = [" world", " is 42.", "the answer", " know."]
        got = lm.logprobs(prompts, conts)
    finally:
        server.stop()
    want = HFModel(backend_model_dir).logprobs(prompts, conts)
    assert len(got) == len(want) == 4
    assert all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4) for a, b in zip(got, want)), (got, want)
