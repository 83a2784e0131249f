"""The Python API: run a recipe, load a model, evaluate a model (``docs/api.md``).

Thin wrappers over what the command line uses (``autoalign.loop.Run``, ``autoalign.models.registry.load_lm``,
``autoalign.evaluate.runner.run_suites``), so a script and ``autoalign run`` / ``autoalign eval`` do the same thing:
the same checks before anything loads (a mistake raises ``autoalign.errors.UserError`` with one line), the same run
names, the same run directory. ``import autoalign`` exposes them lazily (``autoalign.run``, ``autoalign.load_lm``,
``autoalign.evaluate``), so importing the package loads none of this.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from autoalign.evaluate.result import SuiteResult
    from autoalign.recipe import Recipe

__all__ = ["run", "load_lm", "load_recipe", "evaluate"]


def _setting(key: str, value: Any) -> str:
    """A keyword setting as the override a command line would give (``rounds=1``), for the run's name."""
    text = str(value).lower() if isinstance(value, bool) else str(value) if isinstance(value, (str, int, float)) \
        else json.dumps(value, sort_keys=True)
    return f"{key}={text}"


def load_recipe(recipe: str | Path | dict | Recipe, *overrides: str, **settings: Any) -> Recipe:
    """A validated ``Recipe`` from a YAML path, the name of a shipped recipe (``"demo"``), a mapping or a
    ``Recipe``, with dotted ``overrides`` (``"sampling.n=4"``) and top-level ``settings`` (``rounds=1``) applied
    and, as on the command line, the name of a variant (``demo-rounds=1``) unless ``name=`` is given."""
    from autoalign.recipe import Recipe, variant_name
    from autoalign.recipe import load_recipe as load

    path: Path | None = None
    if isinstance(recipe, Recipe):
        data = recipe.model_dump()
        data["train"]["report_to"] = list(recipe.train.report_to)  # not dumped (it changes no result), kept here
    elif isinstance(recipe, dict):
        data = dict(recipe)
    else:
        from autoalign.cli import resolve_recipe
        from autoalign.yaml_input import read_yaml_file

        path = resolve_recipe(str(recipe))
        data = read_yaml_file(path, f"recipe {path}")
        if not isinstance(data, dict):
            return load(path)  # the one-line error for a document that is not a mapping
    data = {**data, **settings}
    if isinstance(recipe, Recipe) and not overrides and not settings:
        r = recipe
    else:
        r = load(path, list(overrides), data=data)
    changes = [*overrides, *(_setting(k, v) for k, v in settings.items())]
    return r.model_copy(update={"name": variant_name(r.name, changes)})


def run(recipe: str | Path | dict | Recipe, *overrides: str, wait: bool = False, quiet: bool = False,
        console: Console | None = None, load_lm: Callable[..., Any] | None = None, **settings: Any) -> dict:
    """Run a recipe (resuming what an earlier run of it finished) and return its metrics.

    ``recipe``: a YAML path, a shipped recipe's name (``"demo"``), a mapping or a ``Recipe``; ``overrides``:
    dotted ``key.sub=value`` strings as on the command line; ``settings``: top-level keys as Python values
    (``rounds=1``, ``run_dir="/scratch/runs"``). ``wait``: block while another run holds the run directory;
    ``quiet``: print nothing (else progress goes to stderr, or to ``console``); ``load_lm``: a model loader
    ``(uri, **options) -> LM`` in place of the registry's.

    Returns the run's ``metrics.json`` as a dict (``run``, ``recipe``, ``rounds`` with every suite's results per
    round, ``final``: the round and model the run ends with, ``result``: the final policy against the base), plus
    ``run_dir``: the run's directory (where ``report.html`` is)."""
    from rich.console import Console

    from autoalign.loop import Run

    r = load_recipe(recipe, *overrides, **settings)
    if console is None:
        console = Console(stderr=True, quiet=quiet)
    job = Run(r, console=console, load_lm=load_lm)
    job.execute(wait=wait)
    metrics = json.loads((job.dir / "metrics.json").read_text())
    return {**metrics, "run_dir": str(job.dir)}


def load_lm(uri: str, **options: Any) -> Any:
    """A model by URI (``lab:tiny``, ``hf:DIR``, ``openai:URL#MODEL``, ``vllm:ID``, ``mock:``): an object with
    ``generate(prompts, sampling)`` and ``logprobs(prompts, continuations)`` (``autoalign.models.base.LM``).
    ``options`` go to the provider (``batch_size``, ``max_concurrency``, ...; see docs/backends.md)."""
    from autoalign.models.registry import load_lm as load

    return load(uri, **options)


def evaluate(model: Any, suites: str | Sequence[str] = ("lab",), limit: int | None = None, *,
             per_family: int | None = None, seed: int = 1234, data_dir: str | Path | None = None,
             judge: Any = None, reference: Any = None, max_new_tokens: int | None = None,
             options: dict[str, Any] | None = None, cache_dir: str | Path | None = None) -> list[SuiteResult]:
    """Evaluate a model (a URI or a loaded LM) on suites and groups (``"lab"``, ``"xstest"``, ``"harmless"``,
    ``"3h"``, ...; see docs/recipes.md, Suites) and return one ``SuiteResult`` per suite, in order.

    ``limit``: items per suite (stratified, seeded; the lab suite: per task family unless ``per_family``);
    ``judge`` / ``reference``: URIs or LMs for the suites that use them (``winrate`` needs both);
    ``options``: per-suite options (as ``autoalign eval --option``); ``cache_dir``: cache every model call, so
    a rerun makes none. Suite names and data files are checked before a model loads."""
    from autoalign.evaluate.runner import check_data, expand, run_suites
    from autoalign.models.registry import check_uri

    names = [suites] if isinstance(suites, str) else list(suites)
    for ref in (model, judge, reference):
        if isinstance(ref, str):
            check_uri(ref)
    expanded = expand(names, judge, reference, options)
    check_data(expanded, Path(data_dir) if data_dir is not None else None, options)
    lm, judge_lm, reference_lm = (load_lm(x) if isinstance(x, str) else x for x in (model, judge, reference))
    return run_suites(lm, expanded, limit=limit, data_dir=Path(data_dir) if data_dir is not None else None,
                      seed=seed, judge=judge_lm, reference=reference_lm,
                      cache_dir=Path(cache_dir) if cache_dir is not None else None, per_family=per_family,
                      max_new_tokens=max_new_tokens, options=options)
