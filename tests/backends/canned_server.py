"""A canned OpenAI-compatible server on 127.0.0.1: instant, deterministic answers, no model.

For tests of what the provider does with a server's answers (in front of it, ``FaultProxy`` injects the faults):
``/v1/chat/completions`` answers ``echo: <last user message>``, ``/v1/completions`` ``echo: <prompt>``, and
``/v1/models`` lists ``model``. A request whose body contains ``please-400`` gets a 400 whose message quotes the
request's ``Authorization`` header, as a careless server or gateway does (every POST does, with ``reject=True``).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CannedServer:
    def __init__(self, model: str = "canned", reject: bool = False):
        self.model = model
        self.reject = reject
        self._server: ThreadingHTTPServer | None = None

    @property
    def root(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def start(self) -> "CannedServer":
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "CannedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server_owner: CannedServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # quiet
        pass

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self._json(200, {"object": "list", "data": [{"id": self.server_owner.model, "object": "model"}]})
        self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if b"please-400" in raw or self.server_owner.reject:
            return self._json(400, {"error": {"message": f"bad request from {self.headers.get('authorization')}"}})
        body = json.loads(raw)
        name = self.server_owner.model
        if self.path.endswith("/chat/completions"):
            text = "echo: " + body["messages"][-1]["content"]
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return self._json(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": name,
                                    "choices": [choice]})
        if self.path.endswith("/completions"):
            choice = {"index": 0, "text": "echo: " + body["prompt"], "finish_reason": "stop", "logprobs": None}
            return self._json(200, {"id": "c2", "object": "text_completion", "created": 0, "model": name,
                                    "choices": [choice]})
        self._json(404, {"error": {"message": "not found"}})

    def _json(self, status: int, obj: dict) -> None:
        content = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
