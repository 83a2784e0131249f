"""Weak-to-strong's confidence loss (Burns et al. 2023, eq. 1) and its trainer's pieces, against hand-computed
values (2-example batches)."""

import math

import pytest
import torch

from autoalign.train.losses import confidence_alpha, confidence_loss, harden
from autoalign.train.trainers_w2s import answer_logodds
from autoalign.train.weak_to_strong import classifier_rows, soft_label


def test_harden_uses_the_weak_share_of_positives():
    # p = (sigmoid 2, sigmoid -1) = (0.8808, 0.2689); weak mean 0.6 -> t = the 0.4 quantile of p
    # = 0.2689 + 0.4 * (0.8808 - 0.2689) = 0.5137: only the first is hardened to 1
    p = torch.sigmoid(torch.tensor([2.0, -1.0]))
    assert harden(p, 0.6).tolist() == [1.0, 0.0]
    # the hardened labels follow the student, not the weak labels: here the student ranks the second first
    assert harden(torch.sigmoid(torch.tensor([-1.0, 2.0])), 0.5).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("alpha, expected", [
    # CE(f, f_w): item 1: -(0.8 log s(2) + 0.2 log s(-2)) = 0.101543 + 0.425386 = 0.526928
    #             item 2: -(0.4 log s(-1) + 0.6 log s(1)) = 0.525305 + 0.187957 = 0.713262
    # CE(f, f_t), f_t = (1, 0): -log s(2) = 0.126928, -log s(1) = 0.313262
    (0.0, (0.526928 + 0.713262) / 2),
    (0.5, (0.5 * 0.526928 + 0.5 * 0.126928 + 0.5 * 0.713262 + 0.5 * 0.313262) / 2),  # 0.420095
    (1.0, (0.126928 + 0.313262) / 2),
])
def test_confidence_loss_on_a_two_example_batch(alpha, expected):
    loss = confidence_loss(torch.tensor([2.0, -1.0]), torch.tensor([0.8, 0.4]), alpha)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_confidence_loss_has_gradients_only_through_the_student():
    z = torch.tensor([2.0, -1.0], requires_grad=True)
    confidence_loss(z, torch.tensor([0.8, 0.4]), 0.5).backward()
    # d/dz of mean((1-a) BCE(z, w) + a BCE(z, h)) = ((1-a)(s(z) - w) + a (s(z) - h)) / B
    s = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))]
    want = [(0.5 * (s[0] - 0.8) + 0.5 * (s[0] - 1.0)) / 2, (0.5 * (s[1] - 0.4) + 0.5 * (s[1] - 0.0)) / 2]
    assert z.grad is not None and z.grad.tolist() == pytest.approx(want, abs=1e-6)


def test_confidence_alpha_warms_up_linearly():
    assert confidence_alpha(0, 100, 0.5, 0.2) == 0.0
    assert confidence_alpha(10, 100, 0.5, 0.2) == pytest.approx(0.25)
    assert confidence_alpha(20, 100, 0.5, 0.2) == pytest.approx(0.5)
    assert confidence_alpha(90, 100, 0.5, 0.2) == pytest.approx(0.5)
    assert confidence_alpha(0, 100, 0.5, 0.0) == 0.5


def test_rows_carry_the_soft_label_losslessly():
    user = {"role": "user", "content": "Does it follow?"}
    yes = {"messages": [user, {"role": "assistant", "content": "Yes"}], "weight": 0.7}
    no = {"messages": [user, {"role": "assistant", "content": "No"}], "weight": 0.9}
    assert soft_label(yes) == pytest.approx(0.7) and soft_label(no) == pytest.approx(0.1)
    assert [r["weak"] for r in classifier_rows([yes, no])] == pytest.approx([0.7, 0.1])
    with pytest.raises(ValueError, match="Yes"):
        soft_label({"messages": [user, {"role": "assistant", "content": "Maybe"}]})


def test_answer_logodds_reads_the_position_before_the_answer():
    # vocabulary of 4; Yes = 2, No = 3; row 0's answer is token 2 (position 1 predicts it), row 1's is token 3
    logits = torch.zeros(2, 4, 4)
    logits[0, 1, 2], logits[0, 1, 3] = 1.5, -0.5  # z = 2.0
    logits[1, 2, 2], logits[1, 2, 3] = 0.0, 1.0  # z = -1.0
    labels = torch.tensor([[-100, -100, 2, 5], [-100, -100, -100, 3]])
    assert answer_logodds(logits, labels, (2, 3)).tolist() == pytest.approx([2.0, -1.0])
