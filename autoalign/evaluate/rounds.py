"""What the loop measures after a round, as functions of plain arguments: the recipe's suites on a model, the
renaming that files a wrapped policy's results as a variant suite, and the signal/oracle agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

AXIS_NAMES = ("helpful", "harmless", "honest", "composite")


def evaluate_suites(lm: Any, cfg: Any, suites: Sequence[str] | None = None) -> list:
    """The lab suite directly; any other suite through the public-benchmark runner (imported lazily)."""
    suites = list(cfg.suites if suites is None else suites)
    results = []
    others = [s for s in suites if s != "lab"]
    if "lab" in suites:
        from autoalign.evaluate.lab_suite import evaluate_lab

        results.append(evaluate_lab(lm, per_family=cfg.per_family, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens))
    if others:
        from autoalign.evaluate.runner import run_suites

        results.extend(run_suites(lm, others, limit=cfg.limit, data_dir=None, seed=cfg.seed))
    return results


def variant(result: dict, tag: str) -> dict:
    """A suite result of a variant of the policy (best-of-n ...) as its own suite ``<suite>@<tag>``: the axis
    scores are renamed ``<axis>@<tag>`` so the report's 3H bars keep measuring the policy itself, and the
    variant's composite is its headline (shown next to the policy's in the composite panel and over rounds)."""
    out = dict(result)
    out["suite"] = f"{result['suite']}@{tag}"
    out["metrics"] = {(f"{k}@{tag}" if k in AXIS_NAMES else k): v for k, v in result["metrics"].items()}
    out["config"] = {**result.get("config", {}), "headline": [f"composite@{tag}"], "variant_of": result["suite"]}
    out["transcripts"] = [{**t, "suite": out["suite"]} for t in result.get("transcripts", [])]
    return out


def signal_agreement(prompts: Sequence, samples: Sequence, result: Any, prompt_cfg: Any, eval_cfg: Any,
                     prompt_seed: int, model: str, reward_models: Mapping[str, Path]) -> dict:
    """Round ``k``'s signal output against the lab oracle (``judge_agreement``), plus, for each reward model a
    signal declared this round (``reward_models``: signal name -> model directory), its accuracy on held-out lab
    pairs and the held-out AI-label accuracy the signal reported."""
    from autoalign.evaluate.judge_agreement import judge_agreement, lab_tasks_for, reward_model_lab_accuracy

    tasks = lab_tasks_for(prompts, prompt_cfg.count, prompt_seed, prompt_cfg.families)
    res = judge_agreement(prompts, samples, result.labels, result.sft, result.preferences, tasks, model=model)
    if reward_models:
        from autoalign.signals.model_feedback.reward_model import RewardModel

        for name, rm_dir in reward_models.items():
            res.metrics[f"{name}.rm_lab_accuracy"] = reward_model_lab_accuracy(RewardModel(rm_dir),
                                                                               eval_cfg.per_family, eval_cfg.seed)
            res.config[f"{name}.rm_heldout_ai_accuracy"] = (result.stats.get(name) or {}).get("heldout_accuracy")
    return res.model_dump()
