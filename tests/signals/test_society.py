"""The simulated society (Stable Alignment): grid neighbourhoods by hand, one batched call per turn (counting mocks),
records -> training rows, config errors, resume, and one round of the recipe end to end on lab:tiny."""

import json
import subprocess
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.models.mock import MockLM
from autoalign.records import Prompt, Sample
from autoalign.signals.base import StageContext
from autoalign.signals.catalog import build_signal
from autoalign.signals.society.society import (
    Interaction,
    Simulation,
    Society,
    SocietyConfig,
    World,
    parse_likert7,
    parse_society,
    to_rows,
)

ROOT = Path(__file__).resolve().parents[2]
GOOD = "2 + 2 = 4. The answer is 4."


def judge_score(text: str, cont: str) -> float:
    """A judge that says Yes to a response ending with 'The answer is', No otherwise."""
    good = "The answer is" in text.split("Response:")[-1]
    return (-0.1 if cont == "Yes" else -2.5) if good else (-2.5 if cont == "Yes" else -0.1)


def mocks():
    return {
        "mock:judge": MockLM(reply="State the answer.", score=judge_score, uri="mock:judge"),
        "mock:other": MockLM(reply="Say the answer plainly.", score=judge_score, uri="mock:other"),
    }


def policy_mock():
    return MockLM(reply={"Rewrite": GOOD}, default="I think 4.", score=-1.0, uri="mock:policy")


def questions(n=5):
    prompts = [Prompt(id=f"p{i}", messages=[{"role": "user", "content": f"What is 2 + 2? ({i})"}], axis="helpful")
               for i in range(n)]
    samples = [Sample(prompt_id=p.id, index=0, text="I think 4.", model="mock:policy") for p in prompts]
    return prompts, samples


AGENTS = [{"name": "j1", "model": "mock:judge"}, {"name": "j2", "model": "mock:judge"},
          {"name": "o", "model": "mock:other", "persona": "The response states its answer."}]


# ---- the world --------------------------------------------------------------------------------------------------
def test_neighbourhoods_by_hand():
    w = World(side=4, radius=1, positions={"a": (0, 0), "b": (1, 1), "c": (3, 3), "d": (2, 0)})
    assert w.neighbours((1, 0), k=3) == ["a", "b", "d"]  # all at distance 1, by name
    assert w.neighbours((1, 0), k=2) == ["a", "b"]
    assert w.neighbours((3, 1), k=3) == ["d"]  # b and c at distance 2, d at 1
    assert w.neighbours((2, 2), k=3) == ["b", "c"]  # b (1, 1) and c (3, 3) at distance 1
    assert w.neighbours((0, 3), k=3) == ["b"]  # none within 1: the nearest (b at 2)


def test_placement_is_drawn_from_the_seed():
    cfg = SocietyConfig.model_validate({"agents": AGENTS, "grid": 3})
    a, b = World.place(cfg, seed=7), World.place(cfg, seed=7)
    assert a.positions == b.positions and len(set(a.positions.values())) == 3
    assert any(World.place(cfg, seed=s).positions != a.positions for s in range(5))
    centre = a.centre(7, "p0")
    assert centre == a.centre(7, "p0") and centre not in a.positions.values()


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"^society\.agents\.0\.model: Field required"):
        parse_society({"agents": [{"name": "a"}]})
    with pytest.raises(ValueError, match="used twice"):
        parse_society({"agents": [{"name": "a", "model": "x"}, {"name": "a", "model": "y"}]})
    with pytest.raises(ValueError, match="do not fit"):
        parse_society({"agents": [{"name": f"a{i}", "model": "x"} for i in range(4)], "grid": 2})
    with pytest.raises(UserError, match=r"signals\.params\.society\.agents\.0\.temperature"):
        build_signal("society", {"society": {"agents": [{"name": "a", "model": "x", "temperature": -1}]}})
    with pytest.raises(UserError, match="society file .*missing.yaml: file not found"):
        build_signal("society", {"society_file": "missing.yaml"})


def test_likert7_reading():
    assert parse_likert7("I'd say 7.") == pytest.approx(1.0)
    assert parse_likert7("4") == pytest.approx(0.5)
    assert parse_likert7("9 or 10") is None


# ---- batching ---------------------------------------------------------------------------------------------------
def test_one_batched_call_per_model_and_turn():
    models, policy = mocks(), policy_mock()
    cfg = SocietyConfig.model_validate({"agents": AGENTS, "grid": 3, "radius": 2, "raters": 3})
    sim = Simulation(cfg, policy, models.__getitem__, seed=0)
    prompts, samples = questions(5)
    acts = sim.interact(list(zip(prompts, samples)))
    judge, other = models["mock:judge"], models["mock:other"]
    # on a 3x3 grid every agent is within distance 2 of any cell: 3 raters per question
    assert all(x.neighbours == ["j1", "j2", "o"] or sorted(x.neighbours) == ["j1", "j2", "o"] for x in acts)
    assert judge.generate_calls == 1 and len(judge.generated) == 10  # j1 + j2, 5 questions, one feedback call
    assert other.generate_calls == 1 and len(other.generated) == 5
    assert judge.logprob_calls == 2 and other.logprob_calls == 2  # draft and revision ratings, one call each
    assert policy.generate_calls == 1 and len(policy.generated) == 5  # the revisions
    assert sim.log.calls == {"rate_draft": 2, "feedback": 2, "revise": 1, "rate_revision": 2}
    x = acts[0]
    assert x.draft_score == pytest.approx(0.0, abs=0.2) and x.revision == GOOD
    assert x.revision_score == pytest.approx(1.0, abs=0.2)
    assert x.feedback["j1"] == "State the answer." and "Critique: - State the answer." in x.revise_prompt


def test_agents_with_other_sampling_are_another_call():
    models, policy = mocks(), policy_mock()
    agents = [AGENTS[0], {**AGENTS[1], "temperature": 0.2}, AGENTS[2]]
    sim = Simulation(SocietyConfig.model_validate({"agents": agents, "grid": 3, "radius": 2}), policy,
                     models.__getitem__, seed=0)
    sim.interact(list(zip(*questions(3))))
    assert models["mock:judge"].generate_calls == 2 and models["mock:judge"].logprob_calls == 2


# ---- records -> rows ---------------------------------------------------------------------------------------------
def interaction(**kw):
    base = dict(prompt_id="p0", sample_index=0, question="What is 2 + 2? (0)", principle="P", cell=(0, 0),
                neighbours=["a", "b"], draft="I think 4.", draft_ratings={"a": 0.2, "b": 0.4},
                feedback={"a": "State it.", "b": ""}, feedback_prompts={"a": "critique a", "b": "critique b"},
                revise_prompt="revise me", revision=GOOD, revision_ratings={"a": 0.9, "b": None})
    return Interaction(**{**base, **kw})


def test_records_become_the_three_kinds_of_data():
    prompts, _ = questions(1)
    rows = to_rows([interaction()], prompts, "society")
    # the draft is rated 0.3 (mean of 0.2, 0.4), the revision 0.9 (b's rating unreadable)
    (pair_imit, pair_realign) = rows.preferences
    assert pair_imit.prompt == prompts[0].messages and pair_imit.chosen == GOOD and pair_imit.rejected == "I think 4."
    assert pair_imit.margin == pytest.approx(0.6)
    assert pair_realign.prompt == [{"role": "user", "content": "revise me"}] and pair_realign.chosen == GOOD
    assert pair_realign.margin == pytest.approx(0.6)
    imitation, realign, critique = rows.sft
    assert imitation.messages[-1] == {"role": "assistant", "content": GOOD}
    assert realign.messages[0]["content"] == "revise me"
    assert critique.messages == [{"role": "user", "content": "critique a"}, {"role": "assistant", "content": "State it."}]
    (label,) = rows.labels
    assert label.kind == "unit" and label.score == pytest.approx(0.3) and label.selected
    assert label.detail["revision"] == GOOD
    assert dict(rows.counts) == {"imitation_sft": 1, "imitation_pairs": 1, "realignment": 1, "self_critique": 1}


def test_a_worse_revision_keeps_the_draft():
    prompts, _ = questions(1)
    rows = to_rows([interaction(revision_ratings={"a": 0.1, "b": 0.1})], prompts, "society", kinds=["imitation"])
    (pair,) = rows.preferences
    assert pair.chosen == "I think 4." and pair.rejected == GOOD and pair.margin == pytest.approx(0.2)
    assert [e.messages[-1]["content"] for e in rows.sft] == ["I think 4."]
    assert "revision" not in rows.labels[0].detail and rows.labels[0].selected
    # equal ratings: no pair, the draft (first) is imitated; a truncated revision takes no part
    rows = to_rows([interaction(revision_ratings={"a": 0.3})], prompts, "society", kinds=["imitation"])
    assert rows.preferences == [] and rows.sft[0].messages[-1]["content"] == "I think 4."
    rows = to_rows([interaction(revision_finish="length")], prompts, "society", kinds=["imitation"])
    assert rows.preferences == [] and rows.labels[0].detail["revision_score"] is None


def test_signal_saves_interactions_and_resumes(tmp_path):
    models = mocks()
    params = {"society": {"agents": AGENTS, "grid": 3, "radius": 2, "chunk": 2}}
    sig = build_signal("society", params, load_lm=models.__getitem__)
    assert isinstance(sig, Society)
    prompts, samples = questions(5)
    ctx = StageContext(dir=tmp_path / "0", round=1, seed=3)
    res = sig(prompts, samples, policy_mock(), ctx)
    parts = sorted((tmp_path / "0" / "society").glob("interactions-*.jsonl"))
    assert len(parts) == 3 and sum(len(p.read_text().splitlines()) for p in parts) == 5
    assert res.stats["interactions"] == 5 and res.stats["revision_better"] == 5 and res.preferences
    again_models, again_policy = mocks(), policy_mock()
    sig2 = build_signal("society", params, load_lm=again_models.__getitem__)
    res2 = sig2(prompts, samples, again_policy, ctx)
    assert res2.stats["resumed_chunks"] == 3 and again_policy.generate_calls == 0
    assert again_models["mock:judge"].logprob_calls == 0
    assert [p.model_dump() for p in res2.preferences] == [p.model_dump() for p in res.preferences]


# ---- the recipe ------------------------------------------------------------------------------------------------
def test_recipe_one_round_end_to_end_on_lab_tiny(tiny_model_dir, tmp_path):
    from autoalign.recipe import load_recipe
    from tests.e2e.test_run import AUTOALIGN

    r = load_recipe(ROOT / "recipes" / "society.yaml")
    assert r.policy == "lab:small" and [p.kind for p in r.train.phases] == ["stable_alignment"]
    agents = [{"name": "tiny-a", "model": "lab:tiny"}, {"name": "tiny-b", "model": "lab:tiny",
                                                       "persona": "The response answers the request correctly."}]
    over = ["policy=lab:tiny", "rounds=1", "prompts.count=12", "sampling.max_new_tokens=16", "eval.per_family=1",
            "eval.max_new_tokens=16", "train.epochs=1", "train.batch_size=8",
            f"signals.0.params.society.agents={json.dumps(agents)}", "signals.0.params.society.grid=2",
            "signals.0.params.society.revise_max_new_tokens=16",
            "signals.0.params.min_gap=0",  # the tiny model's ratings hardly differ: keep every gap
            f"run_dir={tmp_path / 'runs'}", "name=society"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / "society.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "society"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [x["round"] for x in metrics["rounds"]] == [0, 1]
    stats = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())["stats"]["society"]
    assert stats["interactions"] == 12 and stats["model_calls"]["revise"] == 1
    assert list((run / "round-1" / "signals" / "0" / "society").glob("interactions-*.jsonl"))
    assert (run / "report.html").exists()
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())["metrics"]
    if stats["preferences"]:
        assert train["trained"] and train["stable_alignment"]["pairs"] == stats["preferences"]
