"""Reward models: the Bradley-Terry loss by hand, best-of-n / top-k selection, the best-of-n LM wrapper, and a
reward model trained through TRL's RewardTrainer that RewardModel then scores with."""

import math

import pytest
import torch

from autoalign.models.base import Sampling
from autoalign.records import Preference, preference_rows
from autoalign.signals.model_feedback.common import Scored
from autoalign.signals.model_feedback.constitution import default_constitution
from autoalign.signals.model_feedback.judges import Verdict
from autoalign.signals.model_feedback.raft import RAFT, ai_preferences, split_heldout
from autoalign.signals.model_feedback.reward_model import (
    BestOfNLM,
    RewardModel,
    best_of_n,
    bradley_terry_loss,
    pairwise_accuracy,
    top_k,
)
from tests.model_feedback.fakes import FakeLM, lab_prompt, samples_for


def test_bradley_terry_loss_tiny_example():
    # pairs (r_w, r_l) = (1, 0) and (0, 0): (-log sigma(1) - log sigma(0)) / 2 = (0.313262 + 0.693147) / 2
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-1)) + math.log(2)) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.503204, abs=1e-6)
    # with a margin of 1 the first pair's difference becomes 0: (log 2 + -log sigma(-1)) / 2
    m = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert m.item() == pytest.approx((math.log(2) + math.log(1 + math.e)) / 2, abs=1e-6)


def test_selection_hand_values():
    assert best_of_n([0.1, 0.7, 0.7, -2.0]) == 1  # first of equals
    assert top_k([0.1, 0.7, 0.7, -2.0], 2) == [1, 2]
    assert top_k([3.0, 1.0], 5) == [0, 1]
    assert pairwise_accuracy([1.0, 0.5, 0.2], [0.0, 0.5, 0.9]) == pytest.approx(1 / 3)  # a tie is an error
    with pytest.raises(ValueError):
        best_of_n([])


class _LengthRM:
    """A reward model that prefers longer responses."""
    uri = "rm:fake"
    path = "fake"

    def fingerprint(self):
        return "rm"

    name, scale = "rm:fake", "reward"

    def score(self, prompts, responses):
        return [float(len(r)) for r in responses]

    def __call__(self, prompts, responses):  # the Scorer shape
        from autoalign.scoring import Score

        return [Score(v) for v in self.score(prompts, responses)]


def test_best_of_n_lm_picks_the_highest_reward_per_requested_sample():
    policy = FakeLM(reply=lambda p, j: "x" * (j % 4 + 1) + str(j), uri="fake:policy")
    lm = BestOfNLM(policy, _LengthRM(), n=4)
    out = lm.generate(["q"], Sampling(n=2, temperature=0.0))
    # 8 candidates: j=0..3 -> block 1, j=4..7 -> block 2; the longest in each is j=3 and j=7
    assert [c.text for c in out[0]] == ["xxxx3", "xxxx7"]
    assert lm.logprobs(["q"], ["a"]) == policy.logprobs(["q"], ["a"])


def _scored(prompt, texts_scores):
    c = default_constitution()
    ss = samples_for(prompt, [t for t, _ in texts_scores])
    return [Scored(s, c.principles[0], Verdict(value=v)) for s, (_, v) in zip(ss, texts_scores)]


def test_ai_preferences_all_gapped_pairs_widest_first():
    p = lab_prompt(1)
    scored = _scored(p, [("a", 0.9), ("b", 0.2), ("c", 0.5), ("d", None)])
    prefs = ai_preferences(scored, [p], "raft", min_gap=0.3, per_prompt=4)
    assert [(x.chosen, x.rejected) for x in prefs] == [("a", "b"), ("a", "c"), ("c", "b")]
    assert prefs[0].margin == pytest.approx(0.7)
    assert len(ai_preferences(scored, [p], "raft", min_gap=0.3, per_prompt=1)) == 1
    train, held = split_heldout(prefs * 1, 0.0, seed=0)
    assert len(train) == 3 and not held


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tests.random_model import build_random_model

    return build_random_model(tmp_path_factory.mktemp("rm-base"))


def test_reward_model_trains_with_trl_and_scores_chosen_above_rejected(base, tmp_path):
    from autoalign.train.reward import train_reward_model

    user = [{"role": "user", "content": "hello"}]
    prefs = [Preference(prompt_id="x", prompt=user, chosen="the answer is 42", rejected="I can't help with that.",
                        signal="test")] * 8
    metrics = train_reward_model(base, preference_rows(prefs), tmp_path, epochs=4, learning_rate=5e-3,
                                 batch_size=4, center_rewards=None, eval_rows=preference_rows(prefs[:2]))
    assert metrics["steps"] == 8 and (tmp_path / "model" / "model.safetensors").exists()
    rm = RewardModel(tmp_path / "model")
    good, bad = rm.score([user, user], ["the answer is 42", "I can't help with that."])
    assert good > bad
    assert metrics["eval_accuracy"] == pytest.approx(1.0)
    # best-of-n at inference from the command line, with this reward model
    import json
    import subprocess
    import sys
    from pathlib import Path

    cli = [str(Path(sys.executable).parent / "autoalign"), "eval", f"hf:{base}", "--suite", "lab", "--per-family", "1"]
    done = subprocess.run([*cli, "--best-of-n", "2", "--reward-model", str(tmp_path / "model"),
                           "--out", str(tmp_path / "eval")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert result["model"].startswith("best-of-2:hf:") and (tmp_path / "eval" / "report.html").exists()
    bad_args = subprocess.run([*cli, "--best-of-n", "2", "--out", str(tmp_path / "e2")], capture_output=True,
                              text=True, timeout=120)
    lines = [x for x in (bad_args.stdout + bad_args.stderr).splitlines() if x.strip()]
    assert bad_args.returncode == 2 and len(lines) == 1 and "--reward-model" in lines[0], lines


def test_raft_keeps_the_top_k_by_reward(tmp_path, monkeypatch):
    p1 = lab_prompt(1)
    samples = samples_for(p1, ["a", "bbb", "bbb", "cc"])
    sig = RAFT(top_k=2)
    sig._rm = _LengthRM()  # a given reward model
    out = sig([p1], samples, FakeLM())
    assert [e.messages[-1]["content"] for e in out.sft] == ["bbb", "cc"]  # the duplicate "bbb" is kept once
    assert [lab.verdict for lab in out.labels] == ["dropped", "kept", "dropped", "kept"]
    assert [lab.selected for lab in out.labels] == [False, True, False, True]
    assert {lab.kind for lab in out.labels} == {"reward"}
    assert out.stats["kept"] == 2 and out.stats["mean_reward_kept"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="not a directory"):
        RAFT(reward_model=str(tmp_path / "missing"))
