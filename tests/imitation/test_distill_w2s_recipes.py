"""Strong-to-weak distillation (distilled SFT, distilled DPO) and weak-to-strong generalisation: the signals on
scripted models, each recipe through the catalog, and one round of each recipe on lab:tiny (the teacher, judge and
weak supervisor shrunk to lab:tiny), then the PGR helper on the weak-to-strong run."""

import json
import subprocess
from pathlib import Path

import pytest

from autoalign.models.base import Completion
from autoalign.recipe import load_recipe
from autoalign.records import Prompt, Sample
from autoalign.signals import catalog
from autoalign.signals.imitation.distill_dpo import best_vs_random
from autoalign.signals.imitation.weak_to_strong import heldout_prompt
from autoalign.signals.model_feedback.common import Scored
from autoalign.signals.model_feedback.constitution import Principle
from autoalign.signals.model_feedback.judges import Verdict

ROOT = Path(__file__).resolve().parents[2]
RECIPES = {"distill_sft": "DistilledSFT", "distill_dpo": "DistilledDPO", "weak_to_strong": "WeakToStrong"}


class Teacher:
    uri = "fake:teacher"

    def generate(self, prompts, sampling):
        return [[Completion(text=t) for t in ("The answer is 4.", "", "The answer is 4.")][: sampling.n]
                for _ in prompts]


def prompt(i: int) -> Prompt:
    return Prompt(id=f"p{i}", messages=[{"role": "user", "content": f"What is {i} + {i}?"}], axis="helpful")


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_builds_its_signal_through_the_catalog(name):
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert catalog.SIGNALS[name] == (f"autoalign.signals.imitation.{name}", RECIPES[name])
    loaded: list[str] = []
    signal = catalog.build_signal(recipe.signals[0].method, recipe.signals[0].params,
                                  load_lm=lambda uri, **o: loaded.append(uri))
    assert signal.name == name and loaded == []  # models load lazily, at the first call


def test_distilled_sft_keeps_each_distinct_non_empty_teacher_answer():
    sig = catalog.build_signal("distill_sft", {"teacher": "fake:teacher", "samples": 3, "temperature": 0.9},
                               load_lm=lambda uri, **o: Teacher())
    out = sig([prompt(1), prompt(2)], [], policy=None)  # type: ignore[arg-type]
    assert [ex.messages[-1]["content"] for ex in out.sft] == ["The answer is 4."] * 2
    assert out.stats["empty"] == 2 and out.stats["duplicate"] == 2 and out.stats["sft"] == 2


def _scored(pid: str, index: int, text: str, value: float | None) -> Scored:
    return Scored(Sample(prompt_id=pid, index=index, text=text, model="m"), Principle(id="h", axis="helpful", text="x"),
                  Verdict(value=value))


def test_best_vs_random_pairs_the_best_with_another_beyond_the_gap():
    scored = [_scored("p1", 0, "a", 0.9), _scored("p1", 1, "b", 0.2), _scored("p1", 2, "c", 0.85),
              _scored("p2", 0, "d", 0.5), _scored("p2", 1, "e", 0.45), _scored("p3", 0, "f", None)]
    prefs, counts = best_vs_random(scored, [prompt(1), prompt(2), prompt(3)], "distill_dpo", 0.1, seed=0)
    assert [(p.prompt_id, p.chosen, p.rejected) for p in prefs] == [("p1", "a", "b")]  # c is within the gap
    assert prefs[0].margin == pytest.approx(0.7)
    assert counts == {"no_gap": 1, "too_few_scored": 1}


def test_heldout_split_is_stable_and_near_its_share():
    ids = [f"q{i}" for i in range(400)]
    held = [heldout_prompt(i, 0, 0.5) for i in ids]
    assert held == [heldout_prompt(i, 0, 0.5) for i in ids] and 150 < sum(held) < 250


# ---- one round of each recipe on lab:tiny through the CLI (each ~10-20 s on 2 cores) --------------------------
TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=12", "sampling.n=2", "sampling.max_new_tokens=24",
        "sampling.chunk_prompts=2", "eval.per_family=2", "eval.max_new_tokens=24", "train.epochs=1",
        "train.batch_size=8"]
SHRINK = {"distill_sft": ["signals.0.params.teacher=lab:tiny"],
          "distill_dpo": ["signals.0.params.judge=lab:tiny", 'signals.0.params.models=["lab:tiny"]',
                          "signals.0.params.min_gap=0.0", "signals.0.params.noise_floor=0.0",
                          "signals.0.params.sft_threshold=0.0"],  # lab:tiny's verdicts barely spread
          "weak_to_strong": ["prompts.count=24", "signals.0.params.labelled_per_task=8",  # every task has items
                             "signals.0.params.weak_epochs=1"]}


@pytest.fixture(scope="module")
def finished(tiny_model_dir, tmp_path_factory):
    from tests.e2e.test_run import AUTOALIGN

    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            work = tmp_path_factory.mktemp(name)
            cmd = [AUTOALIGN, "run", str(ROOT / "recipes" / f"{name}.yaml"), *TINY, *SHRINK[name],
                   f"run_dir={work / 'runs'}", f"name={name}"]
            result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr[-3000:]
            done[name] = work / "runs" / name
        return done[name]

    return get


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_one_round_end_to_end_on_lab_tiny(name, finished):
    run = finished(name)
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    lab = {r["suite"]: r for r in metrics["rounds"][1]["results"]}["lab"]["metrics"]
    for axis in ("helpful", "harmless", "honest", "composite"):
        assert 0.0 <= lab[axis]["lo"] <= lab[axis]["value"] <= lab[axis]["hi"] <= 1.0
    signals = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())
    assert name in signals["stats"]
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())
    assert train["metrics"]["trained"], train
    if name == "distill_dpo":
        assert signals["stats"][name]["pairs"] > 0 and signals["counts"]["sft"] > 0
    if name == "weak_to_strong":
        items = (run / "round-1" / "signals" / "0" / "w2s" / "w2s_items.jsonl").read_text().splitlines()
        splits = {json.loads(line)["split"] for line in items}
        assert splits == {"train", "test"}
        assert (run / "round-1" / "train" / "w2s" / "model").is_dir()


def test_pgr_helper_on_the_weak_to_strong_run(finished):
    from autoalign.evaluate.weak_to_strong import measure_pgr, table

    run = finished("weak_to_strong")
    res = measure_pgr(run, naive=False, resamples=200)
    assert res["test_items"] > 0 and res["train_items"] > 0
    for who in ("weak", "weak_to_strong", "ceiling"):
        a = res["accuracy"][who]
        assert 0.0 <= a["lo"] <= a["value"] <= a["hi"] <= 1.0 and a["n"] == res["test_items"]
    assert "value" in res["pgr"] and (run / "pgr" / "pgr.json").exists()
    tasks = res["tasks"]
    assert set(tasks) <= {"principle", "correct", "harmful", "known"} and "principle" in tasks
    assert sum(t["test_items"] for t in tasks.values()) == res["test_items"]
    assert sum(t["train_items"] for t in tasks.values()) == res["train_items"]
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())
    assert train["screen"]["sft"] == {"kept": res["train_items"]}  # the screen dropped no row the ceiling keeps
    signal = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())["stats"]["weak_to_strong"]
    assert signal["labelled"] > 0 and signal["weak"].endswith("+labelled")
    assert any(line.startswith("all ") for line in table(res).splitlines())
