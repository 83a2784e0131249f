"""A minimal server for the one OpenAI request ``transformers serve`` lacks: ``/v1/completions`` with ``echo`` and
``logprobs`` (how vLLM and the legacy OpenAI API score a text). Log-probs come from a real Hugging Face model in
this process, so the provider's parsing (token offsets, the continuation boundary, the leading ``None``) can be
checked against ``HFModel.logprobs`` on the same weights. It answers nothing else.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class ScoringServer:
    def __init__(self, model_dir: str, name: str = "scorer"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @torch.inference_mode()
    def score(self, prompt: str, max_tokens: int) -> dict:
        tok = self.tokenizer
        ids = tok(prompt)["input_ids"]
        logps = self.model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
        token_logprobs: list[float | None] = [None] + [float(logps[t - 1, ids[t]]) for t in range(1, len(ids))]
        pieces = [tok.decode(ids[: t + 1]) for t in range(len(ids))]
        offsets = [0] + [len(p) for p in pieces[:-1]]
        tokens = [tok.decode([i]) for i in ids]
        text = prompt
        if max_tokens > 0:  # echo plus one greedy token, as the legacy API answers max_tokens=1
            nxt = int(logps[-1].argmax())
            piece = tok.decode([nxt])
            tokens.append(piece)
            token_logprobs.append(float(logps[-1, nxt]))
            offsets.append(len(prompt))
            text += piece
        return {
            "id": "cmpl-score",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "text": text,
                    "finish_reason": "length",
                    "logprobs": {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": None,
                                 "text_offset": offsets},
                }
            ],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": max_tokens,
                      "total_tokens": len(ids) + max_tokens},
        }

    def start(self) -> "ScoringServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                if self.path != "/v1/completions" or not body.get("echo"):
                    return self._reply(404, {"error": {"message": "only /v1/completions with echo is served here"}})
                with owner._lock:
                    answer = owner.score(body["prompt"], int(body.get("max_tokens") or 0))
                self._reply(200, answer)

            def _reply(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
