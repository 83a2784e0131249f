"""A fault-injecting HTTP proxy on 127.0.0.1 for testing the OpenAI-compatible provider against a real server.

It forwards requests to an upstream server with ``httpx2`` (the HTTP library the ``openai`` client runs on) and, for
a configurable share of POST requests, answers with a fault instead:

- ``429``: ``Too Many Requests`` with a ``Retry-After`` header,
- ``500``: an internal server error,
- ``slow``: waits ``slow_s`` (longer than the client's timeout) before forwarding,
- ``drop``: closes the connection without answering,
- ``malformed``: forwards, then returns the upstream JSON cut in half with status 200.

Which requests fail is a pure function of (seed, request body, the client's ``x-stainless-retry-count`` header),
so a run is reproducible whatever the thread interleaving, and a retry of a faulted request draws again. The kinds
are dealt round-robin over the faulted requests so that every kind occurs. GET requests (``/models``) pass through.
Every request is logged (``events``, with its time to answer), so tests can check what the client did (e.g. that it
waited ``Retry-After``) and tell injected faults from genuine slowness of the upstream server.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

KINDS = ("429", "500", "slow", "drop", "malformed")
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
    ):
        self.upstream = upstream.rstrip("/")
        self.share = share
        self.seed = seed
        self.kinds = kinds
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.poison = poison  # requests whose body contains it always get a 500 (a request that can never succeed)
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
        if self.share <= 0:
            return None
        digest = hashlib.sha256(f"{self.seed}\x00{retry}\x00".encode() + body).digest()
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
            if fault == "429":
                return self._reply(429, b'{"error": {"message": "rate limited", "type": "rate_limit_exceeded"}}',
                                   {"Retry-After": proxy.retry_after})
            if fault == "500":
                return self._reply(500, b'{"error": {"message": "injected failure", "type": "server_error"}}')
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "slow":
                time.sleep(proxy.slow_s)
            status, headers, content = self._forward(body)
            if fault == "malformed":
                content, status = content[: max(1, len(content) // 2)], 200
                headers = {"content-type": "application/json"}
            self._reply(status, content, {"content-type": headers.get("content-type", "application/json")})
        except (OSError, RuntimeError, httpx2.HTTPError):
            pass  # the client gave up (timeout), the connection was dropped on purpose, or the proxy was stopped
        finally:
            event.elapsed = time.monotonic() - event.time

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        upstream = self.owner._client.request(self.command, self.path, content=body or None, headers=headers)
        return upstream.status_code, {k.lower(): v for k, v in upstream.headers.items()}, upstream.content

    def _reply(self, status: int, content: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {"content-type": "application/json"}).items():
            self.send_header(k, v)
        if not any(k.lower() == "content-type" for k in (headers or {})):
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
