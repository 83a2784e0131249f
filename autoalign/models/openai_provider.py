"""OpenAI-compatible HTTP provider (``openai:BASE_URL#MODEL``) on the official ``openai`` client.

Any server that speaks the OpenAI API works: vLLM, SGLang, Ollama, llama.cpp, ``transformers serve`` or a hosted API.
Chat prompts (lists of messages) go to ``/chat/completions``, where the server applies the model's chat template;
raw ``str`` prompts go to the legacy ``/completions`` endpoint unchanged, as ``HFModel`` treats them.

Why it is built this way:
- Retries (exponential backoff with jitter, ``Retry-After`` honoured, on 408/409/429/5xx, timeouts and broken
  connections) are the ``openai`` client's own (``max_retries``). The gap it leaves, a 2xx answer that is not a
  completion (a gateway's HTML page, JSON cut off or garbled, JSON of another shape), is closed by an httpx
  response hook that turns it into a transport error (``DecodingError``), which the same retry machinery then
  retries; after the last attempt it is one line saying what came back. No retry loop is written here.
- ``timeout`` bounds each attempt as a whole, from connecting to the last byte of the answer. httpx's timeouts
  bound each socket operation, so a server trickling a byte every few seconds would never time out; here a
  request hook starts each attempt's deadline and the client's connection pools run on a network backend that
  gives every connect, read and write at most the time left before it, raising httpcore's own ``ReadTimeout``
  when none is left (httpx2 has no whole-request timeout: pydantic/httpx2#557). The client sees an ordinary
  timeout and retries it; proxies from the environment keep working.
- Every attempt the client sends carries ``x-stainless-retry-count``; an httpx request hook counts them, so
  ``stats`` reports exactly how many retries a run needed.
- Requests run on a thread pool of ``max_concurrency`` workers (the bound on requests in flight). Each prompt's
  completions land in the ``CallCache`` the moment its last sample arrives, so a crash never pays for them again;
  the keys are ``CachedLM``'s, so both layers share one cache.
- Each sample asks for the seed ``row_seed(seed, prompt, index)``: a server that honours seeds (vLLM, OpenAI
  best-effort) gives the same text whatever the batching or retries. ``n`` goes out in one request where the server
  honours it and one request per sample where it does not (detected from the answer, e.g. ``transformers serve``).
- The API key comes from an environment variable only (``OPENAI_API_KEY`` unless told otherwise); it never enters
  the fingerprint, a repr, the cache or the run directory. A loopback server with no key set gets a placeholder.
  Every error message is redacted (``redact``): the key itself and anything shaped like a secret (``Bearer ...``,
  ``sk-...``) in a server's text become ``[redacted]``, and the error a message came from is not chained to it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence, cast
from urllib.parse import urlsplit

import httpcore2
import httpx2
import openai

if TYPE_CHECKING:  # types only: transformers is imported lazily, for chat templates
    from openai.types.chat import ChatCompletionMessageParam
    from transformers import PreTrainedTokenizerBase

from autoalign.errors import UserError
from autoalign.models.base import Completion, Prompt, Sampling, row_seed

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
PLACEHOLDER_KEY = "EMPTY"  # what vLLM's docs tell clients of an unauthenticated server to send
_UNSET: Any = object()


@dataclass
class CallStats:
    """What a model object has spent: logical calls (the budgeted unit), HTTP attempts, retries among them."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    max_retries_one_call: int = 0
    cache_hits: int = 0


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ---- secrets ----------------------------------------------------------------------------------------------------
_SECRET_SHAPES = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;}]+|\bsk-[A-Za-z0-9_\-*.]{3,}")
REDACTED = "[redacted]"


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """``text`` with every secret in ``secrets`` (the API key) and anything shaped like one (``Bearer <token>``,
    ``sk-...``) replaced by ``[redacted]``: a server may echo the key in an error page."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret != PLACEHOLDER_KEY:
            text = text.replace(secret, REDACTED)
    return _SECRET_SHAPES.sub(lambda m: f"{m.group(1)} {REDACTED}" if m.group(1) else REDACTED, text)


class ScoringUnsupported(UserError, NotImplementedError):
    """The server cannot score text (no echo + logprobs), or a chat prompt has no template to render it with: a
    one-line ``UserError`` for a caller that needs log-probs, a ``NotImplementedError`` for one that can go without
    (the lab suite's calibration figure), as for any provider that lacks the capability."""


# ---- answers: a 2xx that is not a completion is a retryable fault ------------------------------------------------
class BadAnswer(httpx2.DecodingError):
    """A 2xx answer the API cannot have meant: not JSON (a gateway's HTML page), JSON cut off, or JSON without the
    completion's ``choices``. A transport error, so the ``openai`` client retries it as it does a dropped
    connection; ``str()`` says what came back, in one line."""


_COMPLETION_PATHS = ("/chat/completions", "/completions")


def _choices_problem(body: object, chat: bool, secrets: Sequence[str | None]) -> str | None:
    if not isinstance(body, dict):
        return f"JSON {type(body).__name__}, not an object"
    if "error" in body and "choices" not in body:
        error = body["error"]
        message = error.get("message") if isinstance(error, dict) else error
        return f"an error in a success answer: {_one_line(redact(str(message), secrets), 120)}"
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        return "JSON without a list of choices"
    if chat and not all(isinstance(c.get("message"), dict) for c in choices):
        return "chat choices without a message"
    if not chat and not all(isinstance(c.get("text"), (str, type(None))) for c in choices):
        return "completion choices without a text"
    return None


def check_answer(response: httpx2.Response, secrets: Sequence[str | None] = ()) -> None:
    """httpx response hook: a 2xx answer to a completion request must be a completion, else ``BadAnswer`` (what
    it quotes of the body is redacted before it is cut short, so no part of a secret survives)."""
    path = response.request.url.path
    if not 200 <= response.status_code < 300 or not path.endswith(_COMPLETION_PATHS):
        return
    response.read()
    ctype = response.headers.get("content-type", "") or "none"
    problem: str | None
    try:
        body = json.loads(response.content)
    except ValueError:
        sniff = _one_line(redact(response.content.decode("utf-8", "replace"), secrets), 80)
        kind = "malformed JSON" if "json" in ctype else f"not JSON (content-type {ctype.split(';')[0]})"
        problem = f"{kind}: {sniff!r}" if sniff else f"{kind}, empty"
    else:
        problem = _choices_problem(body, path.endswith("/chat/completions"), secrets)
    if problem is not None:
        raise BadAnswer(f"a {response.status_code} answer: {problem}", request=response.request)


# ---- transport: a deadline for each attempt as a whole ----------------------------------------------------------
_deadline = threading.local()  # ``at``: time.monotonic() by which this thread's current attempt must have ended


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` capped by the time left before this thread's deadline; ``error`` when none is left."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the whole-request deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        inner = self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore2.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    """httpcore's own socket backend, with every operation bounded by the deadline of the attempt it serves."""

    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _DeadlineStream(self._inner.connect_tcp(host, port, _left(timeout, httpcore2.ConnectTimeout),
                                                       local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return _DeadlineStream(self._inner.connect_unix_socket(path, _left(timeout, httpcore2.ConnectTimeout),
                                                               socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def start_deadline(total: float) -> None:
    """Start this thread's attempt deadline: ``total`` seconds from now (an httpx request hook calls it as each
    attempt is sent; the sync client then sends it and reads its answer in this same thread)."""
    _deadline.at = time.monotonic() + total


def bound_by_deadline(client: httpx2.Client) -> httpx2.Client:
    """``client`` with every connection pool it may use (direct, and any proxy the environment names) on the
    deadline-bound backend. httpx has no option for a network backend, hence the pools' attribute; the versions
    are pinned and ``tests/backends/test_hostile_servers.py`` fails if this stops taking effect."""
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is None or not isinstance(getattr(pool, "_network_backend", None), httpcore2.NetworkBackend):
            raise RuntimeError(f"httpx2 {httpx2.__version__}: cannot bound {type(transport).__name__} by a deadline")
        if not isinstance(pool._network_backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(pool._network_backend)
    return client


class OpenAIModel:
    """``LM`` over an OpenAI-compatible server. See the module docstring for the guarantees."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        uri: str | None = None,
        api_key_env: str | None = _UNSET,
        max_concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        request_budget: int | None = None,
        cache=None,
        n_per_request: bool | None = None,
        sample_logprobs: bool = False,
        send_seed: bool = True,
        tokenizer: str | None = None,
        chat_max_tokens_param: str = "max_tokens",
        batch_size: int | None = None,
    ):
        """``batch_size`` is accepted for a uniform ``load_lm(uri, batch_size=...)`` and ignored: over HTTP the
        server batches, and ``max_concurrency`` bounds the requests in flight."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.uri = uri or f"openai:{self.base_url}#{model}"
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"model URI {self.uri!r}: base URL must start with http:// or https:// and name a host")
        if not model:
            raise UserError(f"model URI {self.uri!r}: no model name after '#' (openai:BASE_URL#MODEL)")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise UserError(f"model {self.uri}: max_concurrency >= 1, max_retries >= 0 and timeout > 0 are required")
        explicit_env = api_key_env is not _UNSET
        self.api_key_env = DEFAULT_KEY_ENV if api_key_env is _UNSET else api_key_env
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if not key:
            if self.api_key_env is None or (not explicit_env and _is_loopback(parts.hostname)):
                key = PLACEHOLDER_KEY
            else:
                raise UserError(
                    f"model {self.uri}: no API key: set the environment variable {self.api_key_env} "
                    "(keys are read from the environment only; api_key_env=null for a server that needs none)"
                )
        self._placeholder_key = key == PLACEHOLDER_KEY
        self._secrets = (key,)  # what ``redact`` removes from every message besides secret-shaped text
        self._echo_unsupported = False  # set once the server has shown it cannot score (no echo + logprobs)
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.request_budget = request_budget
        self.cache = cache
        self.sample_logprobs = sample_logprobs
        self.send_seed = send_seed
        self.tokenizer_path = tokenizer
        self.chat_max_tokens_param = chat_max_tokens_param
        self._native_n = n_per_request
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self.stats = CallStats()
        self._lock = threading.Lock()
        http_client = bound_by_deadline(openai.DefaultHttpxClient(
            event_hooks={"request": [lambda r: start_deadline(timeout), self._count_attempt],
                         "response": [lambda r: check_answer(r, self._secrets)]},
            limits=httpx2.Limits(max_connections=max_concurrency + 2, max_keepalive_connections=max_concurrency),
        ))
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=key,
            max_retries=max_retries,
            timeout=httpx2.Timeout(timeout, connect=min(10.0, timeout)),
            http_client=http_client,
        )

    @classmethod
    def from_uri(cls, uri: str, **options) -> "OpenAIModel":
        """``openai:http://host:port/v1#model-name``; options are this class's keyword arguments."""
        scheme, _, rest = uri.partition(":")
        base, sep, model = rest.partition("#")
        if scheme != "openai" or not sep or not base:
            raise UserError(
                f"model URI {uri!r}: expected openai:BASE_URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#my-model"
            )
        return cls(base, model, uri=uri, **options)

    def __repr__(self) -> str:
        return f"OpenAIModel({self.uri!r}, max_concurrency={self.max_concurrency}, max_retries={self.max_retries})"

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "OpenAIModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- identity -------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """The server and model name; never the key. A server swapping weights under one name is not detected."""
        return hashlib.sha256(f"openai\x00{self.base_url}\x00{self.model}".encode()).hexdigest()[:16]

    # ---- bookkeeping ----------------------------------------------------------------------------------------
    def _count_attempt(self, request: httpx2.Request) -> None:
        try:
            retry = int(request.headers.get("x-stainless-retry-count", "0"))
        except ValueError:
            retry = 0
        with self._lock:
            self.stats.attempts += 1
            if retry > 0:
                self.stats.retries += 1
                self.stats.max_retries_one_call = max(self.stats.max_retries_one_call, retry)

    def _charge(self) -> None:
        with self._lock:
            if self.request_budget is not None and self.stats.calls >= self.request_budget:
                raise UserError(
                    f"model {self.uri}: request budget of {self.request_budget} calls is spent "
                    "(raise request_budget to allow more)"
                )
            self.stats.calls += 1

    def _cache_key(self, kind: str, prompt: Prompt, extra: str) -> str:
        from autoalign.store import CallCache

        return CallCache.key(kind, self.fingerprint(), prompt, extra)

    # ---- generation -----------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[list[Completion]]:
        prompts = list(prompts)
        out: list[list[Completion] | None] = [None] * len(prompts)
        keys: list[str] = []
        if self.cache is not None:
            keys = [self._cache_key("generate", p, sampling.key()) for p in prompts]
            found = self.cache.get_many(keys)
            for i, k in enumerate(keys):
                if k in found:
                    out[i] = [Completion(**c) for c in found[k]]
            self.stats.cache_hits += sum(o is not None for o in out)
        slots: dict[int, list[Completion | None]] = {
            i: [None] * sampling.n for i in range(len(prompts)) if out[i] is None
        }

        def finish(i: int) -> None:
            comps = slots.pop(i)
            out[i] = comps  # type: ignore[assignment]
            if self.cache is not None:
                self.cache.put_many({keys[i]: [asdict(c) for c in comps]})  # type: ignore[arg-type]

        def tasks_for(i: int) -> list[tuple[int, int, int]]:
            if sampling.temperature == 0:
                return [(i, 0, 1)]  # greedy: one request, replicated to n samples
            if sampling.n > 1 and self._native_n is not False:
                return [(i, 0, sampling.n)]
            return [(i, j, 1) for j in range(sampling.n)]

        def absorb(i: int, first: int, count: int, comps: list[Completion]) -> list[tuple[int, int, int]]:
            """Store a request's completions; return follow-up tasks when the server ignored ``n``."""
            if sampling.temperature == 0:
                slots[i] = [comps[0]] * sampling.n
                return []
            for offset, c in enumerate(comps[:count]):
                slots[i][first + offset] = c
            if count > 1:
                self._native_n = len(comps) >= count
                return [(i, j, 1) for j in range(first + len(comps), first + count)]
            return []

        self._run(
            [t for i in list(slots) for t in tasks_for(i)],
            lambda t: self._sample(prompts[t[0]], sampling, t[1], t[2]),
            absorb,
            lambda i: i in slots and all(c is not None for c in slots[i]),
            finish,
        )
        return out  # type: ignore[return-value]

    def _run(self, tasks, call, absorb, complete, finish) -> None:
        """Run ``call`` over ``tasks`` with at most ``max_concurrency`` in flight. On the first failure, start
        nothing new, let requests in flight finish (and be cached), then raise that failure as a ``UserError``."""
        if not tasks:
            return
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="openai-lm") as pool:
            pending: dict[Future, tuple] = {pool.submit(call, t): t for t in tasks}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = pending.pop(fut)
                    if fut.cancelled():
                        continue
                    exc = fut.exception()
                    if exc is not None:
                        if failure is None:
                            failure = exc
                            for other in pending:
                                other.cancel()
                        continue
                    for follow in absorb(*task, fut.result()):
                        if failure is None:
                            pending[pool.submit(call, follow)] = follow
                    if complete(task[0]):
                        finish(task[0])
        if failure is not None:
            # not chained: the client's exception may carry what a server echoed (the key), redacted here only
            raise self._user_error(failure) from None

    def _seed(self, sampling: Sampling, prompt: Prompt, index: int) -> int:
        return row_seed(sampling.seed, prompt, index) & 0x7FFFFFFF  # 31 bits: servers parse int32 seeds too

    def _sample(self, prompt: Prompt, sampling: Sampling, first: int, count: int) -> list[Completion]:
        self._charge()
        params: dict[str, Any] = {"model": self.model, "temperature": sampling.temperature}
        if sampling.top_p < 1.0 and sampling.temperature > 0:
            params["top_p"] = sampling.top_p
        if count > 1:
            params["n"] = count
        if self.send_seed:
            params["seed"] = self._seed(sampling, prompt, first)
        if sampling.stop:
            params["stop"] = list(sampling.stop)
        if isinstance(prompt, str):
            if self.sample_logprobs:
                params["logprobs"] = 1
            resp = self.client.completions.create(prompt=prompt, max_tokens=sampling.max_new_tokens, **params)
        else:
            if self.sample_logprobs:
                params["logprobs"] = True
            params[self.chat_max_tokens_param] = sampling.max_new_tokens
            # our chat messages are plain {"role", "content"} dicts, which is what the typed params describe
            resp = self.client.chat.completions.create(messages=cast("list[ChatCompletionMessageParam]", prompt),
                                                       **params)
        choices = sorted(resp.choices or [], key=lambda c: c.index or 0)
        if not choices:
            raise UserError(f"model {self.uri}: the server answered with no choices")
        usage_tokens = resp.usage.completion_tokens if resp.usage is not None and len(choices) == 1 else None
        return [self._completion(c, sampling, usage_tokens, chat=not isinstance(prompt, str)) for c in choices]

    def _completion(self, choice, sampling: Sampling, usage_tokens: int | None, chat: bool) -> Completion:
        text = (choice.message.content if chat else choice.text) or ""
        finish = "length" if choice.finish_reason == "length" else "stop"
        for stop in sampling.stop:  # some servers return the stop string, or ignore stop altogether
            if stop in text:
                text, finish = text[: text.index(stop)], "stop"
        logprob, num_tokens = None, usage_tokens
        if self.sample_logprobs:
            lp = choice.logprobs
            values: list[float] | None = None
            if chat and lp is not None:
                values = [t.logprob for t in (lp.content or [])]
            elif not chat and lp is not None and lp.token_logprobs is not None:
                values = [v for v in lp.token_logprobs if v is not None]
            if values is None:
                raise UserError(
                    f"model {self.uri}: the server at {self.base_url} returned no log-probs for sampled tokens "
                    f"({'chat logprobs=true' if chat else 'completions logprobs=1'} is unsupported there); "
                    "set sample_logprobs: false or use a server that returns them (e.g. vLLM)"
                )
            logprob, num_tokens = float(sum(values)), len(values)
        return Completion(text=text, finish_reason=finish, logprob=logprob, num_tokens=num_tokens)

    # ---- scoring --------------------------------------------------------------------------------------------
    def logprobs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[float]:
        """Summed log P(continuation | prompt) via ``/completions`` with ``echo`` and ``logprobs`` (the legacy
        OpenAI scoring request, which vLLM and others implement): tokens of the echoed text that start inside the
        continuation are summed. Chat prompts are rendered with the model's chat template, which needs
        ``tokenizer=`` (a Hugging Face tokenizer directory or id)."""
        if len(prompts) != len(continuations):
            raise ValueError("logprobs: prompts and continuations must have the same length")
        pairs = list(zip(prompts, continuations))
        out: list[float | None] = [None] * len(pairs)
        keys: list[str] = []
        if self.cache is not None:
            keys = [self._cache_key("logprobs", p, c) for p, c in pairs]
            found = self.cache.get_many(keys)
            for i, k in enumerate(keys):
                if k in found:
                    out[i] = found[k]
        todo = [i for i, v in enumerate(out) if v is None]
        contexts = {i: self._render_for_scoring(pairs[i][0]) for i in todo}
        if todo and self._echo_unsupported:
            raise self._no_echo()
        results: dict[int, float] = {}

        def finish(i: int) -> None:
            out[i] = results[i]
            if self.cache is not None:
                self.cache.put_many({keys[i]: results[i]})

        def absorb(i: int, value: float) -> list:
            results[i] = value
            return []

        self._run(
            [(i,) for i in todo],
            lambda t: self._score(contexts[t[0]], pairs[t[0]][1]),
            absorb,
            lambda i: i in results,
            finish,
        )
        return out  # type: ignore[return-value]

    def _render_for_scoring(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if self.tokenizer_path is None:
            raise ScoringUnsupported(
                f"model {self.uri}: log-probs of chat prompts need the model's chat template: pass "
                "tokenizer=<HF tokenizer dir or id> (the OpenAI API scores raw text only)"
            )
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path)
        # tokenize=False: the rendered text
        return cast(str, self._tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))

    def _score(self, context: str, continuation: str) -> float:
        self._charge()
        full = context + continuation
        # max_tokens=1 (not 0): the widest-supported way to ask for the prompt's log-probs (lm-eval-harness does so).
        resp = self.client.completions.create(
            model=self.model, prompt=full, max_tokens=1, echo=True, logprobs=1, temperature=0.0
        )
        lp = resp.choices[0].logprobs if resp.choices else None
        if lp is None or not lp.token_logprobs or not lp.text_offset:
            self._echo_unsupported = True  # asked once: later calls fail before sending anything
            raise self._no_echo()
        start, end = len(context), len(full)
        total, counted = 0.0, 0
        for offset, value in zip(lp.text_offset, lp.token_logprobs):
            if start <= offset < end and value is not None:
                total += value
                counted += 1
        if continuation and counted == 0:
            raise UserError(f"model {self.uri}: the server's echoed token offsets do not cover the continuation")
        return total

    def _no_echo(self) -> "ScoringUnsupported":
        return ScoringUnsupported(
            f"model {self.uri}: the server at {self.base_url} returned no prompt log-probs for /completions "
            "with echo=true, logprobs=1 (transformers serve, for one, implements neither); logprob-scored "
            "judges and multiple-choice evals need a server that does (e.g. vLLM) or an hf: model"
        )

    # ---- errors ---------------------------------------------------------------------------------------------
    def _user_error(self, exc: BaseException) -> UserError:
        """One line naming the problem, after the client's bounded retries where retrying made sense; redacted
        (the key, and anything secret-shaped a server wrote), whatever the error."""
        err = exc if isinstance(exc, UserError) else self._describe(exc)
        line = redact(str(err), self._secrets)
        if line == str(err):
            return err
        try:
            return type(err)(line)
        except TypeError:  # a subclass with other arguments
            return UserError(line)

    def _text(self, obj: object, limit: int = 200) -> str:
        """A server's words for a message: redacted first, then cut to one line."""
        return _one_line(redact(str(obj), self._secrets), limit)

    def _describe(self, exc: BaseException) -> UserError:
        where = f"model {self.uri}"
        attempts = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        if isinstance(exc, openai.APITimeoutError):
            return UserError(
                f"{where}: the server at {self.base_url} did not answer within {self.timeout:g}s ({attempts}; the "
                "timeout bounds each whole request, connect to last byte)"
            )
        if isinstance(exc, openai.APIConnectionError) and isinstance(exc.__cause__, BadAnswer):
            return UserError(
                f"{where}: the server at {self.base_url} gave no usable answer after {attempts}: "
                f"{self._text(exc.__cause__, 160)} (a gateway or proxy in front of it?)"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return UserError(
                f"{where}: cannot reach the server at {self.base_url} after {attempts} "
                f"({self._text(cause, 120) or type(cause).__name__}); is it running?"
            )
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            if self._placeholder_key:
                var = self.api_key_env or DEFAULT_KEY_ENV
                return UserError(f"{where}: the server requires an API key ({exc.status_code}): set {var}")
            return UserError(f"{where}: the server rejected the API key from ${self.api_key_env} ({exc.status_code})")
        if isinstance(exc, openai.RateLimitError):
            return UserError(
                f"{where}: still rate-limited (429) after {attempts}; lower max_concurrency or raise the quota"
            )
        if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
            return UserError(f"{where}: server error {exc.status_code} after {attempts}: {self._text(exc.message)}")
        if isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 404, 422):
            return self._diagnose(exc)
        if isinstance(exc, openai.APIStatusError):
            return UserError(f"{where}: the server answered {exc.status_code}: {self._text(exc.message)}")
        if isinstance(exc, openai.OpenAIError):
            return UserError(f"{where}: unexpected answer from the server: {self._text(exc)}")
        return UserError(f"{where}: {type(exc).__name__}: {self._text(exc)}")

    def _diagnose(self, exc: openai.APIStatusError) -> UserError:
        """Tell a wrong base URL from an unknown model by asking the server which models it serves."""
        where = f"model {self.uri}"
        try:
            ids = [m.id for m in self.client.with_options(max_retries=0, timeout=10.0).models.list()]
        except openai.NotFoundError:
            return UserError(
                f"{where}: wrong base URL: {self.base_url} has no OpenAI-compatible API (404 on /models); "
                "it usually ends in /v1, as in openai:http://host:port/v1#model"
            )
        except Exception:
            ids = None
        if ids is not None and self.model not in ids:
            offered = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "") if ids else "none"
            return UserError(f"{where}: unknown model {self.model!r}: the server at {self.base_url} serves {offered}")
        return UserError(f"{where}: the server rejected the request ({exc.status_code}): {self._text(exc.message)}")
