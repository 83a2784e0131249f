"""PPO-ptx (InstructGPT, eq. 2) as a subclass of TRL's GRPOTrainer: its config, the pretraining text sources,
the loss it adds (TRL's loss + the ptx term, scaled for accumulation), a judge as a reward, vLLM's clear error, and
the phase end to end on lab:tiny."""

import json
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from autoalign.errors import UserError
from autoalign.recipe import TrainConfig, load_recipe
from autoalign.records import Prompt
from autoalign.train import grpo, ppo_ptx
from autoalign.train.losses import ptx_loss
from autoalign.train.phases import PHASES
from autoalign.train.run import train_round

BASE = {"name": "t", "signals": [{"method": "execution", "params": {"mode": "sft"}}]}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "phase, message",
    [
        ({"kind": "ppo_ptx", "gamma": -1}, "train.phases.0.ppo_ptx.gamma: Input should be greater than or equal to 0"),
        ({"kind": "ppo_ptx", "ptx": {"source": "file"}}, "train.phases.0.ppo_ptx.ptx: Value error, path: the file"),
        ({"kind": "ppo_ptx", "ptx": {"source": "web"}}, "train.phases.0.ppo_ptx.ptx.source: Input should be"),
        ({"kind": "grpo", "rewards": [{"scorer": "judge"}]},
         "train.phases.0.grpo.rewards.0: Value error, model: the judge scorer needs a model URI"),
        ({"kind": "grpo", "rewards": [{"scorer": "execution", "model": "lab:teacher"}]},
         "train.phases.0.grpo.rewards.0: Value error, model: the execution scorer takes no model"),
    ],
)
def test_a_wrong_ppo_ptx_phase_is_one_line_naming_the_field(phase, message):
    with pytest.raises(UserError) as err:
        load_recipe(None, [], data=dict(BASE, train={"phases": [phase]}))
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)


def test_use_vllm_without_vllm_is_one_clear_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(UserError) as err:
        load_recipe(None, [], data=dict(BASE, train={"phases": [{"kind": "grpo", "use_vllm": True}]}))
    assert "\n" not in str(err.value) and "use_vllm: vllm is not installed" in str(err.value)
    assert TrainConfig(phases=[{"kind": "rloo", "use_vllm": False}]).phases[0].use_vllm is False


def test_the_phase_is_tabled_and_consumes_prompts():
    cfg = TrainConfig(phases=[{"kind": "ppo_ptx", "gamma": 2.0, "ptx": {"count": 8}}])
    (p,) = cfg.phases
    assert type(p) is PHASES["ppo_ptx"].config is ppo_ptx.PPOPtxPhase
    assert p.consumes == "prompts" and p.gamma == 2.0 and p.ptx.source == "lab" and p.loss_type == "grpo"
    assert TrainConfig.model_validate(cfg.model_dump()).model_dump() == cfg.model_dump()


def test_ptx_sources_lab_and_file(tmp_path):
    texts = ppo_ptx.ptx_texts(ppo_ptx.PtxData(count=6), seed=1)
    assert len(texts) == 6 and all(t.endswith("<|end|>\n") for t in texts)
    assert texts == ppo_ptx.ptx_texts(ppo_ptx.PtxData(count=6), seed=1)  # deterministic in the seed
    f = tmp_path / "ptx.jsonl"
    f.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(5)))
    got = ppo_ptx.ptx_texts(ppo_ptx.PtxData(source="file", path=str(f), count=3), seed=0)
    assert len(got) == 3 and set(got) <= {f"doc {i}" for i in range(5)}
    f.write_text('{"txt": 1}\n')
    with pytest.raises(UserError, match="line 1"):
        ppo_ptx.file_texts(3, 0, str(f))


def test_the_trainer_adds_gamma_times_the_ptx_loss_scaled_for_accumulation(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    batches = list(zip(range(2), ppo_ptx.ptx_batches(["The answer is 5.<|end|>\n", "Hello there."], tok, 2, 32, 0)))
    batch = batches[0][1]
    assert batch["attention_mask"].tolist()[1][-1] in (0, 1) and batch["input_ids"].shape[0] == 2
    monkeypatch.setattr(GRPOTrainer, "compute_loss", lambda self, *a, **k: torch.tensor(1.0))
    cls = ppo_ptx.ptx_trainer_class()
    t = cls.__new__(cls)
    t.model, t.gamma, t.ptx = model, 0.5, iter([batch])
    t._metrics = {"train": defaultdict(list)}
    t.current_gradient_accumulation_steps = 2
    model.train()
    loss = t.compute_loss(model, {})
    logps, mask = ppo_ptx.token_logps(model, batch)
    assert mask.sum().item() > 2 and (logps[mask.bool()] < 0).all()
    assert loss.item() == pytest.approx(1.0 + ptx_loss(logps, mask, 0.5).item() / 2, rel=1e-5)
    assert t._metrics["train"]["ptx/loglik"][0] < 0  # the mean log-likelihood of the pretraining tokens


PROMPTS = [Prompt(id=f"p{i}", messages=[{"role": "user", "content": f"What is {i} + 2?"}], axis="helpful",
                  family="arithmetic", env={"kind": "calc", "expr": f"{i} + 2"}) for i in range(4)]


def test_ppo_ptx_trains_on_lab_tiny_and_logs_the_ptx_likelihood(tiny_model_dir, tmp_path):
    cfg = TrainConfig(phases=[{"kind": "ppo_ptx", "batch_size": 4, "num_generations": 2, "max_completion_length": 12,
                               "max_steps": 2, "learning_rate": 1e-4, "gamma": 0.5,
                               "ptx": {"count": 8, "batch_size": 2, "max_length": 48}}])
    m = train_round(Path(tiny_model_dir), [], [], tmp_path, cfg, seed=0, prompts=[p.model_dump() for p in PROMPTS])
    assert m["trained"] and (tmp_path / "ppo_ptx" / "model" / "model.safetensors").is_file()
    phase = m["ppo_ptx"]
    assert phase["steps"] == 2 and phase["ptx_texts"] == 8 and phase["gamma"] == 0.5
    assert [r["step"] for r in phase["reward_log"]] == [1, 2] and [r["step"] for r in phase["ptx_log"]] == [1, 2]
    assert all(r["loglik"] < 0 for r in phase["ptx_log"])


LOADED: list[str] = []


def mock_loader(uri: str):
    """The registry's stand-in for the judge test: records the URI, returns the scripted mock LM."""
    from autoalign.models.mock import MockLM

    LOADED.append(uri)
    return MockLM.from_uri("mock:")


def test_a_judge_is_a_reward(monkeypatch):
    from autoalign import methods
    from autoalign.signals.model_feedback.judges import PointwiseJudge

    monkeypatch.setattr(methods, "MODEL_LOADER", "tests.train.test_ppo_ptx:mock_loader")
    spec = grpo.RewardSpec(scorer="judge", model="lab:teacher")
    scorer = grpo.build_scorer(spec)
    loader_module = __import__("importlib").import_module("tests.train.test_ppo_ptx")  # as the table resolves it
    assert isinstance(scorer, PointwiseJudge) and loader_module.LOADED == ["lab:teacher"]
    (fn,) = grpo.reward_functions([spec], [scorer])
    out = fn([[{"role": "user", "content": "What is 2 + 2?"}]], [[{"role": "assistant", "content": "4"}]],
             prompt_id=["p"], axis=["helpful"], family=["arithmetic"], env=[None])
    assert len(out) == 1 and 0.0 <= out[0] <= 1.0 and fn.__name__ == "judge"
