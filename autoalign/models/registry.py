"""Pick a provider by URI (DESIGN.md): ``hf:PATH_OR_ID``, ``lab:tiny`` / ``lab:small``, ``openai:BASE_URL#MODEL``,
``vllm:MODEL``, ``mock:`` / ``mock:NAME`` (a scripted test double, ``autoalign.models.mock``). Providers are imported
lazily so optional heavy dependencies stay optional."""

from __future__ import annotations

import os
from pathlib import Path

from autoalign.errors import UserError

SCHEMES = ("hf", "lab", "openai", "vllm", "mock")


LAB_NAMES = ("tiny", "small", "teacher")


def check_uri(uri: str) -> tuple[str, str]:
    """Validate a URI without loading anything; returns (scheme, rest). Cheap enough to run before a long job."""
    scheme, sep, rest = uri.partition(":")
    if sep and scheme == "mock":  # ``mock:`` alone is the default script
        from autoalign.models.mock import script_name

        script_name(uri)
        return scheme, rest
    if not sep or not rest:
        if Path(uri).is_dir():  # a bare Hugging Face directory is accepted as hf:
            return "hf", uri
        raise UserError(f"model URI {uri!r}: expected one of {', '.join(s + ':...' for s in SCHEMES)}")
    if scheme not in SCHEMES:
        raise UserError(f"model URI {uri!r}: unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if scheme == "hf" and not Path(os.path.expanduser(rest)).is_dir():
        raise UserError(
            f"model URI {uri!r}: {os.path.expanduser(rest)} is not a directory (downloads from a hub are off; "
            "give a local Hugging Face model directory)"
        )
    if scheme == "lab" and rest not in LAB_NAMES:
        raise UserError(f"model URI {uri!r}: unknown lab model {rest!r} (known: {', '.join(LAB_NAMES)})")
    return scheme, rest


def load_lm(uri: str, **options):
    """Return an object implementing ``autoalign.models.base.LM`` for ``uri``."""
    scheme, rest = check_uri(uri)
    if scheme == "hf":
        from autoalign.models.hf import HFModel

        return HFModel(os.path.expanduser(rest), uri=uri, **options)
    if scheme == "lab":
        from autoalign.lab.pretrain import ensure_lab_model
        from autoalign.models.hf import HFModel

        return HFModel(ensure_lab_model(rest), uri=uri, **options)
    if scheme == "openai":
        from autoalign.models.openai_provider import OpenAIModel

        return OpenAIModel.from_uri(uri, **options)
    if scheme == "vllm":
        from autoalign.models.vllm_provider import VLLMModel

        return VLLMModel.from_uri(uri, **options)
    if scheme == "mock":
        from autoalign.models.mock import MockLM

        return MockLM.from_uri(uri, **options)
    raise AssertionError(scheme)
