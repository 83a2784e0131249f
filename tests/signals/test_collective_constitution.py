"""Collective constitution: votes, opinion groups and the bridging rank by hand (a tiny conversation where the plain
majority and group-informed consensus disagree), clustering under a seed, ROUGE-L de-duplication, the axis rule,
the constitution file round trip, one-line population file errors, a scripted drafting with its artifact reused
in a later round, and one round of recipes/collective_constitution.yaml on lab:tiny."""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from autoalign.errors import UserError
from autoalign.models.mock import MockLM
from autoalign.records import Prompt, Sample
from autoalign.signals.base import StageContext
from autoalign.signals.model_feedback.constitution import load_constitution
from autoalign.signals.society.collective_constitution import (
    AGREE,
    DISAGREE,
    PASS,
    CollectiveConstitution,
    Statement,
    axis_of,
    clean_proposal,
    cluster_voters,
    dedupe,
    draft,
    group_agree_rates,
    group_informed_consensus,
    load_population,
    majority,
    rank,
    select,
    to_constitution,
    votes_of,
    write_constitution,
)

ROOT = Path(__file__).resolve().parents[2]
N = np.nan


def test_votes_against_the_agents_own_baseline():
    # baseline = mean of the readable P(Yes) = (0.6 + 0.5 + 0.4) / 3 = 0.5
    assert votes_of([0.6, 0.5, 0.4, None], pass_margin=0.05) == [AGREE, PASS, DISAGREE, PASS]
    # a model that says No to everything still prefers some statements: baseline 0.2
    assert votes_of([0.25, 0.15, 0.2], pass_margin=0.01) == [AGREE, DISAGREE, PASS]
    assert votes_of([0.25, 0.15], pass_margin=0.01, baseline="half") == [DISAGREE, DISAGREE]


# five voters of opinion group X, two of group Y; s1 divides the groups, s2 bridges them
MATRIX = np.array([
    # s1     s2
    [AGREE, AGREE],
    [AGREE, AGREE],
    [AGREE, DISAGREE],
    [AGREE, DISAGREE],
    [AGREE, DISAGREE],
    [DISAGREE, AGREE],
    [DISAGREE, AGREE],
])
GROUPS = [0, 0, 0, 0, 0, 1, 1]


def test_majority_and_bridging_rank_differently_by_hand():
    rates = group_agree_rates(MATRIX, GROUPS)
    # P_g(agree) = (A_g + 1) / (S_g + 2): s1: X 6/7, Y 1/4; s2: X 3/7, Y 3/4
    assert rates == pytest.approx(np.array([[6 / 7, 3 / 7], [1 / 4, 3 / 4]]))
    gic = group_informed_consensus(rates)
    assert gic == pytest.approx([6 / 7 * 1 / 4, 3 / 7 * 3 / 4])  # 0.2143, 0.3214
    maj = majority(MATRIX)
    assert maj == pytest.approx([5 / 7, 4 / 7])
    assert rank(list(maj)) == [0, 1] and rank(list(gic)) == [1, 0]


def test_unseen_votes_and_passes_in_the_rates():
    m = np.array([[AGREE, N, PASS], [N, N, AGREE]])
    rates = group_agree_rates(m, [0, 0])
    # s1: 1 agree of 1 seen -> 2/3; s2: unseen -> 1/2; s3: 1 agree of 2 seen (a pass is seen) -> 2/4
    assert rates[0] == pytest.approx([2 / 3, 1 / 2, 1 / 2])
    assert majority(m) == pytest.approx([1.0, 0.0, 0.5])


def test_clustering_finds_the_camps_and_is_deterministic_under_a_seed():
    camps = np.array([[AGREE, AGREE, DISAGREE, N, AGREE]] * 3 + [[DISAGREE, N, AGREE, AGREE, AGREE]] * 3
                     + [[AGREE, AGREE, DISAGREE, DISAGREE, N]])
    labels = cluster_voters(camps, 2, seed=7)
    assert labels == [0, 0, 0, 1, 1, 1, 0]
    assert cluster_voters(camps, 2, seed=7) == labels
    assert cluster_voters(camps, 2, seed=8) == labels  # clusters named by first appearance, not k-means' ids
    assert cluster_voters(np.array([[AGREE, PASS]] * 4), 3, seed=0) == [0, 0, 0, 0]  # one distinct vector


def test_dedupe_by_rouge_l():
    texts = ["The response refuses harmful requests.", "The response refuses all harmful requests.",
             "The response says I don't know instead of making up facts."]
    assert dedupe(texts, 0.7) == [0, 2]
    assert dedupe(texts, 1.0) == [0, 1, 2]


def test_axis_rule_and_proposal_filter():
    assert axis_of("The response refuses harmful requests.") == "harmless"
    assert axis_of("The response admits what it does not know.") == "honest"
    assert axis_of("The response answers the question.") == "helpful"
    assert axis_of("The response is short.") == "helpful"  # no keyword
    assert axis_of("The response is honest and never harmful.") == "harmless"  # tie: harmless first
    assert clean_proposal('  "The response treats everyone fairly."\nmore', 4) == "The response treats everyone fairly."
    assert clean_proposal("I can't help with that.", 2) is None
    assert clean_proposal("The answer is singer.", 2) is None  # not about the assistant's behaviour
    assert clean_proposal("The response is.", 4) is None


def test_select_covers_each_axis_then_follows_the_rank():
    axes = ["helpful", "helpful", "helpful", "honest", "harmless"]
    assert select([0, 1, 2, 3, 4], axes, 3) == [0, 3, 4]
    assert select([0, 1, 2, 3, 4], axes, 4) == [0, 1, 3, 4]
    assert select([4, 0], ["helpful", "helpful", "x", "y", "harmless"], 1) == [4]


def test_constitution_file_round_trip(tmp_path):
    stmts = [Statement("s1", "The response refuses harmful requests.", "harmless", "seed"),
             Statement("s2", "The response admits what it does not know.", "honest", "a/0")]
    c = to_constitution("collective-test", stmts)
    path = tmp_path / "c.yaml"
    write_constitution(c, path, header="drafted by a test")
    assert path.read_text().startswith("# drafted by a test\n")
    back = load_constitution(path)
    assert back == c
    assert [(p.id, p.axis) for p in back.principles] == [("cc-1", "harmless"), ("cc-2", "honest")]
    assert back.for_axis("honest")[0].text == "The response admits what it does not know."


@pytest.mark.parametrize("body, message", [
    ("groups: []\n", "groups: List should have at least 2 items"),
    ("groups:\n  - {name: a, personas: []}\n  - {name: b, personas: [x]}\n", "groups.0.personas"),
    ("groups:\n  - {name: a, personas: [x], colour: red}\n  - {name: b, personas: [y]}\n", "groups.0.colour"),
    ("- just a list\n", "expected a mapping"),
    ("groups:\n  - {name: a, personas: [x]}\n  - {name: b, personas: [y]}\nvote_template: '{persona} {oops}'\n",
     "vote_template"),
    ("seed_statements: [{text: hi, axis: kindness}]\ngroups:\n  - {name: a, personas: [x]}\n  - {name: b, personas: [y]}\n",
     "seed_statements.0.axis"),
])
def test_population_file_errors_are_one_line(tmp_path, body, message):
    f = tmp_path / "pop.yaml"
    f.write_text(body)
    with pytest.raises(UserError) as err:
        load_population(f)
    assert message in str(err.value) and str(f) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="file not found"):
        load_population(tmp_path / "missing.yaml")


def test_the_shipped_populations_load():
    pop = load_population()
    assert pop.name == "three-camps" and len(pop.groups) == 3 and pop.seed_statements
    other = load_population(ROOT / "autoalign" / "signals" / "society" / "population_service.yaml")
    assert other.name == "service-first"


POPULATION = """
name: two-camps
model: mock:agents
groups:
  - name: careful
    personas: [I value caution most., I value caution above all.]
  - name: eager
    personas: [I value service most., I value service above all.]
seed_statements:
  - {text: The response refuses anything risky., axis: harmless}
  - {text: The response always does what it is asked., axis: helpful}
  - {text: The response says I don't know instead of guessing., axis: honest}
"""


def _agents() -> MockLM:
    """Agents that propose one readable and one unusable principle, and vote by persona: caution likes refusing,
    service likes doing what is asked, everyone likes honesty a little."""
    def score(text: str, cont: str) -> float:
        careful = "caution" in text
        p = 0.5
        if "refuses" in text:
            p = 0.8 if careful else 0.2
        elif "does what it is asked" in text:
            p = 0.2 if careful else 0.8
        elif "know" in text:
            p = 0.6
        return math.log(p if cont == "Yes" else 1.0 - p)

    def reply(text: str, index: int) -> str:
        return "The response is kind to every person." if index == 0 else "I can't help with that."

    return MockLM(reply=reply, score=score, uri="mock:agents", choice_logprobs=True)


def test_draft_prefers_the_statement_both_camps_accept(tmp_path):
    f = tmp_path / "pop.yaml"
    f.write_text(POPULATION)
    lm = _agents()
    conv = draft(load_population(f), lambda spec: lm, top_k=1, votes_per_agent=10, pass_margin=0.05, seed=1)
    texts = [s.text for s in conv.statements]
    # four proposals of one text, de-duplicated to one; four refusals dropped
    assert texts.count("The response is kind to every person.") == 1 and conv.stats["proposals_dropped"] == 4
    assert conv.clusters == [0, 0, 1, 1] and conv.stats["groups_recovered_ari"] == pytest.approx(1.0)
    honest = texts.index("The response says I don't know instead of guessing.")
    assert conv.chosen == [honest]  # agreed by both camps; each camp's favourite is rejected by the other
    again = draft(load_population(f), lambda spec: lm, top_k=1, votes_per_agent=10, pass_margin=0.05, seed=1)
    assert again.rows() == conv.rows() and np.array_equal(again.matrix, conv.matrix, equal_nan=True)


def test_signal_drafts_once_and_reuses_its_artifact(tmp_path):
    f = tmp_path / "pop.yaml"
    f.write_text(POPULATION)
    lms = {"mock:agents": _agents(), "mock:reviser": MockLM(reply="I don't know.", uri="mock:reviser")}
    sig = CollectiveConstitution(population=str(f), reviser="mock:reviser", top_k=2, votes_per_agent=10,
                                 pass_margin=0.05, seed=1, load_lm=lms.__getitem__)
    prompts = [Prompt(id="p", messages=[{"role": "user", "content": "Who is Kel?"}], axis="honest")]
    samples = [Sample(prompt_id="p", index=0, text="The answer is baker.", model="m")]
    ctx = StageContext(dir=tmp_path / "round-1", round=1, seed=1)
    res = sig(prompts, samples, MockLM(), ctx)
    art = res.artifacts["constitution"]
    assert art.kind == "constitution" and not Path(art.path).is_absolute()
    drafted = load_constitution(ctx.dir / art.path)
    assert len(drafted.principles) == 2 and res.stats["constitution"]["source"] == "drafted"
    assert (ctx.dir / "collective_constitution" / "statements.jsonl").is_file()
    assert [x.signal for x in res.sft] == ["collective_constitution"] and res.sft[0].messages[-1]["content"] == "I don't know."
    assert res.stats["revised"] == 1
    later = StageContext(dir=tmp_path / "round-2", round=2, seed=1, artifacts={"constitution": ctx.dir / art.path})
    res2 = sig(prompts, samples, MockLM(), later)
    assert res2.artifacts == {} and res2.stats["constitution"]["source"] == "earlier round"
    assert res2.stats["constitution"]["principles"] == [p.text for p in drafted.principles]


def test_a_bad_population_fails_when_the_signal_is_built(tmp_path):
    from autoalign.signals.catalog import build_signal

    with pytest.raises(UserError, match="population .*file not found"):
        build_signal("collective_constitution", {"population": str(tmp_path / "nope.yaml")})
    with pytest.raises(UserError, match="top_k"):
        build_signal("collective_constitution", {"top_k": 0})


def test_recipe_one_round_end_to_end_on_lab_tiny(tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    over = ["policy=lab:tiny", "rounds=1", "prompts.count=12", "sampling.max_new_tokens=16", "eval.per_family=1",
            "eval.max_new_tokens=16", "train.epochs=1", "train.batch_size=8", "signals.0.params.model=lab:tiny",
            "signals.0.params.reviser=lab:tiny", "signals.0.params.proposals_per_agent=1",
            "signals.0.params.votes_per_agent=6", "signals.0.params.max_new_tokens=12",
            "signals.0.params.revision_max_new_tokens=16", "signals.0.params.max_per_prompt=1",
            f"run_dir={tmp_path / 'runs'}", "name=cc"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / "collective_constitution.yaml"), *over],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "cc"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    manifest = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())
    stats = manifest["stats"]["collective_constitution"]
    assert stats["constitution"]["source"] == "drafted" and stats["sft"] > 0
    arts = [a for group in manifest["artifacts"].values() for a in group.values()]
    (art,) = [a for a in arts if a["kind"] == "constitution"]
    assert load_constitution(run / "round-1" / "signals" / art["path"]).principles
    assert json.loads((run / "round-1" / "train" / "manifest.json").read_text())["metrics"]["trained"]
