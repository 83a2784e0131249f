"""Losses TRL 1.16 lacks, as pure functions of tensors: no model, no trainer, shapes in the docstrings, and the
paper's equation on the line that computes it. The trainers in this package call them; tests check them by hand.

- ``weighted_sft_loss``: SFT with a weight per example (``SFTExample.weight``); TRL's SFTTrainer has none.
- ``odpo_offset`` / ``odpo_loss`` / ``offset_reference_logps``: DPO with an offset (ODPO) from a per-pair margin
  (``Preference.margin``); TRL's DPOTrainer has no per-pair offset.
- ``ptx_loss``: InstructGPT's pretraining-mix term (PPO-ptx); TRL 1.16 has no PPOTrainer and no ptx term.
- ``group_relative_advantages`` / ``rloo_baselines``: the advantages TRL's GRPOTrainer and RLOOTrainer compute
  inline, restated as functions so they are tested by hand and reused (benchmarks, reports).
- ``confidence_loss`` / ``harden`` / ``confidence_alpha``: weak-to-strong's auxiliary confidence loss (Burns et
  al. 2023, eq. 1) for a binary judgement read from two answer tokens; TRL has no classification loss of this kind.
- ``multihead_bradley_terry_loss`` / ``per_axis_accuracy``: a reward model with one head per 3H axis, each pair
  trained and scored on its own axis's head; TRL's RewardTrainer has one scalar reward.
- ``mean_token_nll`` / ``stable_alignment_loss``: Stable Alignment's SFT + rating-margin hinge (Liu et al. 2024);
  TRL has no loss that scales a pair's margin by a rating gap on top of SFT.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_sft_loss(
    token_logps: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    num_tokens: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Weighted negative log-likelihood of the completion tokens, normalised like TRL's SFT loss.

    ``token_logps``: (B, T) log pi(y_t | x, y_<t) of each target token (any value where ``mask`` is 0);
    ``mask``: (B, T), 1 on the completion tokens; ``weight``: (B,), one weight per example;
    ``num_tokens``: the normaliser N, the completion tokens of the whole optimizer step (TRL's
    ``num_items_in_batch``, which spans gradient accumulation and ranks); default: ``mask.sum()`` of this batch.
    Returns a scalar.

    This is the reward-weighted likelihood of ReST's Improve step (Gulcehre et al. 2023, sec. 2: the NLL of each
    sample scaled by a per-sample weight), summed over tokens: with every weight 1 it is exactly TRL's loss
    (token-mean over the step), so a weight w counts an example as w copies of itself.
    """
    mask = mask.to(token_logps.dtype)
    n = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens, dtype=token_logps.dtype)
    per_example = (token_logps * mask).sum(dim=1)  # (B,): log pi(y_i | x_i), completion tokens only
    return -(weight.to(token_logps.dtype) * per_example).sum() / n.clamp(min=1)  # L = -(1/N) sum_i w_i log pi(y_i|x_i)


def odpo_offset(margin: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The ODPO offset of each pair from its margin: Delta = alpha * margin. ``margin``: (B,), how much better the
    chosen response is than the rejected one (the signal's score gap); ``scale``: alpha >= 0. Returns (B,).

    Amini et al. 2024 (DPO with an offset, sec. 3) take Delta as an increasing function of the score gap, scaled by
    alpha; here the identity of the gap, since a signal's margin is already on its own scale (alpha = 0 is DPO)."""
    return scale * margin  # Delta_i = alpha * m_i


def odpo_loss(
    chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, offset: torch.Tensor, beta: float
) -> torch.Tensor:
    """ODPO, per pair: -log sigma(beta * h_w - beta * h_l - Delta) with h = log pi(y|x) - log pi_ref(y|x)
    (Amini et al. 2024, sec. 3, the ODPO loss; Delta = 0 gives DPO, Rafailov et al. 2023, eq. 7).

    ``chosen_logratios``, ``rejected_logratios``, ``offset``: (B,). Returns (B,): the loss of each pair."""
    return -F.logsigmoid(beta * chosen_logratios - beta * rejected_logratios - offset)  # L_ODPO per pair


def offset_reference_logps(ref_chosen_logps: torch.Tensor, offset: torch.Tensor, beta: float) -> torch.Tensor:
    """ODPO through TRL's own sigmoid DPO loss: shift each pair's reference log-prob of the chosen response by
    Delta / beta. ``ref_chosen_logps``, ``offset``: (B,). Returns (B,).

    TRL computes -log sigma(beta * ((log pi_w - ref_w) - (log pi_l - ref_l))). With ref_w' = ref_w + Delta / beta,
    that is -log sigma(beta * h_w - beta * h_l - Delta): ``odpo_loss`` exactly, with the reference log-probs TRL
    precomputes once (``precompute_ref_log_probs``). TRL's logged rewards of the chosen responses are then lowered
    by Delta."""
    return ref_chosen_logps + offset / beta  # beta * (log pi_w - ref_w') = beta * h_w - Delta


def ptx_loss(token_logps: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """The pretraining-mix term of PPO-ptx, as a loss to add to the RL loss: -gamma * (mean log-likelihood of the
    pretraining tokens). ``token_logps``: (B, T) log pi(x_t | x_<t) of each pretraining token (any value where
    ``mask`` is 0); ``mask``: (B, T), 1 on real tokens; ``gamma`` >= 0. Returns a scalar.

    InstructGPT (Ouyang et al. 2022, eq. 2): objective(phi) = E_(x,y)~D_pi[r(x, y) - beta log(pi_RL(y|x) /
    pi_SFT(y|x))] + gamma E_x~D_pretrain[log pi_RL(x)]. Maximising it means minimising the RL loss plus this term;
    the expectation over D_pretrain is the token mean of the batch (the normalisation of TRL's SFT loss)."""
    mask = mask.to(token_logps.dtype)
    mean_loglik = (token_logps * mask).sum() / mask.sum().clamp(min=1)  # E_x~D_pretrain[log pi_RL(x)], per token
    return -gamma * mean_loglik  # Ouyang et al. 2022, eq. 2: + gamma E[log pi_RL(x)], as a loss


def group_relative_advantages(rewards: torch.Tensor, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's outcome advantages: each completion's reward minus its group's mean, divided by the group's standard
    deviation (``scale``; TRL's ``scale_rewards="group"``, with TRL's ``eps`` and its unbiased std). ``rewards``:
    (P, G), G completions of each of P prompts. Returns (P, G).

    Shao et al. 2024 (DeepSeekMath, sec. 4.1.2): A_i = (r_i - mean(r)) / std(r) over the group of one prompt."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)  # r_i - mean(r_1..r_G)
    if not scale:
        return centred  # Dr. GRPO (Liu et al. 2025): no division by the std
    return centred / (rewards.std(dim=1, keepdim=True) + eps)  # Shao et al. 2024, sec. 4.1.2: / std(r)


def rloo_baselines(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO's baseline of each completion: the mean reward of the other G-1 completions of its prompt.
    ``rewards``: (P, G) with G >= 2. Returns (P, G); the advantage is ``rewards - rloo_baselines(rewards)``.

    Ahmadian et al. 2024 (Back to Basics, eq. 4): b_i = 1/(k-1) sum_{j != i} r_j."""
    k = rewards.shape[1]
    if k < 2:
        raise ValueError("rloo_baselines: a leave-one-out baseline needs at least 2 completions per prompt")
    return (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)  # Ahmadian et al. 2024, eq. 4


def harden(probs: torch.Tensor, positive_rate: torch.Tensor | float) -> torch.Tensor:
    """The hardened predictions of Burns et al. 2023's confidence loss: 1 where ``probs`` exceeds the adaptive
    threshold t, the (1 - positive_rate) quantile of the batch's ``probs``, so the share of hardened positives
    follows the weak labels' share (their sec. 4.3.2: "the threshold is adaptive, so that ... predictions are
    balanced as the weak labels"). ``probs``: (B,) in [0, 1]; ``positive_rate``: mean of the weak labels.
    Returns (B,) of 0.0 / 1.0, detached (a target, not a path for gradients)."""
    p = probs.detach().float()
    q = torch.as_tensor(1.0 - positive_rate, dtype=p.dtype).clamp(0.0, 1.0)
    t = torch.quantile(p, q)  # linear interpolation between order statistics, as numpy's default
    return (p > t).to(probs.dtype)  # f_t(x) = I[f(x) > t]


def confidence_alpha(step: int, total_steps: int, alpha: float, warmup: float = 0.2) -> float:
    """The confidence loss's weight at optimizer step ``step`` of ``total_steps``: linear warm-up from 0 to
    ``alpha`` over the first ``warmup`` share of training (Burns et al. 2023, sec. 4.3.2 and app. A.4: alpha_max
    0.5 or 0.75, warmed up over the first 20% of training), then ``alpha``."""
    if warmup <= 0.0 or total_steps <= 0:
        return alpha
    frac = step / (warmup * total_steps)
    return alpha * min(1.0, max(0.0, frac))


def confidence_loss(logits: torch.Tensor, weak: torch.Tensor, alpha: float) -> torch.Tensor:
    """The auxiliary confidence loss of weak-to-strong generalisation, for a binary classifier.

    ``logits``: (B,) the student's log-odds z(x) of the positive class, f(x) = sigmoid(z(x)); ``weak``: (B,) the
    weak supervisor's soft labels f_w(x) = P_w(positive) in [0, 1]; ``alpha`` in [0, 1]. Returns a scalar, the
    batch mean.

    Burns et al. 2023, eq. 1: L_conf(f) = (1 - alpha) CE(f(x), f_w(x)) + alpha CE(f(x), f_t(x)), with f_t(x) the
    student's own hardened predictions (``harden``, threshold adaptive to the weak labels' share of positives).
    alpha = 0 is naive fine-tuning on the weak soft labels (cross-entropy with a soft target)."""
    weak = weak.to(logits.dtype)
    hard = harden(torch.sigmoid(logits), weak.mean())
    ce_weak = F.binary_cross_entropy_with_logits(logits, weak, reduction="none")  # CE(f(x), f_w(x))
    ce_self = F.binary_cross_entropy_with_logits(logits, hard, reduction="none")  # CE(f(x), f_t(x))
    return ((1.0 - alpha) * ce_weak + alpha * ce_self).mean()  # Burns et al. 2023, eq. 1


def spin_loss(
    policy_target_logps: torch.Tensor,
    policy_own_logps: torch.Tensor,
    prev_target_logps: torch.Tensor,
    prev_own_logps: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """SPIN's per-pair loss (Chen et al. 2024, "Self-Play Fine-Tuning", arXiv 2401.01335, sec. 4, L_SPIN):
    ell(lam * log[p_theta(y|x) / p_theta_t(y|x)] - lam * log[p_theta(y'|x) / p_theta_t(y'|x)]) with the logistic
    loss ell(t) = log(1 + exp(-t)); ``y`` the SFT target, ``y'`` the previous iterate theta_t's own answer. All
    inputs [pairs] summed sequence log-probs. ell(t) = -log sigmoid(t), so this is TRL's DPO ``sigmoid`` loss
    -log sigmoid(beta * (chosen_logratio - rejected_logratio)) with beta = lam, the reference = theta_t, chosen =
    target and rejected = own answer: the ``spin`` phase trains it with TRL's DPOTrainer (tests check the two agree)."""
    t = lam * (policy_target_logps - prev_target_logps) - lam * (policy_own_logps - prev_own_logps)
    return F.softplus(-t)  # ell(t) = log(1 + exp(-t))  (Chen et al. 2024, L_SPIN)


def multihead_bradley_terry_loss(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, head: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """The Bradley-Terry loss of a reward model with one scalar head per axis, each pair read on its own axis's
    head a: mean over pairs of -log sigma(r_a(x, y_w) - r_a(x, y_l) - m). ``r_chosen``, ``r_rejected``: (B, K),
    all K heads' rewards of each pair's two responses; ``head``: (B,) long, the pair's head index a in [0, K);
    ``margin``: (B,) or None (m = 0). Returns a scalar.

    Why only the pair's head: a judge's pair on a harmlessness prompt says nothing about which response is more
    honest, so the other heads get no gradient from it (one trunk, shared; K heads, each fitted to its axis).
    Ouyang et al. 2022, eq. 1 per head (the margin m is Llama 2's, Touvron et al. 2023, eq. 2)."""
    idx = head.long().view(-1, 1)
    diff = r_chosen.gather(1, idx).squeeze(1) - r_rejected.gather(1, idx).squeeze(1)  # r_a(x, y_w) - r_a(x, y_l)
    if margin is not None:
        diff = diff - margin.to(diff.dtype)
    return -F.logsigmoid(diff).mean()  # Ouyang et al. 2022, eq. 1: -E[log sigma(r_a(x, y_w) - r_a(x, y_l))]


def per_axis_accuracy(
    r_chosen: list[float], r_rejected: list[float], axes: list[str]
) -> dict[str, tuple[int, int]]:
    """Per axis: (hits, pairs), hits = pairs where the chosen response's reward on that axis's head is strictly
    higher than the rejected one's (ties count as errors, as ``reward_model.pairwise_accuracy``). ``r_chosen[i]``
    and ``r_rejected[i]`` are pair i's rewards already read on its axis's head; ``axes[i]`` its axis. Counts, not
    shares, so a caller can put a Wilson interval on each; the accuracy is hits / pairs. Axes in sorted order."""
    if not len(r_chosen) == len(r_rejected) == len(axes):
        raise ValueError("per_axis_accuracy: r_chosen, r_rejected and axes must have the same length")
    out: dict[str, list[int]] = {}
    for c, r, a in zip(r_chosen, r_rejected, axes):
        hits_n = out.setdefault(a, [0, 0])
        hits_n[0] += int(c > r)  # r_a(chosen) > r_a(rejected)
        hits_n[1] += 1
    return {a: (h, n) for a, (h, n) in sorted(out.items())}


def mean_token_nll(token_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each response's negative log-likelihood per completion token: -(1/|y|) sum_t log pi(y_t | x, y_<t).
    ``token_logps``, ``mask``: (B, T), ``mask`` 1 on the completion tokens. Returns (B,). Stable Alignment's
    losses are token means per response (the authors' trainer takes the cross-entropy mean of each response)."""
    mask = mask.to(token_logps.dtype)
    return -(token_logps * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def stable_alignment_loss(
    best_nll: torch.Tensor,
    low_nll: torch.Tensor,
    rating_gap: torch.Tensor,
    margin: float = 1.0,
    lam: float = 0.5,
) -> torch.Tensor:
    """Stable Alignment's objective on (best-rated, lower-rated) response pairs (Liu et al. 2024, "Training Socially
    Aligned Language Models on Simulated Social Interactions", sec. 3.2): SFT on the best-rated response plus a hinge
    that asks the lower-rated response's loss to exceed it by the rating gap times the margin M:

        L = L_SFT + lambda * L_Diff,   L_Diff = max{0, L_SFT - L_Low + (r_best - r_low) * M}

    ``best_nll``, ``low_nll``: (B,) per-token NLL of the best- and the lower-rated response (``mean_token_nll``);
    ``rating_gap``: (B,) r_best - r_low >= 0 on the unit scale (ratings in [0, 1]: a 1-7 rating r reads (r - 1) / 6,
    so a gap of the whole scale is M nats per token; the authors' code divides 1-7 ratings by 7); ``margin``: M;
    ``lam``: lambda (the authors' code defaults to M = 1, lambda = 0.5; their README trains with M = 10 and
    lambda = 0.2). With several lower-rated responses the authors average the terms before the hinge; here each
    pair is one term. Returns a scalar, the mean over pairs."""
    l_diff = torch.clamp(best_nll - low_nll + rating_gap.to(best_nll.dtype) * margin, min=0.0)  # L_Diff (sec. 3.2)
    return (best_nll + lam * l_diff).mean()  # L_StableAlignment = L_SFT + lambda * L_Diff (Liu et al. 2024, sec. 3.2)
