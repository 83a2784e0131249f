"""Reading a user's files safely: text as UTF-8 (``decode_utf8``) or one line naming the bad byte; YAML with a
bounded size and its aliases copied out under a bound on what they expand to (a "billion laughs" document is refused
in milliseconds), every failure one ``UserError`` line. Shared by the recipe edge, a constitution and prompt files."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import yaml

from autoalign.errors import UserError

MAX_RECIPE_BYTES = 4 * 2**20
MAX_RECIPE_NODES = 100_000
MAX_RECIPE_DEPTH = 64


def decode_utf8(raw: bytes, what: str) -> str:
    """``raw`` as UTF-8 text, or one UserError line naming the first bad byte and its offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def _safe_load(text: str, what: str) -> Any:
    """``yaml.safe_load``; YAMLError propagates, a document nested too deeply for PyYAML's recursive composer is one
    UserError line. safe_load keeps aliases as shared references, so this is linear in the text; ``_plain``
    bounds what the result expands to."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise UserError(f"{what}: the YAML nests too deeply (a recipe may nest {MAX_RECIPE_DEPTH} levels)") from None


def _yaml_error_line(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: where and what (PyYAML's own str() spans several lines)."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"unacceptable character #x{char:04x} at offset {exc.position}"
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context and problem.startswith("but "):
        problem = f"{context}, {problem}"
    return " ".join(f"malformed YAML{where}: {problem}".split())


def _plain_key(key: Any, what: str, path: list[str]) -> str:
    """A mapping key as text, the way ``json.dumps`` writes one (``1`` -> ``"1"``, ``true`` -> ``"true"``)."""

    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    if isinstance(key, (datetime.date, datetime.datetime)):
        return key.isoformat()
    where = f" {'.'.join(path)}:" if path else ""
    raise UserError(f"{what}:{where} a mapping key must be text, got {type(key).__name__}")


def _plain(data: Any, what: str) -> Any:
    """A deep copy of YAML-loaded ``data`` as JSON values (dicts with text keys, lists, str, int, float, bool,
    None), with YAML dates as ISO text. Shared references (YAML aliases) are copied out, so the copy is bounded:
    more than MAX_RECIPE_NODES values, deeper than MAX_RECIPE_DEPTH (a recursive alias) or a value JSON cannot hold
    (``!!binary``, ``!!set``) is one UserError line naming ``what`` and, where it helps, the dotted field."""

    budget = [MAX_RECIPE_NODES]

    def copy(value: Any, path: list[str]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise UserError(f"{what}: the YAML expands to more than {MAX_RECIPE_NODES} nodes (nested aliases?)")
        if len(path) > MAX_RECIPE_DEPTH:
            raise UserError(f"{what}: {'.'.join(path[:4])}...: nested more than {MAX_RECIPE_DEPTH} levels deep "
                            f"(a recursive alias?)")
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = _plain_key(k, what, path)
                out[key] = copy(v, [*path, key])
            return out
        if isinstance(value, (list, tuple)):
            return [copy(v, [*path, str(i)]) for i, v in enumerate(value)]
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        where = f" {'.'.join(path)}:" if path else ""
        raise UserError(f"{what}:{where} a {type(value).__name__} value is not allowed in a recipe "
                        f"(quote it to make it text)")

    return copy(data, [])


def read_yaml_file(p: Path, what: str) -> Any:
    """The YAML document in the user's file ``p`` as plain JSON values, refused with one UserError line starting
    with ``what`` (``recipe r.yaml``) when it is missing, unreadable, larger than MAX_RECIPE_BYTES, not UTF-8,
    malformed, or expands (aliases copied out) beyond MAX_RECIPE_NODES / MAX_RECIPE_DEPTH."""
    try:
        if not p.is_file():
            raise UserError(f"{what}: file not found")
        size = p.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise UserError(f"{what}: {size} bytes is larger than a recipe may be ({MAX_RECIPE_BYTES} bytes)")
        with p.open("rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{what}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise UserError(f"{what}: larger than a recipe may be ({MAX_RECIPE_BYTES} bytes)")
    try:
        data = _safe_load(decode_utf8(raw, what), what)
    except yaml.YAMLError as exc:
        raise UserError(f"{what}: {_yaml_error_line(exc)}") from None
    return _plain(data, what)


