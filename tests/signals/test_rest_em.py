"""ReST-EM (Singh et al. 2023): the E-step's selection by hand, the signal on verified samples, and the loop's
``train.start_from: base`` (each round's M-step fine-tunes the base policy, on samples of the latest policy)."""

import json
import subprocess
from pathlib import Path

import yaml

from autoalign.records import Prompt, Sample
from autoalign.signals.environment.rest_em import ReSTEM, kept_solutions

ROOT = Path(__file__).resolve().parents[2]


def test_the_e_step_keeps_distinct_correct_solutions_up_to_the_cap():
    texts = ["a", "b", "a", "c", "d", "e"]
    rewards = [1.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert kept_solutions(texts, rewards, cap=3) == [0, 3, 4]  # "a" once, the wrong "b" never, at most 3
    assert kept_solutions(texts, rewards, cap=10) == [0, 3, 4, 5]
    assert kept_solutions(["x"], [0.0], cap=2) == []


def test_the_signal_verifies_by_execution_and_keeps_the_correct_ones():
    prompts = [Prompt(id="a", messages=[{"role": "user", "content": "What is 2 + 3?"}],
                      env={"kind": "calc", "expr": "2 + 3"}),
               Prompt(id="b", messages=[{"role": "user", "content": "Hi"}])]
    texts = ["The answer is 5.", "The answer is 6.", "2 + 3 = 5. The answer is 5.", "The answer is 5."]
    samples = [Sample(prompt_id="a", index=i, text=t, model="m") for i, t in enumerate(texts)]
    samples.append(Sample(prompt_id="b", index=0, text="Hello.", model="m"))
    out = ReSTEM(max_per_prompt=4)(prompts, samples)
    assert [ex.messages[-1]["content"] for ex in out.sft] == ["The answer is 5.", "2 + 3 = 5. The answer is 5."]
    assert [lb.selected for lb in out.labels] == [True, False, True, False]
    s = out.stats
    assert (s["correct_samples"], s["solved_prompts"], s["solve_rate"], s["skipped_no_env"]) == (3, 1, 1.0, 1)


def test_the_recipe_trains_from_the_base_every_round_on_lab_tiny(tiny_model_dir, tmp_path):
    """Two ReST-EM rounds on lab:tiny (the gate off, so round 2 samples with round 1's policy): both rounds' M-steps
    start from the base policy, round 2's samples come from round 1's trained policy."""
    from tests.e2e.test_run import AUTOALIGN

    over = ["policy=lab:tiny", "rounds=2", "prompts.count=8", "sampling.n=2", "sampling.max_new_tokens=24",
            "eval.per_family=1", "eval.max_new_tokens=16", "eval.judge_agreement=false", "eval.gate.enabled=false",
            "train.epochs=1", "train.batch_size=8", f"run_dir={tmp_path / 'runs'}",
            # lab:tiny rarely solves a task: the prompts of arithmetic only, where it sometimes does
            "prompts.families=[arithmetic]", "sampling.n=4"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / "rest_em.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()  # the run's directory (named after the recipe and its overrides)
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["start_from"] == "base"
    train = [json.loads((run / f"round-{k}" / "train" / "manifest.json").read_text()) for k in (1, 2)]
    samples = [json.loads((run / f"round-{k}" / "samples" / "manifest.json").read_text()) for k in (1, 2)]
    assert train[0]["inputs"]["policy"] == train[1]["inputs"]["policy"] == samples[0]["inputs"]["policy"]  # base
    if train[0]["metrics"]["trained"]:  # round 1 trained: round 2 sampled with its policy, yet trained the base
        assert samples[1]["inputs"]["policy"] != samples[0]["inputs"]["policy"]
    assert (run / "report.html").exists()
