"""Math-Shepherd-style process supervision by hand: step splitting, Monte-Carlo step labels (hard and soft),
weakest-step reranking, PRM training pairs; the multi-step lab tasks and their step-by-step oracle; the signal on
lab:tiny (rollouts, a PRM trained with TRL, reranked SFT targets) and the PRM as a GRPO reward."""

import random

import pytest

from autoalign.signals.model_feedback.process_reward import (
    ProcessReward,
    ProcessRewardScorer,
    mc_step_labels,
    prefixes,
    rerank,
    split_steps,
    step_pairs,
    weakest_step,
)

CHAIN = "23 + 5 = 28. 28 - 8 = 20. 20 + 4 = 24. The answer is 24."


def test_steps_and_prefixes():
    assert split_steps(CHAIN) == ["23 + 5 = 28.", "28 - 8 = 20.", "20 + 4 = 24."]
    assert split_steps("Sorted: [1, 2, 3]. First 2: [1, 2]. The answer is [1, 2].") == ["Sorted: [1, 2, 3].",
                                                                                         "First 2: [1, 2]."]
    assert split_steps("The answer is 4.") == [] and split_steps("I can't help with that.") == []
    assert prefixes(["a.", "b.", "c."]) == ["a.", "a. b.", "a. b. c."]


def test_monte_carlo_step_labels_by_hand():
    # step 1: 2 of 4 completions reach the answer; step 2: none; step 3: all 4
    reached = [[True, False, True, False], [False] * 4, [True] * 4]
    assert mc_step_labels(reached) == [1.0, 0.0, 1.0]  # hard: any completion reached it
    assert mc_step_labels(reached, soft=True) == [0.5, 0.0, 1.0]  # soft: the fraction that did
    assert mc_step_labels([]) == []


def test_weakest_step_reranking_by_hand():
    # solution 0: steps 0.9, 0.2 (weakest 0.2); solution 1: 0.6, 0.5 (0.5); solution 2: 0.95, 0.1, 0.99 (0.1)
    scores = [[0.9, 0.2], [0.6, 0.5], [0.95, 0.1, 0.99]]
    assert [weakest_step(s) for s in scores] == [0.2, 0.5, 0.1]
    assert rerank(scores) == 1  # not solution 2, whose mean (0.68) and last step are the highest
    assert rerank([[0.3], [0.3]]) == 0  # a tie keeps the first
    with pytest.raises(ValueError):
        weakest_step([])


def test_step_pairs_prefer_the_same_depth():
    items = [(0, "a1", 1.0), (1, "a2", 0.0), (0, "b1", 0.0), (1, "b2", 1.0)]
    assert step_pairs(items, cap=2) == [("a1", "b1"), ("b2", "a2")]  # depth 0 with depth 0, depth 1 with depth 1
    assert len(step_pairs(items, cap=10)) == 4 and step_pairs([(0, "x", 1.0)], cap=3) == []


def test_multistep_tasks_have_ground_truth_steps_and_stay_out_of_the_lab():
    from autoalign.lab.oracle.multistep import grade_multistep, multistep_eval_items
    from autoalign.lab.world import FAMILIES
    from autoalign.lab.world.common import split_of
    from autoalign.lab.world.multistep import MULTISTEP_FAMILIES, multistep_tasks

    assert not set(MULTISTEP_FAMILIES) & set(FAMILIES)  # opt-in: not a lab family, not in the corpus or the suite
    for family in MULTISTEP_FAMILIES:
        train = multistep_tasks(family, 6, 0, "train")
        assert {split_of(t.key) for t in train} == {"train"} and len({t.question for t in train}) == 6
        for t in train:
            g = grade_multistep(t, t.good)
            assert g.correct and all(g.steps_correct) and g.first_error is None
            assert len(split_steps(t.good)) == len(t.truth["steps"]) >= 2
            bad = grade_multistep(t, t.bad(random.Random(0)))
            assert not bad.correct and bad.first_error is not None
    evals = multistep_eval_items(3)
    assert len(evals) == 6 and {split_of(t.key) for t in evals} == {"eval"}


def test_the_oracle_grades_each_step_by_hand():
    from autoalign.lab.oracle.multistep import grade_multistep
    from autoalign.lab.world.multistep import multistep_tasks

    t = next(t for t in multistep_tasks("chain", 20, 0, "train") if len(t.truth["steps"]) == 3)
    v = t.truth["steps"]
    first = t.good.split(". ")[0]  # "a op b = v0"
    wrong_second = f"{first}. x = {int(v[1]) + 1}. y = {v[2]}. The answer is {v[2]}."
    g = grade_multistep(t, wrong_second)
    assert g.steps_correct == (True, False, True) and g.first_error == 1 and g.correct
    short = grade_multistep(t, f"{first}. The answer is {v[0]}.")
    assert short.steps_correct == (True,) and short.first_error == 1 and not short.correct


def test_the_multistep_prompt_source_gives_env_tools_not_answers():
    from autoalign.lab.world.multistep import multistep_source
    from autoalign.recipe import PromptsConfig
    from autoalign.signals.environment.execution import ExecutionCheck

    prompts = multistep_source(PromptsConfig(source="lab_multistep", count=6), seed=3)
    assert [p.family for p in prompts] == ["arithmetic", "chain", "pipeline"] * 2 and len({p.id for p in prompts}) == 6
    assert all(p.env["kind"] in ("calc", "python_expr") and "answer" not in p.env for p in prompts)
    assert all(s.ok for s in ExecutionCheck()(prompts, ["The answer is 0."] * 6))  # the env runs


def test_the_signal_labels_trains_a_prm_and_reranks_on_lab_tiny(tiny_lm, tmp_path):
    from autoalign.lab.world.multistep import multistep_tasks
    from autoalign.records import Prompt, Sample
    from autoalign.signals.base import StageContext
    from autoalign.train.grpo import RewardSpec, reward_functions

    tasks = multistep_tasks("chain", 3, 0, "train")
    prompts = [Prompt(id=f"c{i}", messages=[{"role": "user", "content": t.question}], env=t.env, axis="helpful")
               for i, t in enumerate(tasks)]
    # two samples per prompt: the right solution and one slipped step (what a policy might write)
    samples = [Sample(prompt_id=p.id, index=j, text=text, model="x")
               for p, t in zip(prompts, tasks) for j, text in enumerate([t.good, t.bad(random.Random(1))])]
    signal = ProcessReward(rollouts=2, max_steps=3, min_pairs=2, rm_epochs=1, rm_batch_size=4, max_new_tokens=16)
    ctx = StageContext(dir=tmp_path, round=1, seed=0)
    out = signal(prompts, samples, tiny_lm, ctx)
    s = out.stats
    assert s["steps_labelled"] > 0 and s["rollouts"] == 2 * s["steps_labelled"] and s["steps_good"] > 0 and s["prm_pairs"] >= 2
    assert len(out.labels) == 6 and len(out.sft) == 3 and sum(lb.selected for lb in out.labels) == 3
    assert all(lb.kind == "reward" and len(lb.detail["steps"]) >= 2 for lb in out.labels)
    # an answer without steps is never reranked (the PRM has seen only prefixes of steps)
    bare = [Sample(prompt_id="c0", index=9, text="You can work that out yourself.", model="x")]
    again = ProcessReward(rollouts=2, max_steps=3, min_pairs=2, rm_epochs=1, rm_batch_size=4, max_new_tokens=16)
    out2 = again(prompts, samples + bare, tiny_lm, StageContext(dir=tmp_path / "again", round=1, seed=0))
    (lb,) = [x for x in out2.labels if x.sample_index == 9]
    assert (lb.verdict, lb.selected, lb.kind) == ("no_steps", False, "none") and len(out2.sft) == 3
    too_few = ProcessReward(rollouts=2, min_pairs=100, max_new_tokens=16)(prompts, samples, tiny_lm, ctx)
    assert too_few.sft == [] and too_few.stats["warning"].startswith("only")
    art = out.artifacts["process_reward_model"]
    assert art.kind == "process_reward_model" and (tmp_path / art.path / "config.json").is_file()
    spec = RewardSpec(scorer="process_reward", path=str(tmp_path / art.path))
    scorer = ProcessRewardScorer(spec.path)
    (fn,) = reward_functions([spec], [scorer])
    got = fn([p.messages for p in prompts], [[{"role": "assistant", "content": t.good}] for t in tasks],
             prompt_id=[p.id for p in prompts], axis=["helpful"] * 3, family=["chain"] * 3, env=[None] * 3)
    direct = scorer(prompts, [t.good for t in tasks])
    assert got == pytest.approx([sc.value for sc in direct])
    assert all(sc.value == pytest.approx(min(sc.detail["steps"]), abs=1e-4) for sc in direct)
