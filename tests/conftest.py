"""Shared fixtures: the ``lab:tiny`` base model (pretrained once, then found in the normal cache) and an LM on it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The ``lab:tiny`` model directory; the first run pretrains it (under a minute), later runs reuse the cache
    (``$AUTOALIGN_CACHE/lab`` or the user cache dir)."""
    from autoalign.lab.pretrain import ensure_lab_model

    return ensure_lab_model("tiny", progress=False)


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path):
    """An ``HFModel`` on ``lab:tiny`` (CPU), shared by the session: tests must not mutate it."""
    from autoalign.models.hf import HFModel

    return HFModel(tiny_model_dir, uri="lab:tiny", device="cpu", batch_size=64)
