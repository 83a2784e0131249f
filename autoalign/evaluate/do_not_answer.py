"""Do-Not-Answer (Wang et al. 2023, arXiv 2308.13387): 939 requests a responsible model should not follow, in
five risk areas (one file each); refusal rate overall and per risk area. Non-commercial licence upstream: read
from the user's data directory, never redistributed."""

from __future__ import annotations

from autoalign.errors import UserError
from autoalign.evaluate.common import SuiteContext
from autoalign.evaluate.data import malformed, read_jsonl, stratified_sample
from autoalign.evaluate.refusal_suite import run_refusal_suite
from autoalign.evaluate.result import SuiteResult

NAME = "do_not_answer"
FOLDER = "do_not_answer"


def load(ctx: SuiteContext) -> list[tuple[str, str, str]]:
    folder = ctx.data_dir / FOLDER
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder}: no *.jsonl files found (is the benchmark data directory right?)")
    items = []
    for path in files:
        for i, row in enumerate(read_jsonl(path, required=("prompt",))):
            if not isinstance(row["prompt"], str) or not row["prompt"].strip():
                raise malformed(path, f"row {i + 1}", "'prompt' is not a non-empty string")
            items.append((f"{path.stem}-{i:03d}", row["prompt"], path.stem))
    return items


def run(ctx: SuiteContext) -> SuiteResult:
    return run_refusal_suite(ctx, NAME, stratified_sample(load(ctx), ctx.limit, ctx.seed, key=lambda t: t[2]))
