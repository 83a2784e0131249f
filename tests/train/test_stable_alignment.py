"""Stable Alignment: the loss by hand, the phase's config, and a few training steps of the TRL-based trainer on
lab:tiny."""

import math

import pytest
import torch

from autoalign.train.losses import mean_token_nll, stable_alignment_loss
from autoalign.train.phases import PHASES, parse_phases
from autoalign.train.stable_alignment import StableAlignmentPhase


def test_mean_token_nll_by_hand():
    logps = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert mean_token_nll(logps, mask).tolist() == pytest.approx([1.5, 3.0])


def test_stable_alignment_loss_by_hand():
    # pair 1: max(0, 1.0 - 1.5 + 0.5 * 1) = 0          -> 1.0
    # pair 2: max(0, 2.0 - 1.0 + 0.25 * 1) = 1.25      -> 2.0 + 0.5 * 1.25 = 2.625
    best, low, gap = torch.tensor([1.0, 2.0]), torch.tensor([1.5, 1.0]), torch.tensor([0.5, 0.25])
    assert float(stable_alignment_loss(best, low, gap, margin=1.0, lam=0.5)) == pytest.approx((1.0 + 2.625) / 2)
    # lambda 0: SFT on the best-rated responses alone
    assert float(stable_alignment_loss(best, low, gap, margin=1.0, lam=0.0)) == pytest.approx(1.5)
    # pair 1 with M = 2: max(0, -0.5 + 1.0) = 0.5 -> 1.25; pair 2: max(0, 1.0 + 0.5) = 1.5 -> 2.75
    assert float(stable_alignment_loss(best, low, gap, margin=2.0, lam=0.5)) == pytest.approx((1.25 + 2.75) / 2)


def test_hinge_gradient_only_while_the_margin_is_unmet():
    best = torch.tensor([1.0], requires_grad=True)
    low = torch.tensor([3.0], requires_grad=True)
    stable_alignment_loss(best, low, torch.tensor([0.5]), margin=1.0, lam=0.5).backward()
    assert best.grad.tolist() == pytest.approx([1.0]) and low.grad.tolist() == pytest.approx([0.0])
    best2 = torch.tensor([1.0], requires_grad=True)
    low2 = torch.tensor([1.2], requires_grad=True)
    stable_alignment_loss(best2, low2, torch.tensor([0.5]), margin=1.0, lam=0.5).backward()
    assert best2.grad.tolist() == pytest.approx([1.5]) and low2.grad.tolist() == pytest.approx([-0.5])


def test_phase_is_registered_and_validated():
    assert PHASES["stable_alignment"].config is StableAlignmentPhase
    (p,) = parse_phases([{"kind": "stable_alignment", "margin": 2.0}])
    assert isinstance(p, StableAlignmentPhase) and p.margin == 2.0 and p.lam == 0.5 and p.consumes == "preferences"
    with pytest.raises(Exception, match="lam"):
        parse_phases([{"kind": "stable_alignment", "lam": -1}])


def test_trainer_runs_a_few_steps_on_lab_tiny(tiny_model_dir, tmp_path):
    from autoalign.train.stable_alignment import train_stable_alignment

    prompt = [{"role": "user", "content": "What is 2 + 3?"}]
    rows = [{"prompt": prompt, "chosen": [{"role": "assistant", "content": "2 + 3 = 5. The answer is 5."}],
             "rejected": [{"role": "assistant", "content": "I don't know."}], "margin": gap}
            for gap in (0.5, 0.25, 1.0, 0.75)]
    m = train_stable_alignment(tiny_model_dir, rows, tmp_path, seed=0, max_steps=2, batch_size=2, max_length=64)
    assert m["steps"] == 2 and m["pairs"] == 4 and math.isfinite(m["train_loss"])
    assert (tmp_path / "model" / "config.json").exists()
    assert m["mean_rating_gap"] == pytest.approx(0.625)
