"""SPIN, Self-Refine, context distillation and Linear Alignment: hand-computed pure parts (the Linear Alignment
shift on a 3-token example, SPIN's loss against TRL's sigmoid form, the stopping rules), then the wrappers and
signals on lab:tiny (a real model, no training)."""

import math

import pytest
import torch
import torch.nn.functional as F

from autoalign.decoding.linear_alignment import linear_alignment_shift, nucleus_mask
from autoalign.decoding.system_prompt import with_system
from autoalign.signals.inductive.self_refine import stop_reason
from autoalign.signals.inductive.spin import spin_stop
from autoalign.train.losses import spin_loss
from autoalign.train.spin import logged_separation


def test_linear_alignment_shift_on_three_tokens():
    # Q_p = log [0.5, 0.25, 0.25], Q = log [0.25, 0.5, 0.25]; alpha = 1: Q* = 2 Q_p - Q = log [1, 1/8, 1/4] + const
    # -> softmax = [1, 1/8, 1/4] / (11/8) = [8/11, 1/11, 2/11]
    cond = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.25)]]) + 3.0  # logits: any per-row constant
    plain = torch.tensor([[math.log(0.25), math.log(0.5), math.log(0.25)]]) - 1.0
    got = linear_alignment_shift(cond, plain, alpha=1.0).exp()[0].tolist()
    assert got == pytest.approx([8 / 11, 1 / 11, 2 / 11], abs=1e-6)
    # alpha = 0: the principle-conditioned distribution itself
    assert linear_alignment_shift(cond, plain, 0.0).exp()[0].tolist() == pytest.approx([0.5, 0.25, 0.25], abs=1e-6)
    # the authors' form (1 + ratio) * Q_p - ratio * Q on raw logits gives the same distribution
    raw = (2.0 * cond - 1.0 * plain).softmax(-1)[0].tolist()
    assert raw == pytest.approx(got, abs=1e-6)


def test_nucleus_mask_keeps_the_mass_before_top_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    # mass before each sorted token: 0, 0.5, 0.8, 0.95 -> with top_p 0.8 the third (0.8 >= 0.8) and fourth are cut
    assert nucleus_mask(probs.log(), 0.8)[0].tolist() == [False, False, True, True]
    assert nucleus_mask(probs.log(), 1.0)[0].tolist() == [False, False, False, False]


def test_spin_loss_by_hand_and_as_trl_sigmoid():
    # target log-ratio: -1 - (-2) = 1; own-answer log-ratio: -3 - (-2) = -1; lam 0.5 -> t = 0.5 * 2 = 1
    pt, po, rt, ro = (torch.tensor([x]) for x in (-1.0, -3.0, -2.0, -2.0))
    loss = spin_loss(pt, po, rt, ro, lam=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1.0)), abs=1e-6)  # 0.313262
    # TRL's DPO sigmoid loss (trl/trainer/dpo_trainer.py: -logsigmoid(beta * delta_score)), beta = lam
    delta = (pt - rt) - (po - ro)
    assert loss.item() == pytest.approx((-F.logsigmoid(0.5 * delta)).item(), abs=1e-6)


def test_spin_stop_rule():
    assert spin_stop(0.95, None, 0.9, 0.55) is not None
    assert spin_stop(0.2, 0.52, 0.9, 0.55) is not None  # near chance last round
    assert spin_stop(0.2, 0.9, 0.9, 0.55) is None
    assert spin_stop(0.2, 0.5, 0.9, None) is None  # the accuracy rule off


def test_logged_separation_reads_trl_metrics():
    logs = [{"loss": 0.6, "rewards/accuracies": 0.5, "rewards/margins": 0.1, "step": 5},
            {"loss": 0.4, "rewards/accuracies": 0.7, "rewards/margins": 0.3, "step": 10}, {"train_loss": 0.5}]
    sep = logged_separation(logs)
    assert sep["reward_accuracy"] == pytest.approx(0.6) and sep["reward_accuracy_last"] == pytest.approx(0.7)
    assert sep["reward_margin"] == pytest.approx(0.2)
    assert logged_separation([{"train_loss": 1.0}])["reward_accuracy"] is None


def test_self_refine_stopping_rule():
    assert stop_reason(False, "a", None, 0, 2) == "no_change_needed"
    assert stop_reason(True, "The answer is 4.", "the answer is 4. ", 1, 3) == "unchanged"
    assert stop_reason(True, "a", "b", 1, 2) is None
    assert stop_reason(True, "a", "b", 2, 2) == "max_iterations"


def test_with_system_prepends_or_joins():
    chat = [{"role": "user", "content": "hi"}]
    assert with_system(chat, "S") == [{"role": "system", "content": "S"}, *chat]
    assert with_system([{"role": "system", "content": "T"}, *chat], "S")[0]["content"] == "S\nT"
    assert with_system("raw text", "S") == "raw text"


# ---- on lab:tiny --------------------------------------------------------------------------------------------
SP = "You are a helpful, harmless and honest assistant."


@pytest.fixture(scope="module")
def tiny_prompts():
    from autoalign.lab.prompts import lab_prompts

    return lab_prompts(4, seed=3)


def test_linear_alignment_at_alpha_zero_is_the_system_prompted_policy(tiny_lm, tiny_prompts):
    from autoalign.decoding.linear_alignment import LinearAlignedLM
    from autoalign.decoding.system_prompt import SystemPromptLM
    from autoalign.models.base import Sampling

    chats = [p.messages for p in tiny_prompts]
    for temperature in (0.0, 0.9):
        s = Sampling(n=2, temperature=temperature, max_new_tokens=12, seed=5)
        la = LinearAlignedLM(tiny_lm, SP, alpha=0.0).generate(chats, s)
        sp = SystemPromptLM(tiny_lm, SP).generate(chats, s)
        assert [[c.text for c in cs] for cs in la] == [[c.text for c in cs] for cs in sp]
    shifted = LinearAlignedLM(tiny_lm, SP, alpha=2.0, support_top_p=0.9).generate(chats, Sampling(max_new_tokens=12))
    assert all(len(cs) == 1 and cs[0].logprob is not None and cs[0].logprob <= 0 for cs in shifted)


def test_self_refine_wrapper_and_signal_on_lab_tiny(tiny_lm, tiny_prompts):
    from autoalign.decoding.self_refine import SelfRefineLM
    from autoalign.models.base import Sampling
    from autoalign.records import Sample
    from autoalign.signals.catalog import build_signal

    lm = SelfRefineLM(tiny_lm, threshold=0.99, max_iterations=2, max_new_tokens=16)
    outs = lm.generate([p.messages for p in tiny_prompts], Sampling(n=1, temperature=0.0, max_new_tokens=16))
    assert len(outs) == len(tiny_prompts) and lm.stats["answers"] == len(tiny_prompts)
    assert lm.stats["revisions"] <= 2 * len(tiny_prompts)
    samples = [Sample(prompt_id=p.id, index=0, text=cs[0].text, model="lab:tiny") for p, cs in zip(tiny_prompts, outs)]
    signal = build_signal("self_refine", {"threshold": 0.99, "keep": "all", "max_new_tokens": 16})
    res = signal(tiny_prompts, samples, tiny_lm)
    assert len(res.labels) == len(tiny_prompts) and len(res.sft) == len(tiny_prompts)
    assert sum(res.stats["stop"].values()) == len(tiny_prompts)
    for lab in res.labels:
        assert lab.detail["revisions"] <= 2 and lab.kind == "unit"


def test_context_distillation_and_spin_signals_on_lab_tiny(tiny_lm, tiny_prompts):
    from autoalign.models.base import Sampling
    from autoalign.records import Sample
    from autoalign.signals.catalog import build_signal

    outs = tiny_lm.generate([p.messages for p in tiny_prompts], Sampling(n=2, temperature=0.9, max_new_tokens=16))
    samples = [Sample(prompt_id=p.id, index=j, text=c.text, model="lab:tiny")
               for p, cs in zip(tiny_prompts, outs) for j, c in enumerate(cs)]
    cd = build_signal("context_distillation", {"system_prompt": SP, "principles": True, "max_new_tokens": 16})
    res = cd(tiny_prompts, samples, tiny_lm)
    assert res.sft and all(m["role"] != "system" for ex in res.sft for m in ex.messages)
    assert res.stats["prompts"] == len(tiny_prompts)
    spin = build_signal("spin", {"target": "lab:tiny", "max_new_tokens": 16, "max_per_prompt": 2},
                        load_lm=lambda uri, **o: tiny_lm)
    res = spin(tiny_prompts, samples, tiny_lm)
    assert res.stats["with_target"] == len(tiny_prompts) and res.stats["stopped"] is None
    for pref in res.preferences:
        assert pref.chosen != pref.rejected
    stopped = build_signal("spin", {"target": "lab:tiny", "stop_identical": 0.0}, load_lm=lambda uri, **o: tiny_lm)
    assert stopped(tiny_prompts, samples, tiny_lm).preferences == []


def test_the_processor_reads_the_unconditioned_model_with_its_cache(tiny_lm):
    """Q(. | x, y<t) from the processor's cached, left-padded run equals a fresh forward on x + y<t."""
    from autoalign.decoding.linear_alignment import processor_class

    tok, model = tiny_lm.tokenizer, tiny_lm.model
    plain = [tok("Compute 2 + 3.")["input_ids"], tok("Hi")["input_ids"]]
    w = max(map(len, plain))
    ids = torch.tensor([[tok.pad_token_id] * (w - len(x)) + x for x in plain])
    mask = torch.tensor([[0] * (w - len(x)) + [1] * len(x) for x in plain])
    proc = processor_class()(model, ids, mask, cond_width=7, alpha=1.0)
    cond = torch.zeros((2, 7), dtype=torch.long)
    gen = torch.tensor([[5, 9, 11], [6, 8, 12]])
    with torch.inference_mode():
        for t in range(gen.shape[1] + 1):
            got = proc._unconditioned_logits(torch.cat([cond, gen[:, :t]], dim=1))
            for r in range(2):
                seq = torch.tensor([plain[r] + gen[r, :t].tolist()])
                want = model(input_ids=seq).logits[0, -1]
                assert torch.allclose(got[r], want, atol=1e-4)
