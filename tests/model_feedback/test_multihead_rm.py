"""The multi-head 3H reward model: its loss and per-axis accuracy by hand, how a Scorer reads its heads, a save /
load round trip, its use as an online-RL reward and by best-of-n, and, on lab:tiny, the ``multihead_rm`` recipe
(two rounds: the model is trained once and found again) and the head comparison on a handful of pairs."""

import json
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from autoalign.signals.model_feedback.multihead_rm import combine_heads, head_weights, is_multihead
from autoalign.train.losses import multihead_bradley_terry_loss, per_axis_accuracy

ROOT = Path(__file__).resolve().parents[2]
HEADS = ["helpful", "harmless", "honest"]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))  # -log sigma(-x)


# ---- pure functions, by hand -----------------------------------------------------------------------------------
def test_loss_reads_each_pair_on_its_own_head():
    rc = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], requires_grad=True)
    rr = torch.tensor([[0.0, 5.0, 0.0], [0.0, 1.0, 3.0]], requires_grad=True)
    # heads 0 and 1: gaps 1 - 0 and 2 - 1, both 1: -log sigma(1) = log(1 + e^-1)
    loss = multihead_bradley_terry_loss(rc, rr, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(softplus(-1.0), abs=1e-6)
    loss.backward()
    assert rc.grad is not None and rr.grad is not None
    assert rc.grad[0, 1:].abs().sum() == 0 and rc.grad[1, [0, 2]].abs().sum() == 0  # only the pair's head learns
    assert rc.grad[0, 0].item() == pytest.approx(-(1 - 1 / (1 + math.exp(-1))) / 2, abs=1e-6)
    # heads 0 and 2: gaps 1 and 0 - 3 = -3
    loss = multihead_bradley_terry_loss(rc, rr, torch.tensor([0, 2]))
    assert loss.item() == pytest.approx((softplus(-1.0) + softplus(3.0)) / 2, abs=1e-6)


def test_loss_with_a_margin():
    rc = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    rr = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    loss = multihead_bradley_terry_loss(rc, rr, torch.tensor([0, 1]), torch.tensor([0.5, 1.0]))
    assert loss.item() == pytest.approx((softplus(-0.5) + math.log(2.0)) / 2, abs=1e-6)  # gaps 0.5 and 0


def test_per_axis_accuracy_counts_ties_as_errors():
    got = per_axis_accuracy([1.0, 2.0, 3.0, 0.0, 5.0], [0.0, 2.0, 1.0, 1.0, 4.0],
                            ["helpful", "helpful", "honest", "honest", "harmless"])
    assert got == {"harmless": (1, 1), "helpful": (1, 2), "honest": (1, 2)}
    assert per_axis_accuracy([], [], []) == {}
    with pytest.raises(ValueError):
        per_axis_accuracy([1.0], [0.0], [])


def test_head_weights_and_their_sum():
    assert head_weights(HEADS, "prompt", "harmless") == [0.0, 1.0, 0.0]
    assert head_weights(HEADS, "prompt", None) == pytest.approx([1 / 3] * 3)  # no axis: the mean of the heads
    assert head_weights(HEADS, "honest", "helpful") == [0.0, 0.0, 1.0]  # a fixed axis ignores the prompt's
    assert head_weights(HEADS, {"helpful": 0.5, "honest": 2.0}) == [0.5, 0.0, 2.0]
    assert head_weights(["all"], "prompt", "helpful") == [1.0]  # one shared head: the mean is that head
    with pytest.raises(ValueError):
        head_weights(HEADS, "kind")
    with pytest.raises(ValueError):
        head_weights(HEADS, {"kind": 1.0})
    assert combine_heads([1.0, -2.0, 4.0], [0.5, 0.0, 2.0]) == pytest.approx(8.5)


# ---- a trained model on a random tiny Llama ------------------------------------------------------------------
ROWS = [{"prompt": [{"role": "user", "content": f"question {i}"}],
         "chosen": [{"role": "assistant", "content": "the answer is 42."}],
         "rejected": [{"role": "assistant", "content": "I can't help with that."}],
         "axis": "helpful" if i % 2 else "harmless"} for i in range(8)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from autoalign.train.multihead_rm import train_multihead_reward_model
    from tests.random_model import build_random_model

    tmp = tmp_path_factory.mktemp("mhrm")
    base = build_random_model(tmp / "base")
    metrics = train_multihead_reward_model(base, ROWS, tmp / "rm", seed=3, batch_size=4, max_steps=2)
    return base, tmp / "rm" / "model", metrics


def test_the_directory_is_plain_hugging_face_and_round_trips(trained):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autoalign.signals.model_feedback.multihead_rm import MultiHeadRewardModel

    _, model_dir, metrics = trained
    assert metrics["steps"] == 2 and metrics["pairs_per_head"] == {"helpful": 4, "harmless": 4, "honest": 0}
    assert is_multihead(model_dir) and list((model_dir).glob("*.safetensors"))
    chats = [[{"role": "user", "content": "question 1"}]] * 2
    texts = ["the answer is 42.", "I can't help with that."]
    rm = MultiHeadRewardModel(model_dir)
    assert rm.heads == HEADS and rm.scale == "reward"
    rows = rm.head_scores(chats, texts)
    # loaded again, and with transformers alone (no trust_remote_code): the same K rewards at the last token
    again = MultiHeadRewardModel(model_dir).head_scores(chats, texts)
    plain = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    for chat, text, row, row2 in zip(chats, texts, rows, again):
        ids = tok.apply_chat_template([*chat, {"role": "assistant", "content": text}], return_tensors="pt",
                                      return_dict=True)["input_ids"]
        with torch.no_grad():
            logits = plain(input_ids=ids).logits[0].tolist()
        assert row == pytest.approx(row2, abs=1e-5) and row == pytest.approx(logits, abs=1e-4)
    assert plain.config.id2label == {0: "helpful", 1: "harmless", 2: "honest"}


def test_a_head_without_pairs_is_left_as_initialised(trained):
    """No honest pair: the honest head's weights get no gradient (Adam without weight decay leaves them)."""
    from transformers import AutoModelForSequenceClassification

    from autoalign.train.multihead_rm import init_multihead_model

    base, model_dir, _ = trained
    init = init_multihead_model(base, HEADS, seed=3, dtype=torch.float32).score.weight.detach()
    after = AutoModelForSequenceClassification.from_pretrained(model_dir).score.weight.detach()
    assert torch.allclose(init[2], after[2], atol=1e-7)
    assert not torch.allclose(init[0], after[0], atol=1e-7)


def test_scorer_axis_choices_and_the_online_rl_reward(trained):
    from autoalign.methods import REWARD_SCORERS, resolve
    from autoalign.records import Prompt
    from autoalign.scoring import reward_function
    from autoalign.train.grpo import RewardSpec, build_scorer

    _, model_dir, _ = trained
    cls = resolve(REWARD_SCORERS["multihead_reward_model"])
    rm = build_scorer(RewardSpec(scorer="multihead_reward_model", path=str(model_dir)))
    assert isinstance(rm, cls)
    chat = [{"role": "user", "content": "question 2"}]
    text = "the answer is 42."
    row = rm.head_scores([chat], [text])[0]
    p = Prompt(id="p", messages=chat, axis="harmless")
    assert rm([p], [text])[0].value == pytest.approx(row[1], abs=1e-5)
    assert rm([chat], [text])[0].value == pytest.approx(sum(row) / 3, abs=1e-5)  # no axis: the mean
    assert cls(model_dir, axis="honest")([p], [text])[0].value == pytest.approx(row[2], abs=1e-5)
    assert cls(model_dir, axis={"helpful": 1.0, "honest": -1.0})([p], [text])[0].value == pytest.approx(
        row[0] - row[2], abs=1e-5)
    # TRL's reward function: the dataset's axis column is put back on the prompt
    fn = reward_function(rm)
    assert fn([chat], [text], axis=["helpful"]) == pytest.approx([row[0]], abs=1e-5)
    with pytest.raises(ValueError):
        cls(model_dir, axis="kindness")


def test_best_of_n_accepts_the_multihead_artifact(trained):
    from autoalign.decoding.best_of_n import BestOfN, BestOfNConfig
    from autoalign.signals.model_feedback.multihead_rm import MultiHeadRewardModel

    _, model_dir, _ = trained

    class Env:
        eval = None

        def load_aux(self, uri):
            raise AssertionError

        def artifact(self, kind, k):
            return model_dir if kind == "multihead_reward_model" else None

    wrapped = BestOfN(BestOfNConfig(n=2), "eval.wrappers.0").wrap(1, SimpleNamespace(uri="mock:"), Env())
    assert isinstance(wrapped.rm, MultiHeadRewardModel)


# ---- lab:tiny end to end ---------------------------------------------------------------------------------------
def test_recipe_two_rounds_on_lab_tiny(tiny_model_dir, tmp_path):
    from autoalign.recipe import load_recipe
    from autoalign.signals.catalog import build_signal
    from tests.e2e.test_run import AUTOALIGN

    recipe = load_recipe(ROOT / "recipes" / "multihead_rm.yaml")
    assert recipe.policy == "lab:small" and build_signal("multihead_rm", recipe.signals[0].params).name == "multihead_rm"
    over = ["policy=lab:tiny", "rounds=2", "prompts.count=12", "sampling.n=2", "sampling.max_new_tokens=16",
            "eval.per_family=1", "eval.max_new_tokens=16", "train.epochs=1", "train.batch_size=8",
            "signals.0.params.judge=lab:tiny", "signals.0.params.min_gap=0.0", "signals.0.params.noise_floor=0.0",
            "signals.0.params.rm_epochs=1", "signals.0.params.heldout=0.25",
            'eval.wrappers=[{"method": "best_of_n", "n": 2}]', f"run_dir={tmp_path / 'runs'}", "name=mh"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / "multihead_rm.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "mh"
    first = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())
    declared = first["artifacts"]["0"]["multihead_reward_model"]
    assert declared["kind"] == "multihead_reward_model" and not Path(declared["path"]).is_absolute()
    assert is_multihead(run / "round-1" / "signals" / declared["path"])
    stats = first["stats"]["multihead_rm"]
    assert stats["source"] == "trained" and stats["sft"] > 0 and sum(stats["ai_pairs"].values()) >= 2
    second = json.loads((run / "round-2" / "signals" / "manifest.json").read_text())
    assert second["stats"]["multihead_rm"]["source"] == "earlier round" and not second.get("artifacts")
    metrics = json.loads((run / "metrics.json").read_text())
    for rnd in metrics["rounds"][1:]:
        suites = {x["suite"]: x for x in rnd["results"]}
        assert "composite@best-of-2" in suites["lab@best-of-2"]["metrics"]
        assert "multihead_rm.judge_pairwise" in suites["judge_agreement"]["metrics"]
    # round 1 trained the model: its heads are measured on the held-out lab pairs, each on its own axis's pairs
    agreement = {x["suite"]: x for x in metrics["rounds"][1]["results"]}["judge_agreement"]["metrics"]
    cells = {k: v for k, v in agreement.items() if k.startswith("multihead_rm.rm_lab_accuracy")}
    assert "multihead_rm.rm_lab_accuracy" in cells and len(cells) >= 2
    assert sum(v["n"] for k, v in cells.items() if k != "multihead_rm.rm_lab_accuracy") == \
        cells["multihead_rm.rm_lab_accuracy"]["n"] > 0
    assert all(0.0 <= v["value"] <= 1.0 for v in cells.values())


def test_head_comparison_on_a_handful_of_pairs(tiny_lm, tmp_path):
    from autoalign.evaluate.rm_heads import compare_heads, render

    out = compare_heads(tiny_lm, tiny_lm, tmp_path, count=12, samples=2, min_gap=0.0, max_new_tokens=16,
                        per_family=1, schedule={"max_steps": 1, "batch_size": 4})
    assert set(out["accuracy"]) == {"multihead", "single", "shared"}
    for cells in out["accuracy"].values():
        for c in cells.values():
            assert c["n"] == 0 or 0.0 <= c["lo"] <= c["accuracy"] <= c["hi"] <= 1.0
    assert out["accuracy"]["shared"]["all"]["n"] == sum(out["lab_pairs"].values())
    assert json.loads((tmp_path / "rm_heads.json").read_text())["accuracy"] == out["accuracy"]
    assert render(out).row_count == 3


def test_signal_selects_by_the_head_of_the_prompts_axis(trained):
    from autoalign.errors import UserError
    from autoalign.records import Prompt, Sample
    from autoalign.signals.catalog import build_signal
    from autoalign.signals.model_feedback.multihead_rm import MultiHeadRewardModel

    _, model_dir, _ = trained
    texts = ["the answer is 42.", "I can't help with that.", "I don't know."]
    prompts = [Prompt(id=f"p{i}", messages=[{"role": "user", "content": f"question {i}"}], axis=ax)
               for i, ax in enumerate(["helpful", "harmless", None])]
    samples = [Sample(prompt_id=p.id, index=j, text=t, model="m") for p in prompts for j, t in enumerate(texts)]
    rm = MultiHeadRewardModel(model_dir)
    for select in ("sft", "dpo"):
        signal = build_signal("multihead_rm", {"reward_model": str(model_dir), "select": select})
        out = signal(prompts, samples, SimpleNamespace(uri="mock:"))
        assert out.stats["source"] == "given" and len(out.labels) == 9
        assert all(lab.kind == "reward" for lab in out.labels)
        for p in prompts:
            want = rm.score([p] * 3, texts)  # the prompt's head (the mean of the heads for the axis-less one)
            best = max(range(3), key=lambda i: want[i])
            got = [lab.score for lab in out.labels if lab.prompt_id == p.id]
            assert got == pytest.approx(want, abs=1e-5)
            if select == "sft":
                (ex,) = [e for e in out.sft if e.prompt_id == p.id]
                assert ex.messages[-1]["content"] == texts[best]
            else:
                (pair,) = [x for x in out.preferences if x.prompt_id == p.id]
                assert pair.chosen == texts[best] and pair.rejected == texts[min(range(3), key=lambda i: want[i])]
    with pytest.raises(UserError):
        build_signal("multihead_rm", {"select": "kto"})
