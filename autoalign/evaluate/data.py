"""Finding and reading the public benchmark files, and sampling them down for a quick run.

Every reader turns a missing or malformed file into one ``UserError`` line that names the file and the problem, so
``autoalign eval`` exits 2 with a message a person can act on instead of a traceback from deep inside a suite.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

from autoalign.errors import UserError

T = TypeVar("T")

ENV_VAR = "AUTOALIGN_DATA"


def default_data_dir() -> Path | None:
    """``<repo root>/../shared/data`` when it exists (a development checkout), else None."""
    root = Path(__file__).resolve().parents[2]
    candidate = root.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The argument, else ``$AUTOALIGN_DATA``, else the development checkout's shared data folder."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        source = "data directory"
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
        source = f"${ENV_VAR}"
    else:
        found = default_data_dir()
        if found is None:
            raise UserError(
                f"no benchmark data directory: pass --data-dir or set ${ENV_VAR} (see shared/data/MANIFEST.md)"
            )
        return found
    if not path.is_dir():
        raise UserError(f"{source} {path}: not a directory")
    return path


def _require(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path}: file not found (is the benchmark data directory right?)")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file")
    return path


def _read_text(path: Path) -> str:
    _require(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read().decode("utf-8")
        return path.read_text("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines; an empty file is an error (a suite with no items measures nothing)."""
    lines = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    if not lines:
        raise UserError(f"{path}: empty file")
    return lines


def read_jsonl(path: Path, required: Sequence[str] = ()) -> list[dict]:
    """JSON objects, one a line (``.gz`` read transparently); every row must carry the ``required`` keys."""
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise UserError(f"{path}: line {number} is not a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise UserError(f"{path}: line {number} lacks field(s) {', '.join(missing)}")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: empty file")
    return rows


def read_csv(path: Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    text = _read_text(path)
    if not text.strip():
        raise UserError(f"{path}: empty file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        missing = [k for k in required if k not in header]
        if missing:
            raise UserError(f"{path}: CSV header lacks column(s) {', '.join(missing)}")
        rows = []
        for row in reader:
            if None in row or any(row.get(k) is None for k in required):
                raise UserError(f"{path}: line {reader.line_num} has the wrong number of fields")
            rows.append(row)
    except csv.Error as exc:
        raise UserError(f"{path}: malformed CSV ({exc})") from exc
    if not rows:
        raise UserError(f"{path}: empty file")
    return rows


def malformed(path: Path, where: str, problem: str) -> UserError:
    """The one-line error for a row that parsed but whose content makes no sense."""
    return UserError(f"{path}: {where}: {problem}")


# ---- sampling ---------------------------------------------------------------------------------------------------
def stratified_sample(
    items: Sequence[T], limit: int | None, seed: int, key: Callable[[T], Hashable] | None = None
) -> list[T]:
    """At most ``limit`` items, spread over strata in proportion to their sizes (largest-remainder rounding, every
    stratum represented while ``limit`` allows), each stratum sampled without replacement by a seeded RNG.

    Why stratified: a 50-item run of XSTest or BBQ must still contain safe and unsafe prompts, ambiguous and
    disambiguated contexts, or its headline figures are undefined. The output keeps the dataset's order so the same
    seed and limit always give the same items (and so cached model calls are reused).
    """
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    key = key or (lambda _: 0)
    strata: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        strata[key(item)].append(i)
    names = sorted(strata, key=repr)
    total = len(items)
    if limit >= len(names):
        # Every stratum gets one, the rest is shared in proportion (Hamilton / largest remainder).
        quota = {s: 1 for s in names}
        rest = limit - len(names)
        spare = {s: len(strata[s]) - 1 for s in names}
        spare_total = sum(spare.values())
        exact = {s: rest * spare[s] / spare_total if spare_total else 0.0 for s in names}
    else:
        quota = {s: 0 for s in names}
        rest = limit
        exact = {s: limit * len(strata[s]) / total for s in names}
    floors = {s: int(exact[s]) for s in names}
    for s in names:
        quota[s] += floors[s]
    left = limit - sum(quota.values())
    rng = random.Random(seed)
    tiebreak = {s: rng.random() for s in names}
    for s in sorted(names, key=lambda s: (-(exact[s] - floors[s]), tiebreak[s])):
        if left <= 0:
            break
        if quota[s] < len(strata[s]):
            quota[s] += 1
            left -= 1
    chosen: list[int] = []
    for s in names:
        pool = strata[s]
        chosen.extend(rng.sample(pool, min(quota[s], len(pool))))
    return [items[i] for i in sorted(chosen)]


def batched(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
