"""The inductive-bias recipes of issue 14 (spin, self_refine, context_distillation, linear_alignment): each loads,
and runs one round end to end through the CLI on lab:tiny (shrunk by overrides), with its wrappers' variant suites
and its signal's figures in the run."""

import json
import subprocess
from pathlib import Path

import pytest

from autoalign.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["spin", "self_refine", "context_distillation", "linear_alignment"]
TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=8", "sampling.max_new_tokens=16", "eval.per_family=1",
        "eval.max_new_tokens=16", "train.epochs=1", "train.batch_size=8"]
SHRINK = {
    "spin": ["signals.0.params.target=lab:tiny", "signals.0.params.max_new_tokens=16"],
    "self_refine": ["signals.0.params.max_new_tokens=16", "signals.0.params.threshold=0.99",
                    "eval.wrappers.0.max_new_tokens=16", "eval.wrappers.0.max_iterations=1"],
    "context_distillation": ["signals.0.params.max_new_tokens=16"],
    "linear_alignment": ["signals.0.params.max_new_tokens=16"],
}
VARIANTS = {"self_refine": ["lab@self-refine"], "context_distillation": ["lab@system-prompt"],
            "linear_alignment": ["lab@linear-alignment", "lab@system-prompt"], "spin": []}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads(name):
    r = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert r.name == name and r.policy == "lab:small"
    assert [p.kind for p in r.train.phases] == ["spin" if name == "spin" else "sft"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_one_round_end_to_end_on_lab_tiny(name, tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    over = [*TINY, *SHRINK[name], f"run_dir={tmp_path / 'runs'}", f"name={name}"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / f"{name}.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / name
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    for rnd in metrics["rounds"]:
        suites = {x["suite"]: x for x in rnd["results"]}
        for suite in ["lab", *VARIANTS[name]]:
            for axis in ("helpful", "harmless", "honest", "composite"):
                tag = suite.partition("@")[2]  # a variant's axes are named <axis>@<tag>
                m = suites[suite]["metrics"][f"{axis}@{tag}" if tag else axis]
                assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0
    signals = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())["stats"]
    method = load_recipe(ROOT / "recipes" / f"{name}.yaml").signals[0].method
    assert method in signals
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())["metrics"]
    if name == "spin":
        assert signals["spin"]["with_target"] > 0 and "identical_share" in signals["spin"]
        if signals["spin"]["pairs"]:
            assert train["trained"] and "indistinguishable" in train["spin"]
    else:
        assert train["trained"]
