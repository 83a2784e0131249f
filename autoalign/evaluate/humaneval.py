"""HumanEval (Chen et al. 2021, arXiv 2107.03374): write the function, pass its unit tests.

The model is asked, as a chat turn, to complete the function in a fenced block. The program run is the task's
prompt (imports, signature, docstring), then the model's code (a full ``def`` redefines the stub; a bare body is
appended to the stub), then the task's ``check`` tests. Programs run only in ``autoalign.sandbox`` (separate
process, time and memory limits) and are graded by its test harness (``tests_program`` / ``run_tests``, the one
grading function shared with the execution signal and the lab oracle): a completion passes only when the harness
reports that ``check(entry_point)`` ran and passed, so an early ``sys.exit(0)`` or a swallowed exception fails.
pass@1 is estimated with the unbiased estimator (Chen et al., eq. 1) over ``samples`` completions per task
(default 1, greedy).
"""

from __future__ import annotations

import re

from autoalign.errors import UserError
from autoalign.evaluate.common import SuiteContext, chat, keep_transcripts, mean_metric, rate, suite_config
from autoalign.evaluate.data import read_jsonl, stratified_sample
from autoalign.evaluate.result import SuiteResult, Transcript
from autoalign.evaluate.stats import pass_at_k
from autoalign.models.base import Sampling

NAME = "humaneval"
FILE = "humaneval/HumanEval.jsonl.gz"
SCORER = "sandbox"
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def load(ctx: SuiteContext) -> list[dict]:
    return read_jsonl(ctx.data_dir / FILE, required=("task_id", "prompt", "entry_point", "test"))


def ask(task: dict) -> list[dict[str, str]]:
    return chat(
        "Complete the following Python function. Reply with the whole function in a ```python code block.\n\n"
        f"```python\n{task['prompt']}```"
    )


def _solution(task: dict, response: str) -> str:
    """The code under test: prompt, then the model's code (a fenced block when there is one)."""
    entry = task["entry_point"]
    fenced = _FENCE.search(response)
    code = fenced.group(1) if fenced else response
    if f"def {entry}" in code:
        if not fenced:  # prose may precede an unfenced function: start at its def
            code = code[code.index(f"def {entry}"):]
        body = f"{task['prompt']}\n    pass\n\n{code}"
    else:
        body = task["prompt"] + code  # a bare body continues the stub
    return body


def program(task: dict, response: str) -> str:
    """The test program the sandbox grades: the solution, then the task's ``check`` tests and ``check(entry)``."""
    from autoalign.sandbox import tests_program  # lazily: the other suites must not need it

    return tests_program(_solution(task, response), [task["test"], f"check({task['entry_point']})"])


def run(ctx: SuiteContext) -> SuiteResult:
    tasks = stratified_sample(load(ctx), ctx.limit, ctx.seed)
    try:
        from autoalign.sandbox import run_many  # lazily: the other suites must not need it
    except ImportError as exc:
        raise UserError(f"suite humaneval needs the execution sandbox (autoalign.sandbox): {exc}") from exc
    samples = int(ctx.options.get("humaneval_samples", 1))
    sampling = (ctx.greedy(384) if samples == 1 else
                Sampling(n=samples, temperature=0.8, top_p=0.95, max_new_tokens=ctx.tokens(384), seed=ctx.seed))
    outs = ctx.lm.generate([ask(t) for t in tasks], sampling) if tasks else []
    programs = [program(t, c.text) for t, comps in zip(tasks, outs) for c in comps]
    results = run_many(programs, timeout_s=float(ctx.options.get("sandbox_timeout_s", 10.0))) if programs else []
    passed = [[r.ok for r in results[i * samples : (i + 1) * samples]] for i in range(len(tasks))]
    if samples == 1:
        metric = rate(sum(p[0] for p in passed), len(passed), "helpful", SCORER, True, "unit tests pass (greedy)")
    else:
        metric = mean_metric([pass_at_k(samples, sum(p), 1) for p in passed], "helpful", SCORER, True,
                             f"unbiased pass@1 from {samples} samples")
    transcripts = [
        Transcript(suite=NAME, item_id=t["task_id"], prompt=t["prompt"], response=comps[0].text,
                   verdict="pass" if p[0] else "fail",
                   detail={"stderr": (results[i * samples].stderr[-400:] if results else ""),  # verdict reason
                           "timed_out": bool(results and results[i * samples].timed_out)})
        for i, (t, comps, p) in enumerate(zip(tasks, outs, passed))
    ]
    return SuiteResult(suite=NAME, model=ctx.lm.uri, metrics={"pass@1": metric},
                       transcripts=keep_transcripts(ctx, transcripts),
                       config=suite_config(ctx, headline=["pass@1"], samples=samples, scorer=SCORER))
