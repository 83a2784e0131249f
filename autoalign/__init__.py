"""autoalign: align language models to the 3H standard with signals no person labels.

The Python API (docs/api.md), loaded on first use so that ``import autoalign`` stays fast:

- ``autoalign.run(recipe, *overrides, **settings) -> dict``: run a recipe, return its metrics;
- ``autoalign.load_lm(uri, **options)``: a model by URI;
- ``autoalign.evaluate(model, suites=["lab"], limit=None, ...) -> list[SuiteResult]``: evaluate a model;
- ``autoalign.load_recipe(recipe, *overrides, **settings) -> Recipe``: a validated recipe, without running it.

``autoalign.evaluate`` is also the evaluation package (``autoalign.evaluate.runner``, ...): calling it calls
``autoalign.api.evaluate``, the same function under a name type checkers know.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__version__ = "0.1.0"
__all__ = ["run", "load_lm", "evaluate", "load_recipe", "__version__"]

_LAZY = {"run": "autoalign.api", "load_lm": "autoalign.api", "load_recipe": "autoalign.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autoalign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _EvaluatePackage(types.ModuleType):
    """``autoalign.evaluate``: the evaluation package, and callable as ``autoalign.api.evaluate``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from autoalign.api import evaluate as evaluate_model

        return evaluate_model(*args, **kwargs)


from autoalign import evaluate  # noqa: E402  (the package's __init__ is a docstring: nothing heavy loads)

evaluate.__class__ = _EvaluatePackage
