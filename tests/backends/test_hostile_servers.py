"""Servers that misbehave in ways a well-meaning one does not (issue 18), against the OpenAI-compatible provider:
a 200 answer that is a gateway's HTML page or JSON of another shape, a body cut short, a server that trickles a
byte at a time or stalls, and one that echoes the bearer key in its error text. Each is retried by the openai
client's own machinery and, when it persists, ends in one line; no key survives in any message.

All servers are ``CannedServer`` (instant answers, no model) behind ``FaultProxy`` on 127.0.0.1; the last test
runs ``autoalign eval --suite lab`` against a real ``transformers serve``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.models.base import Sampling
from autoalign.models.openai_provider import REDACTED, OpenAIModel, ScoringUnsupported, redact
from tests.backends.canned_server import CannedServer
from tests.backends.fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
CHAT = [[{"role": "user", "content": "two plus two"}]]
GREEDY = Sampling(n=1, temperature=0.0, max_new_tokens=8)
ANSWER_FAULTS = ("html", "schema", "malformed", "truncated")  # a 2xx (or a cut body) that is no completion


@pytest.fixture(scope="module")
def canned():
    with CannedServer() as server:
        yield server


def _lm(proxy: FaultProxy, **options) -> OpenAIModel:
    return OpenAIModel(proxy.url + "/v1", "canned", api_key_env=None, max_concurrency=1, **options)


@pytest.mark.parametrize("kind", ANSWER_FAULTS)
def test_a_bad_answer_once_is_retried_and_the_run_goes_on(canned, kind):
    with FaultProxy(canned.root, share=1.0, kinds=(kind,), on_retries=frozenset({0})) as proxy:
        lm = _lm(proxy, max_retries=2)
        out = lm.generate(CHAT, GREEDY)
    assert out[0][0].text == "echo: two plus two"
    assert proxy.injected[kind] == 1 and lm.stats.retries == 1 and lm.stats.attempts == 2


@pytest.mark.parametrize("kind", ANSWER_FAULTS)
def test_a_bad_answer_that_persists_is_one_clear_line(canned, kind):
    """Before: an HTML 200 ended in ``AttributeError: 'str' object has no attribute 'choices'``, unretried."""
    with FaultProxy(canned.root, share=1.0, kinds=(kind,)) as proxy:
        lm = _lm(proxy, max_retries=2)
        with pytest.raises(UserError) as info:
            lm.generate(CHAT, GREEDY)
    message = str(info.value)
    assert "\n" not in message and "AttributeError" not in message
    assert lm.stats.attempts == 3 == proxy.injected[kind]  # 1 + max_retries, by the client's own retries
    expected = {
        "html": "gave no usable answer after 3 attempts: a 200 answer: not JSON (content-type text/html): "
                "'<html><head><title>502 Bad Gateway",
        "schema": "gave no usable answer after 3 attempts: a 200 answer: JSON without a list of choices",
        "malformed": "gave no usable answer after 3 attempts: a 200 answer: malformed JSON",
        "truncated": "cannot reach the server at .* after 3 attempts",  # the connection closed mid-answer
    }[kind]
    assert re.search(expected if kind == "truncated" else re.escape(expected), message), message


def test_a_trickling_server_is_timed_out_at_the_whole_request_deadline(canned):
    """A byte every 0.2 s never trips a 1 s read timeout; the answer (~200 bytes) would take 40 s. The attempt is
    cut at its 1 s deadline: the outcome is a timeout, not an answer. Before: no timeout at all (a 4 s timeout
    waited 24 s)."""
    with FaultProxy(canned.root, share=1.0, kinds=("trickle",), trickle_s=0.2) as proxy:
        lm = _lm(proxy, max_retries=1, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(UserError, match=r"did not answer within 1s \(2 attempts; the timeout bounds each whole"):
            lm.generate(CHAT, GREEDY)
        elapsed = time.monotonic() - started
    assert lm.stats.attempts == 2 == proxy.injected["trickle"]
    assert elapsed < 20.0  # generous: two 1 s attempts and a backoff, on a loaded machine; 80 s without a deadline


def test_a_stalled_connection_is_timed_out_and_retried(canned):
    with FaultProxy(canned.root, share=1.0, kinds=("stall",), on_retries=frozenset({0})) as proxy:
        lm = _lm(proxy, max_retries=1, timeout=1.0)
        out = lm.generate(CHAT, GREEDY)
    assert out[0][0].text == "echo: two plus two" and lm.stats.retries == 1


def test_the_deadline_covers_the_wait_for_the_first_byte_too(canned):
    with FaultProxy(canned.root, share=1.0, kinds=("stall",)) as proxy:
        lm = _lm(proxy, max_retries=0, timeout=1.0)
        with pytest.raises(UserError, match="did not answer within 1s"):
            lm.generate(CHAT, GREEDY)


KEY = "sk-canary-4242-abcdef"
PLAIN_KEY = "canary0key0without0prefix"  # a key of no known shape: only the literal key itself can catch it


@pytest.mark.parametrize("key", [KEY, PLAIN_KEY])
@pytest.mark.parametrize("kind", ["500", "html", "schema"])
def test_a_server_echoing_the_key_never_gets_it_printed(canned, monkeypatch, key, kind):
    monkeypatch.setenv("AUTOALIGN_TEST_KEY", key)
    echo = f"Authorization: Bearer {key}; key={key}".encode()
    with FaultProxy(canned.root, share=1.0, kinds=(kind,), echo=echo) as proxy:
        lm = OpenAIModel(proxy.url + "/v1", "canned", api_key_env="AUTOALIGN_TEST_KEY", max_retries=0)
        with pytest.raises(UserError) as info:
            lm.generate(CHAT, GREEDY)
    assert {e.authorization for e in proxy.events} == {f"Bearer {key}"}  # the key did reach the server
    message = str(info.value)
    assert key not in message and "canary" not in message, message
    assert REDACTED in message or kind == "schema", message  # the schema fault quotes no body
    assert info.value.__cause__ is None and info.value.__context__ is None or key not in repr(info.value)


def test_a_400_quoting_the_authorization_header_is_redacted(canned, monkeypatch):
    monkeypatch.setenv("AUTOALIGN_TEST_KEY", PLAIN_KEY)
    lm = OpenAIModel(canned.base_url, "canned", api_key_env="AUTOALIGN_TEST_KEY", max_retries=0)
    with pytest.raises(UserError, match=r"rejected the request \(400\): .*bad request from Bearer \[redacted\]") as e:
        lm.generate([[{"role": "user", "content": "please-400"}]], GREEDY)
    assert PLAIN_KEY not in str(e.value)


def test_redact_removes_the_key_and_secret_shapes():
    assert redact("x Bearer abc.def-123 y") == f"x Bearer {REDACTED} y"
    assert redact("key sk-proj-AbC_123 and sk-live") == f"key {REDACTED} and {REDACTED}"
    assert redact("my secret-key-value here", ["secret-key-value"]) == f"my {REDACTED} here"
    assert redact("task-force risk-free sk-") == "task-force risk-free sk-"  # words, not secrets
    assert redact("EMPTY stays", ["EMPTY"]) == "EMPTY stays"  # the loopback placeholder is no secret


def test_cli_never_prints_an_echoed_key(tmp_path):
    """Before: a server whose 400/500 body echoed the bearer key got the key printed on the console."""
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OMP_NUM_THREADS": "1"}
    with CannedServer(reject=True) as server:  # every completion request: a 400 quoting the Authorization header
        proc = subprocess.run(
            [sys.executable, "-m", "autoalign.cli", "eval", f"openai:{server.base_url}#canned", "--suite", "lab",
             "--limit", "1", "--out", str(tmp_path / "ev")],
            capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert KEY not in output and "canary" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and "bad request from Bearer [redacted]" in lines[-1], lines
    on_disk = b"".join(f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    assert b"canary" not in on_disk


def test_missing_log_probs_are_a_capability_a_caller_may_go_without(canned):
    lm = OpenAIModel(canned.base_url, "canned", api_key_env=None)
    with pytest.raises(ScoringUnsupported) as info:
        lm.logprobs([[{"role": "user", "content": "hi"}]], [" there"])
    assert isinstance(info.value, NotImplementedError) and isinstance(info.value, UserError)
    with pytest.raises(ScoringUnsupported, match="returned no prompt log-probs"):
        lm.logprobs(["hello"], [" world"])
    calls = lm.stats.calls
    with pytest.raises(ScoringUnsupported):  # known now: nothing more is sent
        lm.logprobs(["hello again"], [" world"])
    assert lm.stats.calls == calls


@pytest.mark.timeout(600)
def test_eval_lab_suite_runs_against_transformers_serve(served, tmp_path):
    """Before: ``autoalign eval openai:... --suite lab`` stopped at the calibration figure's log-probs, which
    ``transformers serve`` cannot give; now the figure is left out and every other one is measured."""
    out = tmp_path / "ev"
    proc = subprocess.run(
        [sys.executable, "-m", "autoalign.cli", "eval", served.uri, "--suite", "lab", "--per-family", "1",
         "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=580, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads((out / "results.json").read_text())
    assert result["suite"] == "lab" and {"helpful", "harmless", "honest", "composite"} <= set(result["metrics"])
    assert "honest.calibration_error" not in result["metrics"]  # the one figure that needs prompt log-probs


def test_a_proxy_from_the_environment_is_used_and_bound_by_the_deadline_too(canned, monkeypatch):
    """The deadline lives on every connection pool the client has, an environment proxy's included."""
    with FaultProxy("http://127.0.0.1:9", share=1.0, kinds=("trickle",), trickle_s=0.2) as proxy:
        for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)  # FaultProxy forwards an absolute-URL request line as given
        lm = OpenAIModel(canned.base_url, "canned", api_key_env=None, max_retries=0, timeout=1.0)
        with pytest.raises(UserError, match="did not answer within 1s"):
            lm.generate(CHAT, GREEDY)
        proxy.share = 0.0
        assert lm.generate(CHAT, GREEDY)[0][0].text == "echo: two plus two"
    assert [e.path for e in proxy.events] == [f"{canned.base_url}/chat/completions"] * 2
