"""A fault-injecting HTTP proxy on 127.0.0.1 for testing the OpenAI-compatible provider against a real server.

It forwards requests to an upstream server with ``httpx2`` (the HTTP library the ``openai`` client runs on) and, for
a configurable share of POST requests, answers with a fault instead:

- ``429``: ``Too Many Requests`` with a ``Retry-After`` header,
- ``500``: an internal server error,
- ``slow``: waits ``slow_s`` (longer than the client's timeout) before forwarding,
- ``drop``: closes the connection without answering,
- ``malformed``: forwards, then returns the upstream JSON cut in half with status 200,
- ``html``: a 200 answer with a gateway's HTML page (``text/html``) instead of JSON,
- ``schema``: a 200 JSON answer of another shape (no ``choices``; what some gateways send for an error),
- ``truncated``: forwards, announces the whole body's ``Content-Length``, sends half of it and closes,
- ``trickle``: forwards, then sends the answer one byte every ``trickle_s`` (less than the client's read timeout,
  so only a whole-request deadline stops it),
- ``stall``: reads the request and answers nothing until the client gives up (closes the connection).

Which requests fail is a pure function of (seed, request body less its ``model`` field, the client's
``x-stainless-retry-count`` header), so a run is reproducible whatever the thread interleaving and wherever the
served model lives (its path is its name), and a retry of a faulted request draws again. The kinds
are dealt round-robin over the faulted requests so that every kind occurs. GET requests (``/models``) pass through.
Every request is logged (``events``, with its time to answer), so tests can check what the client did (e.g. that it
waited ``Retry-After``) and tell injected faults from genuine slowness of the upstream server.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

KINDS = ("429", "500", "slow", "drop", "malformed", "html", "schema", "truncated", "trickle", "stall")
GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"
_HOP_HEADERS = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding"}


@dataclass
class Event:
    time: float
    method: str
    path: str
    retry: int
    fault: str | None
    body: bytes
    authorization: str | None
    elapsed: float | None = None  # receipt to the last byte of the answer (or the drop); None: still running


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        share: float = 0.3,
        seed: int = 0,
        kinds: tuple[str, ...] = KINDS,
        slow_s: float = 6.0,
        retry_after: str = "1",
        poison: bytes | None = None,
        trickle_s: float = 0.5,
        echo: bytes | None = None,
        on_retries: frozenset[int] | None = None,
    ):
        self.upstream = upstream.rstrip("/")
        self.share = share
        self.seed = seed
        self.kinds = kinds
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.poison = poison  # requests whose body contains it always get a 500 (a request that can never succeed)
        self.trickle_s = trickle_s
        self.echo = echo  # put into every injected error body: e.g. the request's Authorization header echoed
        self.on_retries = on_retries  # fault only attempts with these retry counts (None: any)
        self.events: list[Event] = []
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._dealt = 0
        self._client = httpx2.Client(base_url=self.upstream, timeout=120.0)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a handler still sleeping on a "slow" fault must not block shutdown
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._client.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    # ---- the schedule ---------------------------------------------------------------------------------------
    def decide(self, method: str, body: bytes, retry: int) -> str | None:
        if method != "POST":
            return None
        if self.poison is not None and self.poison in body:
            with self._lock:
                self.injected["poison"] += 1
            return "500"
        if self.share <= 0 or (self.on_retries is not None and retry not in self.on_retries):
            return None
        digest = hashlib.sha256(f"{self.seed}\x00{retry}\x00".encode() + _schedule_key(body)).digest()
        if int.from_bytes(digest[:8], "little") / 2**64 >= self.share:
            return None
        with self._lock:
            kind = self.kinds[self._dealt % len(self.kinds)]
            self._dealt += 1
            self.injected[kind] += 1
        return kind

    def log(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)


def _schedule_key(body: bytes) -> bytes:
    """The request body without the model's name (a temporary path in tests), canonical JSON when it is JSON."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body
    if isinstance(obj, dict):
        obj.pop("model", None)
    return json.dumps(obj, sort_keys=True).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped connection hits one request only

    def log_message(self, format, *args):  # quiet
        pass

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self) -> None:
        proxy = self.owner
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            retry = int(self.headers.get("x-stainless-retry-count") or 0)
        except ValueError:
            retry = 0
        fault = proxy.decide(self.command, body, retry)
        event = Event(time.monotonic(), self.command, self.path, retry, fault, body, self.headers.get("authorization"))
        # Logged on receipt, not on answer: a "slow" handler may still be sleeping when the stage ends and the proxy
        # stops, and its request must count all the same (its elapsed time is filled in when it finishes).
        proxy.log(event)
        try:
            echo = proxy.echo or b""
            if fault == "429":
                return self._reply(429, b'{"error": {"message": "rate limited", "type": "rate_limit_exceeded"}}',
                                   {"Retry-After": proxy.retry_after})
            if fault == "500":
                return self._reply(500, b'{"error": {"message": "injected failure ' + echo + b'", "type": "server_error"}}')
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "html":
                return self._reply(200, echo + GATEWAY_PAGE, {"content-type": "text/html"})
            if fault == "schema":
                return self._reply(200, b'{"object": "error", "message": "upstream busy ' + echo + b'", "code": 503}')
            if fault == "stall":
                self.wfile.flush()
                select.select([self.connection], [], [])  # readable once the client closes: then we are done
                return
            if fault == "slow":
                time.sleep(proxy.slow_s)
            status, headers, content = self._forward(body)
            if fault == "malformed":
                content, status = content[: max(1, len(content) // 2)], 200
                headers = {"content-type": "application/json"}
            ctype = {"content-type": headers.get("content-type", "application/json")}
            if fault == "truncated":
                return self._reply(status, content, ctype, send=len(content) // 2)
            if fault == "trickle":
                return self._reply(status, content, ctype, gap_s=proxy.trickle_s)
            self._reply(status, content, ctype)
        except (OSError, RuntimeError, httpx2.HTTPError):
            pass  # the client gave up (timeout), the connection was dropped on purpose, or the proxy was stopped
        finally:
            event.elapsed = time.monotonic() - event.time

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        upstream = self.owner._client.request(self.command, self.path, content=body or None, headers=headers)
        return upstream.status_code, {k.lower(): v for k, v in upstream.headers.items()}, upstream.content

    def _reply(self, status: int, content: bytes, headers: dict[str, str] | None = None, send: int | None = None,
               gap_s: float | None = None) -> None:
        """Answer ``content`` with its full ``Content-Length``; only its first ``send`` bytes when given (then the
        connection closes), one byte every ``gap_s`` seconds when given (until the client hangs up)."""
        self.send_response(status)
        for k, v in (headers or {"content-type": "application/json"}).items():
            self.send_header(k, v)
        if not any(k.lower() == "content-type" for k in (headers or {})):
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        if gap_s is None:
            self.wfile.write(content if send is None else content[:send])
            return
        self.wfile.flush()
        for i in range(len(content)):
            self.wfile.write(content[i : i + 1])
            self.wfile.flush()
            time.sleep(gap_s)  # the pace of the trickle, not a wait for anything: the client's deadline ends it
