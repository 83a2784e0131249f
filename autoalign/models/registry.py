"""Pick a provider by URI (DESIGN.md): ``hf:PATH_OR_ID``, ``lab:tiny`` / ``lab:small``, ``openai:BASE_URL#MODEL``,
``vllm:MODEL``. Providers are imported lazily so optional heavy dependencies stay optional."""

from __future__ import annotations

import os
from pathlib import Path

from autoalign.errors import UserError

SCHEMES = ("hf", "lab", "openai", "vllm")


def load_lm(uri: str, **options):
    """Return an object implementing ``autoalign.models.base.LM`` for ``uri``."""
    scheme, sep, rest = uri.partition(":")
    if not sep or not rest:
        if Path(uri).is_dir():  # a bare Hugging Face directory is accepted as hf:
            scheme, rest = "hf", uri
        else:
            raise UserError(f"model URI {uri!r}: expected one of {', '.join(s + ':...' for s in SCHEMES)}")
    if scheme == "hf":
        from autoalign.models.hf import HFModel

        path = os.path.expanduser(rest)
        if not Path(path).is_dir():
            raise UserError(
                f"model URI {uri!r}: {path} is not a directory (downloads from a hub are off; "
                "give a local Hugging Face model directory)"
            )
        return HFModel(path, uri=uri, **options)
    if scheme == "lab":
        from autoalign.lab.pretrain import LAB_SIZES, ensure_lab_model
        from autoalign.models.hf import HFModel

        if rest not in LAB_SIZES:
            raise UserError(f"model URI {uri!r}: unknown lab model {rest!r} (known: {', '.join(LAB_SIZES)})")
        return HFModel(ensure_lab_model(rest), uri=uri, **options)
    if scheme == "openai":
        from autoalign.models.openai_provider import OpenAIModel

        return OpenAIModel.from_uri(uri, **options)
    if scheme == "vllm":
        from autoalign.models.vllm_provider import VLLMModel

        return VLLMModel.from_uri(uri, **options)
    raise UserError(f"model URI {uri!r}: unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
