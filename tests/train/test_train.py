"""Training through TRL, as phases: SFT raises the target's likelihood, DPO (from the SFT output) raises the
chosen-vs-rejected margin, LoRA is merged into a plain directory, and weighted SFT then DPO run in 2 processes
(gloo) under accelerate launch. More in tests/train/."""

from pathlib import Path

import pytest

from autoalign.models.hf import HFModel
from autoalign.recipe import TrainConfig
from autoalign.train.run import train_round
from tests.random_model import build_random_model

USER = [{"role": "user", "content": "hello"}]
SFT = [{"messages": USER + [{"role": "assistant", "content": "the answer is 42"}]}] * 8
DPO = [
    {"prompt": USER, "chosen": [{"role": "assistant", "content": "the answer is 42"}],
     "rejected": [{"role": "assistant", "content": "I can't help with that."}]}
] * 8


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_random_model(tmp_path_factory.mktemp("base"))


def _margin(path):
    lm = HFModel(path)
    good, bad = lm.logprobs([USER, USER], ["the answer is 42", "I can't help with that."])
    return good, good - bad


def test_sft_then_dpo_move_the_policy_the_right_way(base, tmp_path):
    good0, margin0 = _margin(base)
    cfg = TrainConfig(phases=[{"kind": "sft", "epochs": 3, "learning_rate": 3e-3, "batch_size": 4},
                              {"kind": "dpo", "epochs": 3, "learning_rate": 3e-3, "batch_size": 4}])
    metrics = train_round(Path(base), SFT, DPO, tmp_path, cfg, seed=0)
    assert metrics["trained"] and metrics["sft"]["steps"] == 6 and metrics["dpo"]["steps"] == 6
    good_sft, _ = _margin(tmp_path / "sft" / "model")
    _, margin_dpo = _margin(tmp_path / "model")
    assert good_sft > good0 + 1.0
    assert margin_dpo > margin0 + 1.0
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_lora_is_merged_into_a_plain_directory(base, tmp_path):
    cfg = TrainConfig(phases=[{"kind": "sft", "epochs": 2, "learning_rate": 5e-3, "batch_size": 4,
                               "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"}}])
    good0, _ = _margin(base)
    train_round(Path(base), SFT, [], tmp_path, cfg, seed=0)
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files
    assert _margin(tmp_path / "model")[0] > good0


def test_no_data_means_no_training(base, tmp_path):
    cfg = TrainConfig(phases=[{"kind": "sft"}, {"kind": "dpo"}])
    metrics = train_round(Path(base), [], [], tmp_path, cfg, seed=0)
    assert metrics["trained"] is False and not (tmp_path / "model").exists()
    assert [p["status"] for p in metrics["phases"]] == ["skipped", "skipped"]


def test_two_process_weighted_sft_then_dpo_under_accelerate(base, tmp_path):
    cfg = TrainConfig(phases=[{"kind": "sft", "epochs": 1, "batch_size": 2}, {"kind": "dpo", "epochs": 1, "batch_size": 2}],
                      launcher="accelerate", num_processes=2)
    weighted = [dict(r, weight=0.5 if i % 2 else 1.0) for i, r in enumerate(SFT)]
    metrics = train_round(Path(base), weighted, DPO, tmp_path, cfg, seed=0)
    # 8 rows / (2 per device x 2 processes) = 2 optimizer steps each; one process would take 4.
    assert metrics["sft"]["steps"] == 2 and metrics["sft"]["weighted"] and metrics["dpo"]["steps"] == 2
    assert [p["status"] for p in metrics["phases"]] == ["trained", "trained"]
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_accelerate_config_file_is_passed_through(tmp_path, monkeypatch):
    from autoalign.errors import UserError
    from autoalign.train.run import launch_command

    monkeypatch.delenv("ACCELERATE_CONFIG_FILE", raising=False)
    cfg = TrainConfig(method="dpo", launcher="accelerate", num_processes=2)  # the old shorthand still reads
    plain = launch_command(cfg, tmp_path / "spec.json")
    assert "--multi_gpu" in plain and "--config_file" not in plain and plain[-1] == str(tmp_path / "spec.json")
    ds = tmp_path / "zero2.yaml"
    ds.write_text("distributed_type: DEEPSPEED\ndeepspeed_config: {zero_stage: 2}\nnum_processes: 2\n")
    monkeypatch.setenv("ACCELERATE_CONFIG_FILE", str(ds))
    cmd = launch_command(cfg, tmp_path / "spec.json")
    assert cmd[cmd.index("--config_file") + 1] == str(ds) and "--multi_gpu" not in cmd
    monkeypatch.setenv("ACCELERATE_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(UserError, match="missing.yaml"):
        launch_command(cfg, tmp_path / "spec.json")
