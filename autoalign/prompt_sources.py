"""Where a round's prompts come from (``prompts.source``): the lab's task families, or a JSONL file of prompts.
Each source is a function ``(cfg, seed) -> list[Prompt]`` named in ``methods.PROMPT_SOURCES``.

A prompt file holds one JSON object a line, in any of the formats a user's data already has:

- ``records.Prompt``: ``{"id": "q1", "messages": [{"role": "user", "content": "..."}], "axis": "helpful"}``;
- TRL conversational: ``{"messages": [...]}`` (the system turn, if any, and the last user turn are the prompt; the
  assistant's answer and earlier turns are left out);
- TRL prompt-only / prompt-completion / preference: ``{"prompt": "..."}`` or ``{"prompt": [messages]}`` (other
  columns such as ``completion``, ``chosen``, ``rejected`` are ignored).

A row without an ``id`` gets one derived from its messages (a hash, so the same file gives the same ids on every
run); ``source``, ``axis``, ``family`` and ``env`` are kept when present."""

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


PROMPT_FIELDS = ("id", "source", "axis", "family", "env")  # what a TRL row may carry into a records.Prompt


class _BadRow(ValueError):
    """A row that is neither a records.Prompt nor a TRL prompt row; the message names the field."""


def _turns(conversation: object, key: str) -> list[dict[str, str]]:
    """A TRL conversation as a prompt: its system turn (if any) and its last user turn; what the assistant said
    after that turn (a completion) and earlier turns are left out, since a Prompt is one request."""
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    if not isinstance(conversation, list) or not conversation:
        raise _BadRow(f"{key}: expected a string or a non-empty list of chat messages")
    for i, m in enumerate(conversation):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise _BadRow(f"{key}.{i}: expected a message {{\"role\": ..., \"content\": \"...\"}}")
    users = [m for m in conversation if m["role"] == "user"]
    if not users:
        raise _BadRow(f"{key}: no user turn (the last user turn is the prompt)")
    system = [m for m in conversation if m["role"] == "system"][:1]
    return [{"role": m["role"], "content": m["content"]} for m in (*system, users[-1])]


def _as_prompt_row(row: object) -> object:
    """A ``records.Prompt`` row (an ``id`` and ``messages``) as it is; a TRL prompt row (``{"messages": [...]}``,
    ``{"prompt": "..."}``, ``{"prompt": [...]}``, with any other columns: completion, chosen, ...) as a Prompt whose
    messages are the system turn and the last user turn, and whose id, when the row has none, is a hash of them."""
    if not isinstance(row, dict) or ("id" in row and "messages" in row and "prompt" not in row):
        return row
    if "prompt" in row:
        messages = _turns(row["prompt"], "prompt")
    elif "messages" in row:
        messages = _turns(row["messages"], "messages")
    else:
        raise _BadRow("expected a \"messages\" or a \"prompt\" field (a records.Prompt or a TRL prompt row)")
    kept = {k: row[k] for k in PROMPT_FIELDS if k in row}
    return {"source": "file", **kept, "id": kept.get("id") or stable_id(json.dumps(messages, sort_keys=True)),
            "messages": messages}


def read_prompt_file(path: str | Path) -> list[Prompt]:
    """A user's JSONL of prompts (``records.Prompt`` rows or TRL prompt rows, see ``_as_prompt_row``); a file that
    is not UTF-8 or a row that is not a prompt is one line naming the file and the line, never a traceback. A row
    repeating an earlier one's derived id (the same prompt twice) is dropped; a repeated id the file gives is an
    error, since samples and labels are keyed by it."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"prompts file {path}: cannot read it ({exc.strerror or exc})") from None
    text = decode_utf8(raw, f"prompts file {path}")
    rows: list[Prompt] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt = Prompt.model_validate(_as_prompt_row(row))
        except json.JSONDecodeError as err:
            raise UserError(f"prompts file {path}: line {n}: not JSON ({err.msg})") from None
        except _BadRow as err:
            raise UserError(f"prompts file {path}: line {n}: {err}") from None
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "(row)"
            raise UserError(f"prompts file {path}: line {n}: {loc}: {first['msg']}") from None
        if prompt.id in seen:
            if isinstance(row, dict) and "id" in row:
                raise UserError(f"prompts file {path}: line {n}: id {prompt.id!r} repeats line {seen[prompt.id]}")
            continue
        seen[prompt.id] = n
        rows.append(prompt)
    if not rows:
        raise UserError(f"prompts file {path}: no prompts")
    return rows


def file_source(cfg: Any, seed: int) -> list[Prompt]:
    if not cfg.path or not Path(cfg.path).expanduser().is_file():
        raise UserError(f"recipe prompts.path: file not found: {cfg.path}")
    pool = read_prompt_file(Path(cfg.path).expanduser())
    return random.Random(seed).sample(pool, min(cfg.count, len(pool)))
