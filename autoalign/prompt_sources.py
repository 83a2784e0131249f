"""Where a round's prompts come from (``prompts.source``): the lab's task families, or a JSONL file of
``records.Prompt`` rows. Each source is a function ``(cfg, seed) -> list[Prompt]`` named in ``methods.PROMPT_SOURCES``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autoalign.errors import UserError
from autoalign.records import Prompt


def lab_source(cfg: Any, seed: int) -> list[Prompt]:
    from autoalign.lab.prompts import lab_prompts

    return lab_prompts(cfg.count, seed=seed, families=cfg.families, split="train")


def read_prompt_file(path: str | Path) -> list[Prompt]:
    """A user's JSONL of ``records.Prompt`` rows; a file that is not UTF-8 or a row that is not a prompt is one
    line naming the file (and the line), never a traceback."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"prompts file {path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(Prompt.model_validate_json(line))
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
