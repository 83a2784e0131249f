"""Every method the loop can run, by kind, in one visible table (no hidden registry, nothing registers itself).

A new method is one new module, one line here (or in the signal catalog / phase table this file points to), one
recipe and its tests; the loop (``autoalign.loop``) names no method. Entries are import paths so a method's
dependencies load only when a recipe uses it.

| kind            | recipe section      | table                                   | shape                                       |
|-----------------|---------------------|-----------------------------------------|---------------------------------------------|
| prompt source   | ``prompts.source``  | ``PROMPT_SOURCES`` (here)               | ``(cfg, seed) -> list[Prompt]``             |
| prompt writer   | ``prompts.writers`` | ``PROMPT_WRITERS`` (here)               | ``(prompts, lm, seed) -> (prompts, stats)`` |
| signal          | ``signals``         | ``autoalign.signals.catalog.SIGNALS``   | ``(prompts, samples, policy, ctx) -> SignalResult`` |
| training phase  | ``train.phases``    | ``autoalign.train.phases.PHASES``       | a TRL trainer builder per ``kind``          |
| policy wrapper  | ``eval.wrappers``   | ``POLICY_WRAPPERS`` (here)              | ``wrap(k, policy_lm, env) -> LM``           |
"""

from __future__ import annotations

import importlib
from typing import Any

PROMPT_SOURCES: dict[str, str] = {
    "lab": "autoalign.prompt_sources:lab_source",
    "file": "autoalign.prompt_sources:file_source",
    # opt-in multi-step lab tasks (chained arithmetic, list pipelines), not in the lab corpus or the lab suite
    "lab_multistep": "autoalign.lab.world.multistep:multistep_source",
}

# method -> (config class, implementation); the config class is part of the recipe schema (recipe.py).
PROMPT_WRITERS: dict[str, tuple[str, str]] = {
    "self_instruct": ("autoalign.signals.imitation.self_instruct:SelfInstructConfig",
                      "autoalign.signals.imitation.self_instruct:SelfInstructWriter"),
    "evol_instruct": ("autoalign.signals.imitation.evol_instruct:EvolInstructConfig",
                      "autoalign.signals.imitation.evol_instruct:EvolInstructWriter"),
}

# online-RL rewards (``train.phases: [{kind: grpo, rewards: [{scorer: ...}]}]``): scorer name -> its Scorer class,
# built with no argument or with the reward's ``path`` (autoalign.train.grpo.build_scorer).
REWARD_SCORERS: dict[str, str] = {
    "execution": "autoalign.signals.environment.execution:ExecutionCheck",  # the sandbox checks env-carrying prompts
    "reward_model": "autoalign.signals.model_feedback.reward_model:RewardModel",  # a Bradley-Terry model directory
    # a multi-head 3H reward model directory (the reward's ``path``): the head of each prompt's axis
    "multihead_reward_model": "autoalign.signals.model_feedback.multihead_rm:MultiHeadRewardModel",
    "toxicity": "autoalign.evaluate.toxicity:ToxicityGrader",  # the lexicon grader (value 1 = non-toxic)
    # a judge model (the reward's ``model``, e.g. lab:teacher) as the pointwise logprob judge: P(Yes) under the
    # constitution's principle of the prompt's axis
    "judge": "autoalign.signals.model_feedback.judges:PointwiseJudge",
    # a process reward model (the reward's ``path``): each completion's weakest step (Math-Shepherd, eq. 4)
    "process_reward": "autoalign.signals.model_feedback.process_reward:ProcessRewardScorer",
}
# how a reward's ``model`` URI becomes an LM (the run's registry; resolved when a phase runs)
MODEL_LOADER = "autoalign.models.registry:load_lm"

# PPO-ptx's pretraining-like text (``kind: ppo_ptx``, ``ptx.source``): name -> ``(count, seed, path) -> list[str]``
PTX_SOURCES: dict[str, str] = {
    "lab": "autoalign.lab.pretraining_text:lab_texts",  # documents and transcripts of the lab corpus generator
    "file": "autoalign.train.ppo_ptx:file_texts",  # a user's JSONL of {"text": ...} rows
}

# Weak-to-strong's labelled split (``weak_to_strong`` signal, ``labelled: NAME``): name -> ``(tasks, per_task,
# seed, constitution, principles) -> rows``. The one route by which ground-truth labels reach a signal, and only
# the weak supervisor's fine-tuning (Burns et al. 2023 train the weak model on a labelled split); the student's
# rows never carry them. ``lab`` draws train-split lab tasks and labels them on the evaluation side (which may
# read the oracle).
LABELLED_SPLITS: dict[str, str] = {
    "lab": "autoalign.evaluate.weak_to_strong:lab_labelled_split",
}

POLICY_WRAPPERS: dict[str, tuple[str, str]] = {
    "best_of_n": ("autoalign.decoding.best_of_n:BestOfNConfig", "autoalign.decoding.best_of_n:BestOfN"),
    "aligner": ("autoalign.decoding.aligner:AlignerConfig", "autoalign.decoding.aligner:Aligner"),
    "system_prompt": ("autoalign.decoding.system_prompt:SystemPromptConfig",
                      "autoalign.decoding.system_prompt:SystemPrompt"),
    "self_refine": ("autoalign.decoding.self_refine:SelfRefineConfig", "autoalign.decoding.self_refine:SelfRefine"),
    "linear_alignment": ("autoalign.decoding.linear_alignment:LinearAlignmentConfig",
                         "autoalign.decoding.linear_alignment:LinearAlignment"),
    "aligners_inspectors": ("autoalign.decoding.aligners_inspectors:AlignersInspectorsConfig",
                            "autoalign.decoding.aligners_inspectors:AlignersInspectors"),
}


def resolve(path: str) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported now)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def config_classes(table: dict[str, tuple[str, str]]) -> list[type]:
    return [resolve(cfg) for cfg, _ in table.values()]


def build(table: dict[str, tuple[str, str]], cfg: Any, *args: Any, **kwargs: Any) -> Any:
    """The implementation of a validated config (its ``method`` field picks the row)."""
    return resolve(table[cfg.method][1])(cfg, *args, **kwargs)
