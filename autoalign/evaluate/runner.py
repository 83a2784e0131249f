"""Run evaluation suites on any LM: ``run_suites(lm, ["3h"], limit=50, data_dir=None)``.

Names: each public suite by its own name, the groups ``helpful`` / ``harmless`` / ``honest``, and ``3h`` (every
public suite that can run with what was given, plus the lab suite when ``autoalign.evaluate.lab_suite`` exists).
``winrate`` needs a judge and a reference, so groups include it only when both are given. With ``cache_dir`` every
model call (policy, judge, reference) goes through ``store.CachedLM``: a rerun with the same seed and limit makes no
model call at all.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from pathlib import Path
from typing import Any, Callable

from autoalign.errors import UserError
from autoalign.evaluate.common import SuiteContext
from autoalign.evaluate.data import resolve_data_dir
from autoalign.evaluate.result import SuiteResult

# name -> module under autoalign.evaluate (each has ``run(ctx) -> SuiteResult``), in report order.
PUBLIC: dict[str, str] = {
    "gsm8k": "gsm8k",
    "humaneval": "humaneval",
    "winrate": "winrate",
    "xstest": "xstest",
    "harmbench": "harmbench",
    "do_not_answer": "do_not_answer",
    "realtoxicity": "realtoxicity",
    "bbq": "bbq",
    "hh_rlhf": "hh_rlhf",
    "robustness": "robustness",
    "truthfulqa": "truthfulqa",
}
AXES: dict[str, tuple[str, ...]] = {
    "helpful": ("gsm8k", "humaneval", "winrate"),
    "harmless": ("xstest", "harmbench", "do_not_answer", "realtoxicity", "bbq", "hh_rlhf", "robustness"),
    "honest": ("truthfulqa",),
}
GROUPS: dict[str, tuple[str, ...]] = {**AXES, "public": tuple(PUBLIC), "3h": ("lab", *PUBLIC)}
SUITES: tuple[str, ...] = (*PUBLIC, "lab")
NAMES: tuple[str, ...] = (*SUITES, *GROUPS)


def lab_available() -> bool:
    try:
        return importlib.util.find_spec("autoalign.evaluate.lab_suite") is not None
    except (ImportError, ValueError):
        return False


def expand(suites: list[str], judge: Any = None, reference: Any = None, options: dict | None = None) -> list[str]:
    """Suite names in order, groups expanded, duplicates dropped; optional members a group cannot run are left
    out (``winrate`` without judge and reference, ``lab`` without the lab), named ones are kept (and then fail
    with a clear error)."""
    options = options or {}
    can_winrate = judge is not None and (reference is not None or bool(options.get("instructions")))
    out: list[str] = []
    for name in suites:
        name = name.strip().lower().replace("-", "_")
        if name in GROUPS:
            members = [m for m in GROUPS[name]
                       if not (m == "winrate" and not can_winrate) and not (m == "lab" and not lab_available())]
        elif name in SUITES:
            members = [name]
        else:
            raise UserError(f"unknown suite {name!r} (known: {', '.join(NAMES)})")
        out.extend(m for m in members if m not in out)
    return out


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (the CLI's ``--option``) to suite options: integers parsed, ``templates`` split on
    commas."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {pair!r}: expected KEY=VALUE")
        key, value = key.strip(), value.strip()
        out[key] = ([v for v in value.split(",") if v] if key == "templates"
                    else int(value) if value.lstrip("-").isdigit() else value)
    return out


def check_data(names: list[str], data_dir: Path | None = None, options: dict[str, Any] | None = None) -> dict[str, int]:
    """Read every data file the named suites need and return ``{suite: items}``, before any model is loaded.

    Why: a missing or malformed file should cost a second and one clear line (``UserError``, exit code 2 in the
    CLI), not minutes of model loading and the suites that ran before it. Parsing twice is cheap next to a model.
    """
    options = dict(options or {})
    needs_data = [n for n in names if n in PUBLIC and n != "winrate"]
    resolved = resolve_data_dir(data_dir) if needs_data else Path(".")
    ctx = SuiteContext(lm=None, data_dir=resolved, options=options)
    counts: dict[str, int] = {}
    for name in names:
        if name == "lab":
            continue
        module = importlib.import_module(f"autoalign.evaluate.{PUBLIC[name]}")
        if name != "winrate" or options.get("instructions"):
            counts[name] = len(module.load(ctx))
    return counts


def _run_lab(lm, ctx: SuiteContext, per_family: int | None) -> SuiteResult:
    if not lab_available():
        raise UserError("suite 'lab' needs autoalign.evaluate.lab_suite, which is not installed")
    from autoalign.evaluate.lab_suite import evaluate_lab

    kwargs: dict[str, Any] = {} if ctx.max_new_tokens is None else {"max_new_tokens": ctx.max_new_tokens}
    return evaluate_lab(lm, per_family=per_family or ctx.limit or 30, seed=ctx.seed, **kwargs)


def _cached(lm, cache):
    from autoalign.store import CachedLM

    return None if lm is None else (lm if isinstance(lm, CachedLM) else CachedLM(lm, cache))


def run_suites(
    lm,
    suites: list[str],
    limit: int | None = None,
    data_dir: Path | None = None,
    seed: int = 0,
    judge=None,
    reference=None,
    cache_dir=None,
    *,
    reward_model=None,
    max_new_tokens: int | None = None,
    max_transcripts: int = 12,
    per_family: int | None = None,
    options: dict[str, Any] | None = None,
    on_suite: Callable[[str, SuiteResult, float], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> list[SuiteResult]:
    """Run the named suites (groups expanded) on ``lm``; one SuiteResult each, in order.

    ``limit``: items per suite (stratified, seeded; ``lab``: prompts per family unless ``per_family``).
    ``options``: per-suite knobs (``rtp_samples``, ``humaneval_samples``, ``sandbox_timeout_s``, ``templates``,
    ``instructions``, ``hh_scorer``). ``on_start(name)`` is called as each suite starts and ``on_suite(name, result,
    seconds)`` as it finishes (a progress bar's hooks).
    """
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    options = dict(options or {})
    names = expand(suites, judge, reference, options)
    if cache_dir is not None:
        from autoalign.store import CallCache

        cache = CallCache(cache_dir)
        lm, judge, reference = _cached(lm, cache), _cached(judge, cache), _cached(reference, cache)
    needs_data = [n for n in names if n in PUBLIC and n != "winrate"]
    resolved = resolve_data_dir(data_dir) if needs_data else Path(".")
    ctx = SuiteContext(lm=lm, data_dir=resolved, limit=limit, seed=seed, judge=judge, reference=reference,
                       reward_model=reward_model, max_new_tokens=max_new_tokens, max_transcripts=max_transcripts,
                       options=options)
    results: list[SuiteResult] = []
    for name in names:
        if on_start is not None:
            on_start(name)
        start = time.monotonic()
        if name == "lab":
            result = _run_lab(lm, ctx, per_family)
        else:
            module = importlib.import_module(f"autoalign.evaluate.{PUBLIC[name]}")
            result = module.run(ctx)
        seconds = time.monotonic() - start
        result.config.setdefault("seconds", round(seconds, 2))
        results.append(result)
        if on_suite is not None:
            on_suite(name, result, seconds)
    return results
