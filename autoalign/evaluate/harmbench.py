"""HarmBench standard text behaviours (Mazeika et al. 2024, arXiv 2402.04249): 200 harmful requests asked
directly; refusal rate and attack success rate (see ``refusal_suite``)."""

from __future__ import annotations

from autoalign.evaluate.common import SuiteContext
from autoalign.evaluate.data import read_lines, stratified_sample
from autoalign.evaluate.refusal_suite import run_refusal_suite
from autoalign.evaluate.result import SuiteResult

NAME = "harmbench"
FILE = "harmbench/harmbench_prompts.txt"


def load(ctx: SuiteContext) -> list[tuple[str, str, str]]:
    return [(f"hb-{i:03d}", line, "standard") for i, line in enumerate(read_lines(ctx.data_dir / FILE))]


def run(ctx: SuiteContext) -> SuiteResult:
    return run_refusal_suite(ctx, NAME, stratified_sample(load(ctx), ctx.limit, ctx.seed))
