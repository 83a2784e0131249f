"""Where a round's prompts come from (``prompts.source``): the lab's task families, or a JSONL file of
``records.Prompt`` rows. Each source is a function ``(cfg, seed) -> list[Prompt]`` named in ``methods.PROMPT_SOURCES``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autoalign.errors import UserError
from autoalign.records import Prompt, stable_id
from autoalign.yaml_input import decode_utf8


def lab_source(cfg: Any, seed: int) -> list[Prompt]:
    from autoalign.lab.prompts import lab_prompts

    return lab_prompts(cfg.count, seed=seed, families=cfg.families, split="train")


def _as_prompt_row(row: object) -> object:
    """A ``records.Prompt`` row as it is, or a plain TRL prompt row (``{"messages": [...]}`` or ``{"prompt":
    "..."}`` / ``{"prompt": [...]}``) given the id a hash of its text, so a user's TRL dataset reads as it is."""
    if not isinstance(row, dict) or "id" in row:
        return row
    messages = row.get("messages", row.get("prompt"))
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if isinstance(messages, list) and messages and messages[-1].get("role") == "assistant":
        messages = messages[:-1]  # a conversation with its answer: the prompt is what comes before it
    rest = {k: v for k, v in row.items() if k not in ("messages", "prompt", "completion")}
    return {"id": stable_id(json.dumps(messages, sort_keys=True)), "messages": messages, "source": "file", **rest}


def read_prompt_file(path: str | Path) -> list[Prompt]:
    """A user's JSONL of ``records.Prompt`` rows; a file that is not UTF-8 or a row that is not a prompt is one
    line naming the file (and the line), never a traceback."""
    text = decode_utf8(Path(path).read_bytes(), f"prompts file {path}")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(Prompt.model_validate(_as_prompt_row(json.loads(line))))
        except json.JSONDecodeError as err:
            raise UserError(f"prompts file {path}: line {n}: not JSON ({err.msg})") from None
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "(row)"
            raise UserError(f"prompts file {path}: line {n}: {loc}: {first['msg']}") from None
    if not rows:
        raise UserError(f"prompts file {path}: no prompts")
    return rows


def file_source(cfg: Any, seed: int) -> list[Prompt]:
    if not cfg.path or not Path(cfg.path).is_file():
        raise UserError(f"recipe prompts.path: file not found: {cfg.path}")
    pool = read_prompt_file(cfg.path)
    return random.Random(seed).sample(pool, min(cfg.count, len(pool)))
