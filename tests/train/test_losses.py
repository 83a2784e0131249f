"""The losses TRL lacks (autoalign.train.losses), against numbers worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from autoalign.train.losses import odpo_loss, odpo_offset, offset_reference_logps, weighted_sft_loss

# two examples: 2 completion tokens (log-probs -1, -2) and 1 (-0.5); masked positions hold junk that must not count
LOGPS = torch.tensor([[-1.0, -2.0, -7.0], [-0.5, -9.0, -9.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


def test_weighted_sft_loss_by_hand():
    # weights 1 and 2: -(1 * (-1 - 2) + 2 * (-0.5)) / 3 tokens = 4 / 3
    assert weighted_sft_loss(LOGPS, MASK, torch.tensor([1.0, 2.0])).item() == pytest.approx(4 / 3)
    # the normaliser of the whole optimizer step (TRL's num_items_in_batch), here 8 tokens: 4 / 8
    assert weighted_sft_loss(LOGPS, MASK, torch.tensor([1.0, 2.0]), num_tokens=8).item() == pytest.approx(0.5)
    # weight 0 drops an example: only the first one's 3 nats count, over all 3 tokens
    assert weighted_sft_loss(LOGPS, MASK, torch.tensor([1.0, 0.0])).item() == pytest.approx(1.0)


def test_weights_of_one_are_trls_token_mean():
    ones = weighted_sft_loss(LOGPS, MASK, torch.ones(2))
    assert ones.item() == pytest.approx((1 + 2 + 0.5) / 3)
    # TRL's own line (sft_trainer.compute_loss): -log_probs.sum() / num_tokens, log-probs zero where masked
    trl = -(LOGPS * MASK).sum() / MASK.sum()
    assert ones.item() == pytest.approx(trl.item())


def test_weighted_sft_loss_gradient_scales_with_the_weight():
    x = LOGPS.clone().requires_grad_()
    weighted_sft_loss(x, MASK, torch.tensor([1.0, 2.0])).backward()
    torch.testing.assert_close(x.grad, torch.tensor([[-1 / 3, -1 / 3, 0.0], [-2 / 3, 0.0, 0.0]]))


def test_odpo_offset_and_loss_by_hand():
    assert odpo_offset(torch.tensor([0.5, 1.0, 0.0]), scale=2.0).tolist() == [1.0, 2.0, 0.0]
    h_w, h_l = torch.tensor([2.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 0.0])
    loss = odpo_loss(h_w, h_l, torch.tensor([1.0, 0.0, 0.7]), beta=0.5)
    # -log sigma(0.5*2 - 0 - 1) = log 2;  Delta = 0 is DPO: -log sigma(1) = log(1 + e^-1);  -log sigma(-0.7)
    assert loss.tolist() == pytest.approx([math.log(2), math.log(1 + math.exp(-1)), math.log(1 + math.exp(0.7))])


def test_the_shifted_reference_turns_trls_sigmoid_loss_into_odpo():
    beta, offset = 0.5, torch.tensor([1.0, 0.3])
    pi_w, pi_l = torch.tensor([-8.0, -3.0]), torch.tensor([-11.0, -4.0])
    ref_w, ref_l = torch.tensor([-10.0, -3.5]), torch.tensor([-10.0, -4.5])
    shifted = offset_reference_logps(ref_w, offset, beta)
    assert shifted.tolist() == pytest.approx([-8.0, -2.9])  # ref_w + Delta / beta
    # TRL's sigmoid line (dpo_trainer._compute_loss): -logsigmoid(beta * (chosen_logratios - rejected_logratios))
    trl = -F.logsigmoid(beta * ((pi_w - shifted) - (pi_l - ref_l)))
    assert trl.tolist() == pytest.approx(odpo_loss(pi_w - ref_w, pi_l - ref_l, offset, beta).tolist())
    # first pair by hand: h_w = 2, h_l = -1, so -log sigma(0.5 * 3 - 1) = log(1 + e^-0.5)
    assert trl[0].item() == pytest.approx(math.log(1 + math.exp(-0.5)))
