"""Each model-feedback recipe loads, and its signals build from the YAML params (through the catalog once the
methods are registered there). On lab:tiny each signal runs once on a handful of prompts (a real model, no
training); the full ``autoalign run`` of each recipe on lab:tiny is opt-in (``-m slow``)."""

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoalign.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["constitutional_ai", "rlaif", "self_rewarding", "raft", "aligner"]

# The catalog entries these recipes need (autoalign/signals/catalog.py).
METHODS = {
    "llm_judge": ("autoalign.signals.model_feedback.llm_judge", "LLMJudge"),
    "constitutional_ai": ("autoalign.signals.model_feedback.critique_revise", "ConstitutionalAI"),
    "rlaif": ("autoalign.signals.model_feedback.rlaif", "RLAIF"),
    "raft": ("autoalign.signals.model_feedback.raft", "RAFT"),
    "aligner": ("autoalign.signals.model_feedback.aligner", "AlignerData"),
    "self_rewarding": ("autoalign.signals.inductive.self_rewarding", "SelfRewarding"),
}


def _fake_loader(loaded):
    def load_lm(uri, **options):
        loaded.append(uri)
        return object()

    return load_lm


def build(method: str, params: dict, load_lm):
    """Build through the catalog when it knows the method, else as the catalog will (same binding rules)."""
    from autoalign.signals import catalog

    if method in catalog.SIGNALS:
        assert catalog.SIGNALS[method] == METHODS[method]
        return catalog.build_signal(method, params, load_lm=load_lm)
    module, name = METHODS[method]
    cls = getattr(importlib.import_module(module), name)
    if "load_lm" in inspect.signature(cls).parameters:
        params = {**params, "load_lm": load_lm}
    inspect.signature(cls).bind(**params)
    return cls(**params)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_and_builds_its_signals(name):
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert recipe.name == name
    loaded: list[str] = []
    for cfg in recipe.signals:
        signal = build(cfg.method, cfg.params, _fake_loader(loaded))
        assert signal.name == cfg.method and callable(signal)
    assert loaded == []  # models named in params load lazily, at the first call


def test_catalog_rejects_an_unknown_param():
    module, name = METHODS["rlaif"]
    cls = getattr(importlib.import_module(module), name)
    with pytest.raises(TypeError):
        inspect.signature(cls).bind(judge="policy", no_such_param=1)


@pytest.fixture(scope="module")
def tiny_round(tiny_lm):
    """Eight lab prompts (two of each axis at least) and two samples each from lab:tiny."""
    from autoalign.lab.prompts import lab_prompts
    from autoalign.models.base import Sampling
    from autoalign.records import Sample

    prompts = lab_prompts(6, seed=11)
    outs = tiny_lm.generate([p.messages for p in prompts], Sampling(n=2, temperature=0.9, max_new_tokens=32, seed=2))
    samples = [Sample(prompt_id=p.id, index=j, text=c.text, model="lab:tiny")
               for p, cs in zip(prompts, outs) for j, c in enumerate(cs)]
    return prompts, samples


@pytest.mark.parametrize("name", ["constitutional_ai", "rlaif", "self_rewarding", "aligner"])
def test_recipe_signal_runs_on_lab_tiny(name, tiny_round, tiny_lm):
    prompts, samples = tiny_round
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    cfg = recipe.signals[0]
    params = dict(cfg.params)
    if params.get("reviser", "policy") != "policy":
        params["reviser"] = "lab:tiny"  # keep the test on the tiny model
    signal = build(cfg.method, params, lambda uri, **o: tiny_lm)
    out = signal(prompts, samples, tiny_lm)
    assert len(out.labels) > 0 and out.stats
    for ex in out.sft:
        assert ex.messages[-1]["role"] == "assistant"
    for pref in out.preferences:
        assert pref.chosen != pref.rejected


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_one_round_end_to_end_on_lab_tiny(name, tmp_path, tiny_model_dir):
    from autoalign.signals import catalog

    data = yaml.safe_load((ROOT / "recipes" / f"{name}.yaml").read_text())
    if any(s["method"] not in catalog.SIGNALS for s in data["signals"]):
        pytest.skip("signal not registered in the catalog yet")
    overrides = ["policy=lab:tiny", "rounds=1", f"run_dir={tmp_path / 'runs'}", "prompts.count=24",
                 "sampling.n=2", "sampling.max_new_tokens=32", "eval.per_family=4", "train.epochs=1"]
    for i, s in enumerate(data["signals"]):
        for key in ("reviser", "judge"):
            if s["params"].get(key) not in (None, "policy"):
                overrides.append(f"signals.{i}.params.{key}=lab:tiny")
        if "rm_dir" in s["params"]:
            overrides.append(f"signals.{i}.params.rm_dir={tmp_path / 'rm'}")
            overrides.append(f"signals.{i}.params.min_gap=0.0")
    autoalign = str(Path(sys.executable).parent / "autoalign")
    result = subprocess.run([autoalign, "run", str(ROOT / "recipes" / f"{name}.yaml"), *overrides],
                            cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "runs" / name / "metrics.json").exists()
