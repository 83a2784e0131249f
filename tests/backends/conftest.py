"""Fixtures of the backend tests: a tiny model directory and a real ``transformers serve`` on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.servers import TransformersServe, serve_available


@pytest.fixture(scope="session")
def backend_model_dir(request, tmp_path_factory) -> Path:
    """The suite-wide ``tiny_model_dir`` when tests/conftest.py offers one, else a random-init tiny Llama with a
    byte-level BPE tokenizer and a chat template, built here in about a second."""
    try:
        return Path(request.getfixturevalue("tiny_model_dir"))
    except pytest.FixtureLookupError:
        from tests.random_model import build_random_model

        return build_random_model(tmp_path_factory.mktemp("served-model"))


@pytest.fixture(scope="session")
def served(backend_model_dir):
    """``transformers serve`` pinned to the tiny model, on a free port; killed at the end of the session."""
    if not serve_available():
        pytest.skip("transformers serve needs fastapi, uvicorn and openai (pip install 'autoalign[test,openai]')")
    # One torch thread: on a loaded 2-core machine, spinning intra-op threads make a tiny model many times slower.
    server = TransformersServe(backend_model_dir, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}).start()
    yield server
    server.stop()


@pytest.fixture
def one_torch_thread():
    """In-process HF models on one torch thread for the test, restored after: on a loaded 2-core machine,
    spinning intra-op threads make a tiny model many times slower (see benchmarks/backends.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
