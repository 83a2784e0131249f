"""Training phases in a recipe: one table of kinds, each validated against its own config (a wrong field is one
line naming it), today's defaults, and the old ``train.method`` shorthand folded into exactly the phases it meant."""

import json
import re
from pathlib import Path
from typing import get_args

import pytest

from autoalign.errors import UserError
from autoalign.recipe import TrainConfig, load_recipe
from autoalign.train.phases import PHASES, Phase, phase_names

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "t", "signals": [{"method": "self_consistency", "params": {"k": 1}}]}


def _load(*overrides, train=None):
    data = dict(BASE, train=train) if train is not None else BASE
    return load_recipe(None, list(overrides), data=data)


def test_the_table_and_the_union_name_the_same_kinds():
    union = get_args(get_args(Phase)[0])
    assert [c.model_fields["kind"].default for c in union] == list(PHASES) == [
        "sft", "dpo", "kto", "orpo", "grpo", "rloo", "ppo_ptx", "spin", "w2s", "gkd", "stable_alignment"]
    for kind, entry in PHASES.items():
        assert entry.config in union and entry.config().kind == kind
        assert entry.config.consumes == {"sft": "sft", "grpo": "prompts", "rloo": "prompts", "ppo_ptx": "prompts",
                                       "w2s": "sft", "gkd": "sft"}.get(kind, "preferences")
        assert entry.config.model_config["extra"] == "forbid"


def test_defaults_are_todays():
    sft, dpo = PHASES["sft"].config(), PHASES["dpo"].config()
    assert (sft.learning_rate, dpo.learning_rate) == (5e-4, 1e-4)
    for p in (sft, dpo):
        assert (p.epochs, p.batch_size, p.grad_accum, p.max_length, p.lora, p.max_steps) == (2.0, 16, 1, 256, None, None)
    assert (dpo.beta, dpo.loss_type, dpo.margin) == (0.1, "sigmoid", "ignore")
    assert [p.kind for p in TrainConfig().phases] == ["sft"]


@pytest.mark.parametrize(
    "train, message",
    [
        ({"phases": [{"kind": "ppo"}]},
         "train.phases.0: Input tag 'ppo' found using 'kind' does not match any of the expected tags: 'sft', 'dpo'"),
        ({"phases": [{"epochs": 1}]}, "train.phases.0: Unable to extract tag using discriminator 'kind'"),
        ({"phases": [{"kind": "sft"}, {"kind": "dpo", "bta": 0.1}]},
         "train.phases.1.dpo.bta: Extra inputs are not permitted"),
        ({"phases": [{"kind": "sft", "beta": 0.1}]}, "train.phases.0.sft.beta: Extra inputs are not permitted"),
        ({"phases": [{"kind": "dpo", "loss_type": "ppo"}]}, "train.phases.0.dpo.loss_type"),
        ({"phases": [{"kind": "kto", "learning_rate": 0}]},
         "train.phases.0.kto.learning_rate: Input should be greater than 0 (got 0)"),
        ({"phases": [{"kind": "dpo", "margin": "offset", "loss_type": "ipo"}]},
         "train.phases.0.dpo: Value error, margin: offset (ODPO) needs loss_type: sigmoid"),
        ({"phases": [{"kind": "kto", "batch_size": 1}]}, "train.phases.0.kto: Value error, batch_size: KTO"),
        ({"method": "ppo"}, "train.method: Input should be 'sft', 'dpo' or 'sft+dpo' (got 'ppo')"),
        ({"method": "dpo", "dpo_loss": "nope"}, "train.dpo_loss: Input should be 'sigmoid', 'hinge'"),
    ],
)
def test_a_wrong_phase_is_one_line_naming_the_field(train, message):
    with pytest.raises(UserError) as err:
        _load(train=train)
    text = str(err.value)
    assert "\n" not in text and message in text, text


def _old_trainer_kwargs(flat: dict) -> dict:
    """What the trainers got from ``train.method`` + flat keys before phases (the old run.py, defaults included)."""
    cfg = {"method": "sft", "epochs": 2.0, "learning_rate": 5e-4, "dpo_learning_rate": 1e-4, "batch_size": 16,
           "grad_accum": 1, "max_length": 256, "beta": 0.1, "dpo_loss": "sigmoid", "lora": None, **flat}
    common = dict(epochs=cfg["epochs"], batch_size=cfg["batch_size"], grad_accum=cfg["grad_accum"],
                  max_length=cfg["max_length"], lora=cfg["lora"])
    out = {}
    if cfg["method"] in ("sft", "sft+dpo"):
        out["sft"] = dict(learning_rate=cfg["learning_rate"], **common)
    if cfg["method"] in ("dpo", "sft+dpo"):
        out["dpo"] = dict(learning_rate=cfg["dpo_learning_rate"], beta=cfg["beta"], loss_type=cfg["dpo_loss"], **common)
    return out


@pytest.mark.parametrize(
    "flat",
    [
        {},
        {"method": "dpo"},
        {"method": "sft+dpo"},
        {"method": "sft+dpo", "epochs": 3, "learning_rate": 3e-3, "dpo_learning_rate": 2e-3, "batch_size": 4,
         "grad_accum": 2, "max_length": 128, "beta": 0.2, "dpo_loss": "ipo",
         "lora": {"r": 4, "alpha": 8, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}},
        {"epochs": 1, "batch_size": 8},  # flat keys alone: the default method (sft)
    ],
)
def test_the_old_shorthand_trains_with_exactly_the_old_hyperparameters(flat, tmp_path, monkeypatch):
    """Every keyword the trainers receive, captured at the trainers: the old figures, and nothing new that
    changes them (no weighting, no step cap, no ODPO offset)."""
    from autoalign.train import dpo, sft
    from autoalign.train.run import _train_inline

    got: dict = {}

    def capture(kind):
        def trainer(policy, rows, out_dir, **kw):
            got[kind] = kw
            return {}
        return trainer

    monkeypatch.setattr(sft, "train_sft", capture("sft"))
    monkeypatch.setattr(dpo, "train_dpo", capture("dpo"))
    (tmp_path / "sft.jsonl").write_text(json.dumps({"messages": [], "weight": 1.0}) + "\n")
    (tmp_path / "dpo.jsonl").write_text(json.dumps({"prompt": [], "margin": 1.0}) + "\n")
    cfg = TrainConfig(**flat)
    _train_inline({"policy": "p", "out_dir": str(tmp_path), "seed": 7, "train": cfg.model_dump(),
                   "sft_path": str(tmp_path / "sft.jsonl"), "dpo_path": str(tmp_path / "dpo.jsonl")})
    neutral = {"seed": 7, "max_steps": None, "weighted": False, "loss_weights": None, "margin_offset": None}
    for kw in got.values():
        for key, value in neutral.items():
            if key in kw:
                assert kw.pop(key) == value, key
    assert got == _old_trainer_kwargs(flat)
    # and the phases it folds into validate back to themselves (the saved recipe keeps phases only)
    dumped = cfg.model_dump()
    assert set(dumped) == {"phases", "screen", "launcher", "num_processes", "accelerate_config"}
    assert TrainConfig.model_validate(dumped).model_dump() == dumped


def test_the_shorthand_still_overrides_a_phases_recipe():
    """``train.method=...`` and flat keys on a recipe written with phases (the shipped ones): method picks the
    phases (reusing the recipe's phase of a kind), flat keys set them."""
    r = load_recipe(ROOT / "recipes" / "demo.yaml", ["train.method=sft+dpo", "train.epochs=1", "train.beta=0.3"])
    s, d = r.train.phases
    assert (s.kind, s.learning_rate, s.epochs) == ("sft", 3e-4, 1.0)  # the recipe's sft phase, epochs overridden
    assert (d.kind, d.learning_rate, d.epochs, d.beta) == ("dpo", 1e-4, 1.0, 0.3)  # dpo defaults, then the keys
    assert (r.train.method, r.train.chain) == ("sft+dpo", "sft -> dpo")
    r = load_recipe(ROOT / "recipes" / "rlaif.yaml", ["train.batch_size=8", "train.learning_rate=1"])
    (d,) = r.train.phases
    assert (d.kind, d.batch_size, d.learning_rate) == ("dpo", 8, 1e-4)  # learning_rate is the sft phases' knob
    r = _load("train.phases=[{kind: sft}, {kind: kto, beta: 0.2}, {kind: sft, epochs: 1}]", "train.max_length=128")
    assert [(p.kind, p.max_length) for p in r.train.phases] == [("sft", 128), ("kto", 128), ("sft", 128)]
    assert phase_names(r.train.phases) == ["sft", "kto", "sft-2"] and r.train.method is None


# The shipped recipes' train sections before phases: the phases that replaced them must mean the same.
OLD_TRAIN = {
    "aligner": {"method": "sft", "epochs": 3, "learning_rate": 5.0e-4, "batch_size": 16, "max_length": 320},
    "constitutional_ai": {"method": "sft", "epochs": 2, "learning_rate": 3.0e-4, "batch_size": 16},
    "demo": {"method": "sft", "epochs": 2, "learning_rate": 3.0e-4, "batch_size": 16},
    "raft": {"method": "sft", "epochs": 2, "learning_rate": 3.0e-4, "batch_size": 16},
    "rlaif": {"method": "dpo", "epochs": 2, "dpo_learning_rate": 1.0e-4, "beta": 0.1, "batch_size": 16},
    "self_rewarding": {"method": "dpo", "epochs": 2, "dpo_learning_rate": 1.0e-4, "beta": 0.1, "batch_size": 16},
}
WRITTEN_WITH_PHASES = ["grpo", "grpo_execution", "grpo_judge", "ppo_ptx", "process_reward", "rest_em", "rloo",
                       "self_rewarding_teacher", "star", "multihead_rm", "debate", "collective_constitution",
                       "spin", "self_refine", "context_distillation", "linear_alignment",
                       "distill_sft", "distill_dpo", "distill_gkd", "weak_to_strong", "aligners_inspectors", "society",
                       "lab_taxonomy", "self_instruct", "evol_instruct", "backtranslation"]  # recipes that never had a train.method (tests/train/test_online_rl.py)


@pytest.mark.parametrize("name", sorted(OLD_TRAIN))
def test_shipped_recipes_use_phases_with_their_old_values(name):
    import yaml

    path = ROOT / "recipes" / f"{name}.yaml"
    assert "phases" in yaml.safe_load(path.read_text())["train"]
    assert load_recipe(path).train.model_dump() == TrainConfig(**OLD_TRAIN[name]).model_dump()
    assert sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml")) == sorted([*OLD_TRAIN, *WRITTEN_WITH_PHASES])


def test_the_train_section_of_the_resolved_recipe_reloads(tmp_path):
    from autoalign.recipe import save_resolved

    r = _load("train.method=sft+dpo", "train.epochs=1")
    save_resolved(r, tmp_path / "resolved.yaml")
    again = load_recipe(tmp_path / "resolved.yaml")
    assert again.train.model_dump() == r.train.model_dump() and again.fingerprint() == r.fingerprint()
    assert re.search(r"kind: dpo", (tmp_path / "resolved.yaml").read_text())
