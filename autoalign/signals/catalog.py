"""Method name -> signal class, in one visible table (no hidden global registry). Constructed with the recipe's
``params`` as plain keyword arguments."""

from __future__ import annotations

import importlib
import inspect

from autoalign.errors import UserError

# method -> (module, class). Imported lazily so a signal's dependencies load only when it is used.
SIGNALS: dict[str, tuple[str, str]] = {
    "self_consistency": ("autoalign.signals.inductive.self_consistency", "SelfConsistency"),
    "execution": ("autoalign.signals.environment.execution", "Execution"),
}


def build_signal(method: str, params: dict, where: str = "signals"):
    if method not in SIGNALS:
        raise UserError(f"recipe {where}.method: unknown signal {method!r} (known: {', '.join(sorted(SIGNALS))})")
    module, name = SIGNALS[method]
    cls = getattr(importlib.import_module(module), name)
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise UserError(f"recipe {where}.params: {exc}") from None
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"recipe {where}.params: {exc}") from None
