"""The online-RL math by hand: GRPO's group-relative advantages, RLOO's leave-one-out baselines (the formulas TRL's
GRPOTrainer and RLOOTrainer compute inline, restated in ``autoalign.train.losses``) and PPO-ptx's pretraining term
(InstructGPT, eq. 2)."""

import math

import pytest
import torch

from autoalign.train.losses import group_relative_advantages, ptx_loss, rloo_baselines


def test_group_relative_advantages_by_hand():
    # one prompt, rewards 1, 0, 0, 1: mean 1/2, unbiased std sqrt((4 * 1/4) / 3) = 1/sqrt(3)
    adv = group_relative_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), eps=0.0)
    s = math.sqrt(3) / 2  # (1/2) / (1/sqrt(3))
    assert adv.tolist()[0] == pytest.approx([s, -s, -s, s])
    # two prompts are normalised apart; a group whose rewards are all equal gets no advantage
    adv = group_relative_advantages(torch.tensor([[2.0, 4.0], [3.0, 3.0]]), eps=0.0)
    # [2, 4]: mean 3, std sqrt(2): -1/sqrt(2), +1/sqrt(2); [3, 3]: 0 / (0 + eps) = 0
    assert adv[0].tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert group_relative_advantages(torch.tensor([[3.0, 3.0]])).tolist() == [[0.0, 0.0]]
    # unscaled (Dr. GRPO): the centred rewards
    assert group_relative_advantages(torch.tensor([[2.0, 4.0, 6.0]]), scale=False).tolist() == [[-2.0, 0.0, 2.0]]


def test_rloo_baselines_by_hand():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 6.0, 9.0, 0.0]])
    # b_i = mean of the other three: [1/3, 2/3, 2/3, 1/3] and [5, 4, 3, 6]
    b = rloo_baselines(r)
    assert b[0].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1 / 3])
    assert b[1].tolist() == pytest.approx([5.0, 4.0, 3.0, 6.0])
    # advantages r - b: [2/3, -2/3, -2/3, 2/3]; with k=2 each baseline is the other sample's reward
    assert (r - b)[0].tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3])
    assert rloo_baselines(torch.tensor([[1.0, 5.0]])).tolist() == [[5.0, 1.0]]
    with pytest.raises(ValueError):
        rloo_baselines(torch.tensor([[1.0]]))


def test_rloo_advantage_is_a_rescaled_centred_reward():
    # r_i - b_i = k/(k-1) (r_i - mean r): RLOO's advantage is GRPO's unscaled one times k/(k-1)
    r = torch.tensor([[0.3, 1.2, -0.5, 2.0, 0.0]])
    torch.testing.assert_close(r - rloo_baselines(r), group_relative_advantages(r, scale=False) * 5 / 4)


def test_ptx_term_by_hand():
    logps = torch.tensor([[-1.0, -2.0, -7.0], [-0.5, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # mean log-likelihood over the 3 real tokens: (-1 - 2 - 0.5) / 3 = -7/6; the loss is -gamma times it
    assert ptx_loss(logps, mask, gamma=0.5).item() == pytest.approx(0.5 * 7 / 6)
    assert ptx_loss(logps, mask, gamma=0.0).item() == 0.0
    x = logps.clone().requires_grad_()
    ptx_loss(x, mask, gamma=3.0).backward()
    # d/dx of -3 * sum(x * m) / 3 = -m: each real token's gradient is -1, the padding's 0
    torch.testing.assert_close(x.grad, -mask.float())
