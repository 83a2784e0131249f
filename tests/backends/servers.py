"""Start and stop ``transformers serve`` (transformers' own OpenAI-compatible server) on 127.0.0.1.

Used by the backend tests' session fixture and by ``benchmarks/backends.py``. The server is pinned to one model
directory (``force_model``), so it answers for that model alone, under the directory's path as its name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2


def serve_available() -> bool:
    from transformers.utils.import_utils import is_serve_available

    return is_serve_available()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TransformersServe:
    """``with TransformersServe(model_dir) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/v1``."""

    def __init__(
        self, model_dir: str | os.PathLike, startup_s: float = 600.0, nice: int = 0, env: dict[str, str] | None = None
    ):
        self.model_dir = str(model_dir)
        self.env = env or {}
        self.port = free_port()
        self.startup_s = startup_s
        self.nice = nice
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    @property
    def model_name(self) -> str:
        return self.model_dir

    @property
    def uri(self) -> str:
        return f"openai:{self.base_url}#{self.model_name}"

    def start(self) -> "TransformersServe":
        cli = Path(sys.executable).with_name("transformers")
        cmd = [str(cli), "serve", self.model_dir, "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        if self.nice:
            cmd = ["nice", "-n", str(self.nice), *cmd]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **self.env}
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_s
        with httpx2.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"transformers serve exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    if client.get(f"{self.root}/health").status_code == 200:
                        return self
                except httpx2.TransportError:
                    pass
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer /health within {self.startup_s:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and nothing else
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> "TransformersServe":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
