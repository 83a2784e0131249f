"""On-policy distillation (GKD, Agarwal et al. 2024) as the ``gkd`` training phase: its rows, its config errors
(one line naming the field), what TRL's generalized JSD computes for a hand-sized pair of distributions, and one
round of the distill_gkd recipe on lab:tiny (the teacher shrunk to lab:tiny too)."""

import json
import math
import subprocess
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.recipe import load_recipe
from autoalign.train.gkd import GKDPhase, gkd_rows
from autoalign.train.phases import PHASES

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "distill_gkd.yaml"


def test_the_phase_is_in_the_table_and_the_recipe_uses_it():
    assert PHASES["gkd"].config is GKDPhase and GKDPhase.consumes == "sft"
    r = load_recipe(RECIPE)
    assert r.policy == "lab:small" and r.signals[0].method == "distill_sft"
    (phase,) = r.train.phases
    assert (phase.kind, phase.teacher, phase.lmbda, phase.beta) == ("gkd", "lab:teacher", 0.5, 0.5)


def test_gkd_rows_keep_only_the_conversation():
    rows = [{"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4."}],
             "weight": 0.5}]
    assert gkd_rows(rows) == [{"messages": rows[0]["messages"]}]
    with pytest.raises(ValueError, match="assistant answer"):
        gkd_rows([{"messages": [{"role": "user", "content": "2 + 2?"}]}])


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.phases.0.lmbda=1.5", "train.phases.0.gkd.lmbda: Input should be less than or equal to 1"),
        ("train.phases.0.beta=-0.1", "train.phases.0.gkd.beta: Input should be greater than or equal to 0"),
        ("train.phases.0.temperature=0", "train.phases.0.gkd.temperature: Input should be greater than 0"),
        ("train.phases.0.teacher=hf:/nonexistent/teacher",
         "train.phases.0.gkd.teacher: Value error, /nonexistent/teacher is not a directory"),
        ("train.phases.0.teacher=openai:http://localhost:1#m",
         "train.phases.0.gkd.teacher: Value error, GKD reads the teacher's logits: give a local model"),
        ("train.phases.0.lambda=0.5", "train.phases.0.gkd.lambda: Extra inputs are not permitted"),
    ],
)
def test_a_wrong_gkd_field_is_one_line_naming_it(override, message):
    with pytest.raises(UserError) as err:
        load_recipe(RECIPE, [override])
    text = str(err.value)
    assert "\n" not in text and message in text, text


def test_trl_generalized_jsd_is_agarwal_eq_1_by_hand():
    """One token, a two-word vocabulary: teacher P = (0.8, 0.2), student Q = (0.5, 0.5). Eq. (1) with beta:
    M = beta P + (1 - beta) Q, JSD = beta KL(P||M) + (1 - beta) KL(Q||M); beta 0 is TRL's forward KL(P||Q)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # TRL's experimental-API notice
        warnings.simplefilter("ignore")
        from trl.experimental.gkd import GKDTrainer

    p, q = (0.8, 0.2), (0.5, 0.5)
    teacher, student = torch.tensor([[[math.log(x) for x in p]]]), torch.tensor([[[math.log(x) for x in q]]])

    def kl(a, b):
        return sum(x * math.log(x / y) for x, y in zip(a, b))

    m = tuple(0.5 * a + 0.5 * b for a, b in zip(p, q))  # (0.65, 0.35)
    by_hand = 0.5 * kl(p, m) + 0.5 * kl(q, m)  # 0.5 * 0.0542 + 0.5 * 0.0472 = 0.0507
    got = GKDTrainer.generalized_jsd_loss(student, teacher, beta=0.5)
    assert float(got) == pytest.approx(by_hand, rel=1e-5) and by_hand == pytest.approx(0.0507, abs=1e-4)
    assert float(GKDTrainer.generalized_jsd_loss(student, teacher, beta=0.0)) == pytest.approx(kl(p, q), rel=1e-5)


TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=12", "sampling.max_new_tokens=24", "sampling.chunk_prompts=2",
        "eval.per_family=2", "eval.max_new_tokens=24", "signals.0.params.teacher=lab:tiny",
        "signals.0.params.max_new_tokens=24", "train.phases.0.teacher=lab:tiny", "train.phases.0.max_steps=3",
        "train.phases.0.batch_size=4", "train.phases.0.max_new_tokens=16", "train.phases.0.lmbda=1.0"]


def test_recipe_one_round_end_to_end_on_lab_tiny(tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    over = [*TINY, f"run_dir={tmp_path / 'runs'}", "name=distill_gkd"]
    res = subprocess.run([AUTOALIGN, "run", str(RECIPE), *over], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "distill_gkd"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    lab = {r["suite"]: r for r in metrics["rounds"][1]["results"]}["lab"]["metrics"]
    for axis in ("helpful", "harmless", "honest", "composite"):
        assert 0.0 <= lab[axis]["lo"] <= lab[axis]["value"] <= lab[axis]["hi"] <= 1.0
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())["metrics"]
    assert train["trained"] and train["gkd"]["steps"] == 3 and train["gkd"]["teacher"] == "lab:tiny"
    assert (run / "round-1" / "train" / "gkd" / "model" / "config.json").is_file() and (run / "report.html").is_file()
