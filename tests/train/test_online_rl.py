"""Online RL phases (GRPO, RLOO through TRL): their configs (one-line errors naming the field), the reward adapter
(a prompt's ``env`` survives the dataset as JSON text and reaches the Scorer as a dict), and each phase end to end
on lab:tiny with the sandbox's execution reward: a model directory written and the reward logged per step."""

import json
import re
from pathlib import Path

import pytest
import torch

from autoalign.errors import UserError
from autoalign.recipe import TrainConfig, load_recipe
from autoalign.records import Prompt
from autoalign.train import grpo
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


def _p(i: int, env: dict | None, text: str) -> Prompt:
    return Prompt(id=f"p{i}", messages=[{"role": "user", "content": text}], axis="helpful", family="arithmetic",
                  env=env)


PROMPTS = [_p(0, {"kind": "calc", "expr": "2 + 3"}, "What is 2 + 3?"),
           _p(1, {"kind": "calc", "expr": "7 - 4"}, "What is 7 - 4?"),
           _p(2, {"kind": "python_tests", "entry_point": "f", "tests": ["assert f(1) == 2"]},
              "Write f(x) returning x + 1."),
           _p(3, None, "Tell me about rivers.")]


@pytest.mark.parametrize(
    "phase, message",
    [
        ({"kind": "grpo", "rewards": [{"scorer": "oracle"}]},
         "train.phases.0.grpo.rewards.0.scorer: Value error, unknown scorer 'oracle'"),
        ({"kind": "rloo", "rewards": [{"scorer": "execution", "weight": -1}]},
         "train.phases.0.rloo.rewards.0.weight: Input should be greater than 0"),
        ({"kind": "grpo", "rewards": [{"scorer": "execution", "weight": "heavy"}]},
         "train.phases.0.grpo.rewards.0.weight: Input should be a valid number"),
        ({"kind": "grpo", "rewards": [{"scorer": "reward_model"}]},
         "train.phases.0.grpo.rewards.0: Value error, path: the reward_model scorer needs"),
        ({"kind": "grpo", "rewards": []}, "train.phases.0.grpo.rewards: List should have at least 1 item"),
        ({"kind": "grpo", "batch_size": 6, "num_generations": 4},
         "train.phases.0.grpo: Value error, batch_size: batch_size x grad_accum (6) must be a multiple of"),
        ({"kind": "rloo", "num_generations": 1}, "train.phases.0.rloo.num_generations: Input should be greater"),
        ({"kind": "grpo", "beta_kl": 0.1}, "train.phases.0.grpo.beta_kl: Extra inputs are not permitted"),
    ],
)
def test_a_wrong_online_rl_phase_is_one_line_naming_the_field(phase, message):
    with pytest.raises(UserError) as err:
        load_recipe(None, [], data=dict(BASE, train={"phases": [phase]}))
    text = str(err.value)
    assert "\n" not in text and message in text, text


def test_the_kinds_consume_prompts_and_combine_weighted_rewards():
    cfg = TrainConfig(phases=[{"kind": "grpo", "rewards": [{"scorer": "execution", "weight": 2.0},
                                                           {"scorer": "toxicity", "weight": 0.5},
                                                           {"scorer": "execution"}]},
                              {"kind": "rloo"}])
    g, r = cfg.phases
    assert [PHASES[k].config.consumes for k in ("grpo", "rloo")] == ["prompts", "prompts"]
    assert (type(g), type(r)) == (PHASES["grpo"].config, PHASES["rloo"].config)
    assert grpo.reward_names(g.rewards) == ["execution", "toxicity", "execution-2"]
    assert [x.weight for x in g.rewards] == [2.0, 0.5, 1.0] and [x.scorer for x in r.rewards] == ["execution"]
    assert r.beta > 0 and g.beta > 0  # KL to the reference by default
    assert TrainConfig.model_validate(cfg.model_dump()).model_dump() == cfg.model_dump()


def test_env_of_any_shape_survives_the_dataset_and_reaches_the_scorer(tmp_path):
    from autoalign.signals.environment.execution import ExecutionCheck
    from autoalign.train.common import to_dataset

    ds = to_dataset(grpo.prompt_rows([p.model_dump() for p in PROMPTS]), tmp_path)
    rows = list(ds)
    assert [json.loads(r["env"]) if r["env"] else None for r in rows] == [p.env for p in PROMPTS]
    seen = []

    class Recording(ExecutionCheck):
        def __call__(self, prompts, responses):
            seen.extend((p.id, p.env) for p in prompts)
            return super().__call__(prompts, responses)

    spec = grpo.RewardSpec(scorer="execution")
    (reward,) = grpo.reward_functions([spec], [Recording()])
    completions = [[{"role": "assistant", "content": t}] for t in
                   ("The answer is 5.", "The answer is 9.", "```python\ndef f(x):\n    return x + 1\n```",
                    "Rivers flow.")]
    cols = {k: [r[k] for r in rows] for k in ("prompt_id", "axis", "family", "env")}
    got = reward([r["prompt"] for r in rows], completions, trainer_state=None, **cols)
    assert got == [1.0, 0.0, 1.0, 0.0]  # right, wrong, tests pass, no environment (missing -> 0)
    assert seen == [(p.id, p.env) for p in PROMPTS]


def test_reward_log_keeps_the_per_step_rewards():
    history = [{"loss": 0.1, "reward": 0.5, "reward_std": 0.2, "kl": 0.01, "rewards/execution/mean": 0.5,
                "rewards/execution/std": 0.1, "step": 1}, {"train_loss": 0.1, "step": 2}]
    assert grpo.reward_log(history) == [{"step": 1, "reward": 0.5, "reward_std": 0.2, "kl": 0.01,
                                         "rewards/execution/mean": 0.5}]


@pytest.mark.parametrize("kind", ["grpo", "rloo"])
def test_an_online_rl_phase_trains_on_the_rounds_prompts(kind, tiny_model_dir, tmp_path, monkeypatch):
    envs = []
    real = grpo.build_scorer

    def recording(spec):
        scorer = real(spec)
        inner = scorer.__call__

        class Wrapped:
            name, scale = scorer.name, scorer.scale

            def __call__(self, prompts, responses):
                envs.extend(p.env for p in prompts)
                return inner(prompts, responses)

        return Wrapped()

    monkeypatch.setattr(grpo, "build_scorer", recording)
    cfg = TrainConfig(phases=[{"kind": kind, "batch_size": 4, "num_generations": 2, "max_completion_length": 16,
                               "max_steps": 2, "learning_rate": 1e-4,
                               "rewards": [{"scorer": "execution", "weight": 1.0}]}])
    m = train_round(Path(tiny_model_dir), [], [], tmp_path, cfg, seed=0, prompts=[p.model_dump() for p in PROMPTS])
    assert m["trained"] and m["phases"] == [{"name": kind, "kind": kind, "status": "trained"}]
    assert (tmp_path / "model").resolve() == (tmp_path / kind / "model").resolve()
    assert (tmp_path / kind / "model" / "model.safetensors").is_file()
    assert len((tmp_path / "train_prompts.jsonl").read_text().splitlines()) == len(PROMPTS)
    phase = m[kind]
    assert phase["steps"] == 2 and phase["prompts"] == len(PROMPTS) and phase["rewards"] == ["execution"]
    assert [r["step"] for r in phase["reward_log"]] == [1, 2]
    for r in phase["reward_log"]:
        assert 0.0 <= r["reward"] <= 1.0 and 0.0 <= r["rewards/execution/mean"] <= 1.0
    known = [p.env for p in PROMPTS]
    assert envs and all(e in known for e in envs) and any(isinstance(e, dict) for e in envs)


def test_an_online_rl_phase_without_prompts_is_skipped(tmp_path):
    cfg = TrainConfig(phases=[{"kind": "grpo", "max_steps": 1}])
    m = train_round(Path("unused"), [], [], tmp_path, cfg, seed=0)
    assert m["phases"] == [{"name": "grpo", "kind": "grpo", "status": "skipped", "reason": "no prompts"}]
    assert not m["trained"]


def test_the_grpo_recipe_loads():
    r = load_recipe(ROOT / "recipes" / "grpo_execution.yaml")
    (phase,) = r.train.phases
    assert phase.kind == "grpo" and [x.scorer for x in phase.rewards] == ["execution"]
    assert re.fullmatch(r"grpo", r.train.chain)
