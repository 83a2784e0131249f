"""Phases end to end on lab:tiny with a handful of rows: sft -> dpo in order (each phase trains the previous
one's output), a phase without data skipped and recorded, KTO and ORPO through TRL, and the record fields that
reach training: ``SFTExample.weight`` (weighted SFT) and ``Preference.margin`` (the opt-in ODPO offset)."""

import math
from pathlib import Path

import pytest
import torch

from autoalign.models.hf import HFModel
from autoalign.recipe import TrainConfig
from autoalign.records import Preference, SFTExample, preference_rows, sft_rows
from autoalign.train import phases as phases_mod
from autoalign.train.run import train_round

USER = [{"role": "user", "content": "What is 2 + 2?"}]
GOOD, BAD = "The answer is 4.", "I can't help with that."


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sft(n=4, weight=1.0):
    return sft_rows([SFTExample(prompt_id=f"p{i}", signal="t", weight=weight,
                                messages=[*USER, {"role": "assistant", "content": GOOD}]) for i in range(n)])


def _prefs(n=4, margin=1.0):
    return preference_rows([Preference(prompt_id=f"p{i}", prompt=USER, chosen=GOOD, rejected=BAD, signal="t",
                                       margin=margin) for i in range(n)])


def _logps(path):
    lm = HFModel(path, device="cpu")
    good, bad = lm.logprobs([USER, USER], [GOOD, BAD])
    return good, good - bad


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def test_sft_then_dpo_in_order_each_on_the_last_ones_output(tiny_model_dir, tmp_path, monkeypatch, capfd):
    seen = []
    real = phases_mod.PHASES["dpo"]

    def dpo_run(cfg, policy, *args):
        seen.append(str(policy))
        return real.run(cfg, policy, *args)

    monkeypatch.setitem(phases_mod.PHASES, "dpo", phases_mod.PhaseKind(real.config, dpo_run))
    cfg = TrainConfig(phases=[{"kind": "sft", "batch_size": 2, "max_steps": 2},
                              {"kind": "dpo", "batch_size": 2, "max_steps": 2, "learning_rate": 5e-4}])
    good0, margin0 = _logps(tiny_model_dir)
    m = train_round(Path(tiny_model_dir), _sft(), _prefs(), tmp_path, cfg, seed=0)
    assert m["phases"] == [{"name": "sft", "kind": "sft", "status": "trained"},
                           {"name": "dpo", "kind": "dpo", "status": "trained"}]
    assert m["trained"] and m["sft"]["steps"] == 2 and m["dpo"]["steps"] == 2 and m["dpo"]["pairs"] == 4
    assert seen == [str(tmp_path / "sft" / "model")]  # DPO started from the SFT phase's policy
    assert m["policy_dir"] == str(tmp_path / "dpo" / "model")
    assert (tmp_path / "model").resolve() == (tmp_path / "dpo" / "model").resolve()
    good_sft, margin_sft = _logps(tmp_path / "sft" / "model")
    _, margin_dpo = _logps(tmp_path / "model")
    assert good_sft > good0 + 0.5  # SFT raised the target's likelihood
    assert margin_dpo > margin_sft + 1.0  # and DPO, from there, the chosen-vs-rejected margin
    printed = capfd.readouterr()
    # no bar for the reference pass TRL runs while the DPO trainer is built (train/common.no_tqdm)
    assert "Computing reference" not in printed.out + printed.err


def test_a_phase_without_data_is_skipped_and_recorded(tiny_model_dir, tmp_path):
    cfg = TrainConfig(phases=[{"kind": "dpo", "max_steps": 1}, {"kind": "sft", "batch_size": 2, "max_steps": 1}])
    m = train_round(Path(tiny_model_dir), _sft(2), [], tmp_path, cfg, seed=0)
    assert m["phases"][0] == {"name": "dpo", "kind": "dpo", "status": "skipped", "reason": "no preference pairs"}
    assert m["phases"][1]["status"] == "trained" and "dpo" not in m and not (tmp_path / "dpo").exists()
    assert m["policy_dir"] == str(tmp_path / "sft" / "model")


def test_kto_unpairs_the_preferences_and_trains(tiny_model_dir, tmp_path):
    from autoalign.train.kto import kto_rows

    rows = kto_rows(_prefs(3), seed=0)
    assert sorted((r["completion"][0]["content"], r["label"]) for r in rows) == [(BAD, False)] * 3 + [(GOOD, True)] * 3
    assert rows == kto_rows(_prefs(3), seed=0) and rows != kto_rows(_prefs(3), seed=1)  # a seeded order
    cfg = TrainConfig(phases=[{"kind": "kto", "batch_size": 4, "max_steps": 2, "learning_rate": 2e-3}])
    _, margin0 = _logps(tiny_model_dir)
    m = train_round(Path(tiny_model_dir), [], _prefs(4), tmp_path, cfg, seed=0)
    assert m["kto"]["steps"] == 2 and m["kto"]["examples"] == 8
    assert _logps(tmp_path / "model")[1] > margin0


def test_orpo_trains_from_trl_experimental(tiny_model_dir, tmp_path):
    cfg = TrainConfig(phases=[{"kind": "orpo", "batch_size": 2, "max_steps": 2}])
    m = train_round(Path(tiny_model_dir), [], _prefs(4), tmp_path, cfg, seed=0)
    assert m["orpo"]["steps"] == 2 and (tmp_path / "model" / "model.safetensors").exists()


def test_sft_weights_reach_the_loss(tiny_model_dir, tmp_path):
    from autoalign.train.sft import train_sft

    kw = dict(seed=0, batch_size=2, max_steps=2, learning_rate=2e-3)
    base = _weights(tiny_model_dir)
    trl = train_sft(tiny_model_dir, _sft(), tmp_path / "trl", **kw)
    ones = train_sft(tiny_model_dir, _sft(), tmp_path / "ones", weighted=True, **kw)
    # weights of 1 through the weighted trainer: TRL's own loss and update, to the last bit
    assert not trl["weighted"] and ones["weighted"] and ones["train_loss"] == pytest.approx(trl["train_loss"], rel=1e-6)
    a, b = _weights(tmp_path / "trl" / "model"), _weights(tmp_path / "ones" / "model")
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], base[k]) for k in a)
    # weight 0 everywhere: no loss, no update; the sft phase turns weighting on by itself when a weight is not 1
    cfg = TrainConfig(phases=[{"kind": "sft", **{k: v for k, v in kw.items() if k != "seed"}}])
    m = train_round(Path(tiny_model_dir), _sft(weight=0.0), [], tmp_path / "zero", cfg, seed=0)
    assert m["sft"]["weighted"] and m["sft"]["train_loss"] == 0.0
    zero = _weights(tmp_path / "zero" / "model")
    assert all(torch.equal(zero[k], base[k]) for k in base)


def test_the_margin_is_an_odpo_offset_only_when_asked(tiny_model_dir, tmp_path):
    kw = {"kind": "dpo", "batch_size": 4, "max_steps": 1}
    runs = {}
    for name, extra in {"dpo": {}, "alpha0": {"margin": "offset", "margin_scale": 0.0},
                        "odpo": {"margin": "offset", "margin_scale": 2.0}}.items():
        cfg = TrainConfig(phases=[{**kw, **extra}])
        runs[name] = train_round(Path(tiny_model_dir), [], _prefs(4, margin=0.35), tmp_path / name, cfg, seed=0)["dpo"]
    assert runs["dpo"]["train_loss"] == runs["alpha0"]["train_loss"]  # alpha = 0 is DPO, exactly
    # first step: the policy is its reference, so the loss is -log sigma(-Delta) with Delta = 2.0 * 0.35 = 0.7,
    # against DPO's -log sigma(0) = log 2
    assert runs["dpo"]["train_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert runs["odpo"]["train_loss"] == pytest.approx(math.log(1 + math.exp(0.7)), abs=1e-4)
