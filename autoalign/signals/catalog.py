"""Method name -> signal class, in one visible table (no hidden global registry). Constructed with the recipe's
``params`` as plain keyword arguments."""

from __future__ import annotations

import importlib
import inspect
import typing

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from autoalign.errors import UserError

# method -> (module, class). Imported lazily so a signal's dependencies load only when it is used.
SIGNALS: dict[str, tuple[str, str]] = {
    "self_consistency": ("autoalign.signals.inductive.self_consistency", "SelfConsistency"),
    "execution": ("autoalign.signals.environment.execution", "Execution"),
    "star": ("autoalign.signals.environment.star", "STaR"),
    "rest_em": ("autoalign.signals.environment.rest_em", "ReSTEM"),
    "process_reward": ("autoalign.signals.model_feedback.process_reward", "ProcessReward"),
    "llm_judge": ("autoalign.signals.model_feedback.llm_judge", "LLMJudge"),
    "constitutional_ai": ("autoalign.signals.model_feedback.critique_revise", "ConstitutionalAI"),
    "rlaif": ("autoalign.signals.model_feedback.rlaif", "RLAIF"),
    "raft": ("autoalign.signals.model_feedback.raft", "RAFT"),
    "multihead_rm": ("autoalign.signals.model_feedback.multihead_rm", "MultiHeadRM"),
    "aligner": ("autoalign.signals.model_feedback.aligner", "AlignerData"),
    "self_rewarding": ("autoalign.signals.inductive.self_rewarding", "SelfRewarding"),
    "spin": ("autoalign.signals.inductive.spin", "SPIN"),
    "self_refine": ("autoalign.signals.inductive.self_refine", "SelfRefine"),
    "context_distillation": ("autoalign.signals.inductive.context_distillation", "ContextDistillation"),
    "distill_sft": ("autoalign.signals.imitation.distill_sft", "DistilledSFT"),
    "distill_dpo": ("autoalign.signals.imitation.distill_dpo", "DistilledDPO"),
    "weak_to_strong": ("autoalign.signals.imitation.weak_to_strong", "WeakToStrong"),
    "lab_taxonomy": ("autoalign.signals.imitation.lab_taxonomy", "LabTaxonomy"),
    "backtranslation": ("autoalign.signals.imitation.backtranslation", "Backtranslation"),
    "society": ("autoalign.signals.society.society", "Society"),
    "aligners_inspectors": ("autoalign.signals.model_feedback.aligners_inspectors", "AlignersInspectors"),
    "debate": ("autoalign.signals.society.debate", "Debate"),
    "collective_constitution": ("autoalign.signals.society.collective_constitution", "CollectiveConstitution"),
}


def params_model(cls: type[typing.Any]) -> type[BaseModel]:
    """The signal's typed config: a pydantic model of its constructor's annotated keyword arguments (unknown keys
    forbidden), so a recipe's ``params`` are checked field by field before anything runs."""
    hints = typing.get_type_hints(cls.__init__)
    fields: dict = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name == "load_lm" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (hints.get(name, typing.Any), default)
    return create_model(f"{cls.__name__}Params", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                        **fields)


def validate_params(cls: type, params: dict, where: str) -> dict:
    """``params`` checked against ``params_model(cls)``: one line naming the first bad field; the values the user
    wrote are passed on as written (pydantic only checks them)."""
    try:
        params_model(cls).model_validate({k: v for k, v in params.items() if k != "load_lm"})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise UserError(f"recipe {where}.params.{loc}: {first['msg']} (got {first.get('input')!r})") from None
    return params


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
    params = validate_params(cls, params, where)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"recipe {where}.params: {exc}") from None
