"""The online-RL and verifier recipes (grpo, rloo, ppo_ptx, rest_em, process_reward): each loads, and runs one
round end to end through the CLI on lab:tiny (shrunk by overrides, < 60 s each), writing a report, a trained
policy and, for the RL phases, the reward per step."""

import json
import subprocess
from pathlib import Path

import pytest

from autoalign.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["grpo", "grpo_judge", "rloo", "ppo_ptx", "rest_em", "process_reward"]
TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=8", "sampling.n=2", "sampling.max_new_tokens=24",
        "eval.per_family=1", "eval.max_new_tokens=16"]
SHRINK = {  # each recipe's own knobs, shrunk
    "grpo": ["train.phases.0.max_steps=2", "train.phases.0.max_completion_length=16"],
    "grpo_judge": ["train.phases.0.max_steps=2", "train.phases.0.max_completion_length=16",  # the judge: lab:tiny
                   "train.phases.0.rewards=[{scorer: execution, weight: 1.0}, {scorer: judge, model: 'lab:tiny'}]"],
    "rloo": ["train.phases.0.max_steps=2", "train.phases.0.max_completion_length=16"],
    "ppo_ptx": ["train.phases.0.max_steps=2", "train.phases.0.max_completion_length=16",
                "train.phases.0.ptx.count=8", "train.phases.0.ptx.max_length=48"],
    "rest_em": ["train.epochs=1", "train.batch_size=8", "prompts.families=[arithmetic]", "sampling.n=4"],
    "process_reward": ["train.epochs=1", "train.batch_size=8", "signals.0.params.rollouts=2",
                       "signals.0.params.rm_epochs=1", "signals.0.params.max_new_tokens=16",
                       "signals.0.params.min_pairs=2"],
}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads(name):
    r = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert r.name == name and r.policy == "lab:small" and r.eval.suites == ["lab"]
    kinds = {"grpo": "grpo", "grpo_judge": "grpo", "rloo": "rloo", "ppo_ptx": "ppo_ptx", "rest_em": "sft", "process_reward": "sft"}
    assert [p.kind for p in r.train.phases] == [kinds[name]]
    if name == "rest_em":
        assert r.train.start_from == "base"
    if name == "process_reward":
        assert r.prompts.source == "lab_multistep"


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_one_round_end_to_end_on_lab_tiny(name, tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    over = [*TINY, *SHRINK[name], f"run_dir={tmp_path / 'runs'}"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / f"{name}.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1] and (run / "report.html").exists()
    lab = next(x for x in metrics["rounds"][1]["results"] if x["suite"] == "lab")
    for axis in ("helpful", "harmless", "honest", "composite"):
        m = lab["metrics"][axis]
        assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())["metrics"]
    signals = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())
    if name in ("grpo", "rloo", "ppo_ptx"):
        assert train["trained"] and [r["step"] for r in train[name]["reward_log"]] == [1, 2]
        from autoalign.report.reward_curves import reward_curves_section, with_train_metrics

        assert "reward per step" in reward_curves_section(with_train_metrics(run, metrics["rounds"]))
    if name == "grpo_judge":  # both rewards logged per step
        log = train["grpo"]["reward_log"]
        assert train["trained"] and [r["step"] for r in log] == [1, 2]
        assert any(k.startswith("rewards/") and "judge" in k for k in log[0]), log[0]
    if name == "ppo_ptx":
        assert len(train["ppo_ptx"]["ptx_log"]) == 2 and train["ppo_ptx"]["ptx_texts"] == 8
    if name == "process_reward":
        stats = signals["stats"]["process_reward"]
        assert stats["steps_labelled"] > 0
        if "warning" not in stats:  # a PRM was trained: it is the stage's artifact
            assert signals["artifacts"]["0"]["process_reward_model"]["kind"] == "process_reward_model"
    if name == "rest_em":
        assert "solve_rate" in signals["stats"]["rest_em"]
