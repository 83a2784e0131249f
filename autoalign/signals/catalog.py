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
    "llm_judge": ("autoalign.signals.model_feedback.llm_judge", "LLMJudge"),
    "constitutional_ai": ("autoalign.signals.model_feedback.critique_revise", "ConstitutionalAI"),
    "rlaif": ("autoalign.signals.model_feedback.rlaif", "RLAIF"),
    "raft": ("autoalign.signals.model_feedback.raft", "RAFT"),
    "aligner": ("autoalign.signals.model_feedback.aligner", "AlignerData"),
    "self_rewarding": ("autoalign.signals.inductive.self_rewarding", "SelfRewarding"),
}


def build_signal(method: str, params: dict, where: str = "signals", load_lm=None):
    """Construct a signal. A signal whose constructor takes ``load_lm`` receives the run's model loader, so it can
    use another model (a judge, a teacher) named by URI in its params without importing the providers itself."""
    if method not in SIGNALS:
        raise UserError(f"recipe {where}.method: unknown signal {method!r} (known: {', '.join(sorted(SIGNALS))})")
    module, name = SIGNALS[method]
    cls = getattr(importlib.import_module(module), name)
    if "load_lm" in inspect.signature(cls).parameters and load_lm is not None:
        params = {**params, "load_lm": load_lm}
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise UserError(f"recipe {where}.params: {exc}") from None
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"recipe {where}.params: {exc}") from None
