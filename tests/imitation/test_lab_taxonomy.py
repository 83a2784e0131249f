"""LAB (Sudalairaj et al. 2024): the taxonomy file's checks (each one line naming the node, exit 2 through
``autoalign run`` with nothing written), the default taxonomy, the signal's filters and per-leaf counts on a
scripted teacher, the per-phase data selection with replay (by hand and through the training entry point), and
the recipe's one round on lab:tiny."""

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from autoalign.errors import UserError
from autoalign.models.mock import MockLM
from autoalign.records import SFTExample, sft_rows
from autoalign.signals.imitation.lab_taxonomy import LabTaxonomy, anchors, normalised, opening, subset_of
from autoalign.signals.imitation.taxonomy import load_taxonomy, parse_taxonomy
from autoalign.train.run import in_subset, select_rows

ROOT = Path(__file__).resolve().parents[2]
SEED = [{"question": "What is 2 + 3?", "answer": "3 + 2 = 5. The answer is 5."}]


def leaf(**extra):
    return {"seeds": SEED, **extra}


# ---- the taxonomy file -------------------------------------------------------------------------------------------
BAD = {
    "missing leaf": ({"skills": {"kind": "skill", "children": {"sums": {"axis": "helpful"}}}},
                     "node skills/sums: is a missing leaf"),
    "child naming nothing": ({"skills": {"kind": "skill", "children": {"sums": None}}},
                             "node skills/sums: names nothing"),
    "empty seeds": ({"skills": {"kind": "skill", "children": {"sums": {"seeds": []}}}},
                    "node skills/sums: has an empty seed list"),
    "cycle": ({"skills": {"kind": "skill", "children": {"more": {"ref": "skills"}, "sums": leaf()}}},
              "node skills/more: ref cycle (skills -> skills/more -> skills)"),
    "ref chain cycle": ({"a": {"kind": "skill", "children": {"b": {"ref": "c"}}}, "c": {"children": {"d": {"ref": "a"}}}},
                        "node a/b/d: ref cycle (a -> a/b -> c -> c/d -> a)"),
    "ref to nothing": ({"skills": {"kind": "skill", "children": {"sums": {"ref": "skills/nope"}}}},
                       "node skills/sums: ref 'skills/nope' names no node"),
    "unknown key": ({"skills": {"kind": "skill", "children": {"sums": leaf(colour="red")}}},
                    "node skills/sums: colour: Extra inputs are not permitted"),
    "bad seed": ({"skills": {"kind": "skill", "children": {"sums": {"seeds": [{"question": "Hi?"}]}}}},
                 "node skills/sums: seeds.0.answer: Field required"),
    "prefix not opening": ({"s": {"kind": "skill", "seeds": [{**SEED[0], "prefix": "How"}]}},
                           "node s: seeds.0.prefix: 'How' does not open the question"),
    "no kind": ({"skills": {"children": {"sums": leaf()}}}, "node skills/sums: has no kind"),
    "branch and leaf": ({"skills": {"kind": "skill", "seeds": SEED, "children": {"sums": leaf()}}},
                        "node skills: has both children and seeds"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_taxonomy_mistake_is_one_line_naming_the_node(case):
    tree, expected = BAD[case]
    with pytest.raises(UserError) as err:
        parse_taxonomy({"tree": tree}, "t.yaml")
    message = str(err.value)
    assert message.startswith("taxonomy t.yaml: ") and "\n" not in message
    assert expected in message, message


def test_refs_reuse_a_node_and_kind_and_axis_are_inherited():
    tree = {"skills": {"kind": "skill", "axis": "helpful", "children": {"sums": leaf(), "again": {"ref": "skills/sums"}}},
            "facts": {"kind": "knowledge", "children": {"who": leaf(axis="honest", document="Ann is a baker.")}}}
    t = parse_taxonomy({"name": "mine", "tree": tree}, "t.yaml")
    assert [(x.path, x.kind, x.axis) for x in t.leaves] == [
        ("skills/sums", "skill", "helpful"), ("skills/again", "skill", "helpful"), ("facts/who", "knowledge", "honest")]
    assert t.name == "mine" and t.leaves[2].document == "Ann is a baker."
    assert [x.path for x in t.of_kind("knowledge")] == ["facts/who"]


def test_the_default_taxonomy_covers_the_lab_families_with_conventional_seeds():
    from autoalign.answers import final_number, is_abstention, is_refusal
    from autoalign.lab.world import FAMILIES

    t = load_taxonomy()
    segments = {part for x in t.leaves for part in x.path.split("/")}
    assert set(FAMILIES) <= segments, set(FAMILIES) - segments
    assert {x.kind for x in t.leaves} == {"knowledge", "skill"} and all(x.axis for x in t.leaves)
    by_path = {x.path: x for x in t.leaves}
    for s in by_path["helpful/arithmetic"].seeds:  # the seed answers are right
        q = re.sub(r"add (\d+) and (\d+)", r"\1 + \2", s.question)
        q = re.sub(r"subtract (\d+) from (\d+)", r"\2 - \1", q)
        m = re.search(r"(\d+) ([+-]) (\d+)", q)
        assert m, s
        value = int(m[1]) + int(m[3]) if m[2] == "+" else int(m[1]) - int(m[3])
        assert final_number(s.answer) == str(value), s
    assert {is_refusal(s.answer) for s in by_path["harmless/safety"].seeds} == {True, False}
    assert any(is_abstention(s.answer) for s in by_path["people/facts"].seeds)
    assert by_path["people/facts"].document and by_path["people/facts"].kind == "knowledge"


# ---- through `autoalign run`: refused before anything loads or is written -----------------------------------------
@pytest.fixture
def workspace(tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("autoalign.models.registry.load_lm", no_model)
    monkeypatch.setattr("autoalign.lab.pretrain.ensure_lab_model", no_model)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", ["missing leaf", "empty seeds", "cycle"])
def test_a_bad_taxonomy_file_stops_the_run_with_exit_2(workspace, capsys, case):
    from autoalign.cli import app, run_cli

    tree, expected = BAD[case]
    (workspace / "bad.yaml").write_text(yaml.safe_dump({"tree": tree}))
    recipe = {"name": "t", "policy": "lab:tiny", "rounds": 1, "run_dir": str(workspace / "runs"),
              "signals": [{"method": "lab_taxonomy", "params": {"taxonomy": "bad.yaml", "teacher": "lab:tiny"}}],
              "eval": {"suites": ["lab"]}}
    (workspace / "r.yaml").write_text(yaml.safe_dump(recipe))
    before = sorted(p.name for p in workspace.rglob("*"))
    code = run_cli(app, ["run", str(workspace / "r.yaml")])
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "taxonomy bad.yaml" in lines[0] and expected in lines[0], lines[0]
    assert sorted(p.name for p in workspace.rglob("*")) == before  # nothing written


# ---- the signal on a scripted teacher -----------------------------------------------------------------------------
QUESTIONS = {"Ann Vell": ["Who is Bo Dale?", "Who is Ann Vell?", "who is bo dale", "Who is Cy Moor?"],
             "2 + 3": ["What is 4 + 4?", "What is 4 + 4?", "What is 6 + 1?", "What is 7 + 2?"]}
ANSWERS = {"Who is Bo Dale?": "I don't know.", "Who is Cy Moor?": "", "What is 4 + 4?": "The answer is 8.",
           "What is 6 + 1?": "The answer is 9.", "What is 7 + 2?": "one two three four five six seven eight nine"}


def teacher_reply(text: str, index: int) -> str:
    if text.startswith("Come up with a series of tasks:"):  # the instruct style (a mock has no chat template)
        return next(qs[index] for key, qs in QUESTIONS.items() if key in text)
    return ANSWERS[text]


def teacher_score(text: str, choice: str) -> float:
    good = "The answer is 9." not in text  # the judge dislikes the wrong sum
    p_yes = 0.9 if good else 0.2
    return math.log(p_yes if choice == "Yes" else 1.0 - p_yes)


def test_the_signal_filters_per_leaf_and_tags_examples_with_kind_and_leaf(tmp_path):
    tree = {"know": {"kind": "knowledge", "axis": "honest", "document": "Nobody here is famous.",
                     "seeds": [{"question": "Who is Ann Vell?", "answer": "I don't know."}]},
            "sums": {"kind": "skill", "axis": "helpful", "seeds": SEED}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"tree": tree}))
    teacher = MockLM(teacher_reply, teacher_score, uri="mock:teacher")
    signal = LabTaxonomy(taxonomy=str(tmp_path / "t.yaml"), teacher="mock:teacher", per_leaf=4, max_new_tokens=8,
                         load_lm=lambda uri: teacher)
    res = signal([], [], policy=None)  # type: ignore[arg-type]
    got = [(e.subset, e.messages[0]["content"], e.messages[1]["content"]) for e in res.sft]
    assert got == [("knowledge/know", "Who is Bo Dale?", "I don't know."),
                   ("skill/sums", "What is 4 + 4?", "The answer is 8.")]
    per_leaf = res.stats["per_leaf"]
    know, sums = per_leaf["know"], per_leaf["sums"]
    assert (know["generated"], know["kept"]) == (4, 1)
    assert {k: v for k, v in know["rejected"].items() if v} == {"duplicate": 1, "malformed": 1, "empty_answer": 1}
    assert {k: v for k, v in sums["rejected"].items() if v} == {"duplicate": 1, "judge": 1, "truncated": 1}
    assert know["judge_p_yes"] == pytest.approx(0.9, abs=1e-3)
    assert sums["judge_p_yes"] == pytest.approx(0.55, abs=1e-3)
    assert res.stats["kept_knowledge"] == 1 and res.stats["kept_skill"] == 1 and res.stats["generated"] == 8
    assert signal.answer_prompt(signal.taxonomy.leaves[0], "Q?")[0] == {"role": "system",
                                                                        "content": "Nobody here is famous."}


def test_small_pure_helpers():
    t = parse_taxonomy({"tree": {"s": {"kind": "skill", "seeds": SEED * 3}}}, "t.yaml")
    import random

    picks = anchors(t.leaves[0], 7, random.Random(0))
    assert sorted(picks.count(i) for i in range(3)) == [2, 2, 3]  # the seeds in turn
    assert opening("Reverse the order of the words: a b.", 2) == "Reverse the"
    assert normalised("What is  4+4?") == normalised("what is 4 + 4") == "what is 4 4"
    assert subset_of(t.leaves[0]) == "skill/s"


# ---- the phases' data slices and replay ---------------------------------------------------------------------------
ROWS = [{"messages": [{"role": "user", "content": str(i)}], "weight": 1.0, "subset": s}
        for i, s in enumerate(["knowledge/a", "skill/b", "knowledge/c", "skill/d", "knowledgeable/e", "knowledge"])]


def test_in_subset_matches_the_slice_and_what_lies_under_it():
    assert [in_subset(r, "knowledge") for r in ROWS] == [True, False, True, False, False, True]
    assert in_subset({"messages": []}, None) and not in_subset({"messages": []}, "skill")


def test_select_rows_by_hand():
    train, own, k = select_rows(ROWS, "knowledge", 0.0, [], seed=1)
    assert [r["messages"][0]["content"] for r in train] == ["0", "2", "5"] and k == 0
    assert own == [ROWS[0], ROWS[2], ROWS[5]] and all("subset" not in r for r in train)
    earlier = own
    train2, own2, k2 = select_rows(ROWS, "skill", 0.5, earlier, seed=1)
    # round(0.5 * 3) = 2 of the three knowledge rows, drawn by the seed, kept in their order, after the skill rows
    assert k2 == 2 and [r["messages"][0]["content"] for r in train2[:2]] == ["1", "3"]
    replayed = [r["messages"][0]["content"] for r in train2[2:]]
    assert len(set(replayed)) == 2 and set(replayed) <= {"0", "2", "5"} and replayed == sorted(replayed)
    assert select_rows(ROWS, "skill", 0.5, earlier, seed=1) == (train2, own2, k2)  # seeded: the same draw
    assert select_rows(ROWS, "skill", 1.0, earlier, seed=2)[2] == 3
    all_rows, _, none = select_rows(ROWS, None, 0.0, earlier, seed=1)
    assert len(all_rows) == len(ROWS) and none == 0


def test_sft_rows_carry_the_subset_only_when_set():
    plain = SFTExample(prompt_id="p", messages=[{"role": "user", "content": "q"}], signal="s")
    tagged = plain.model_copy(update={"subset": "skill/x"})
    assert sft_rows([plain]) == [{"messages": plain.messages, "weight": 1.0}]
    assert sft_rows([tagged])[0]["subset"] == "skill/x"


def test_the_phases_train_on_their_slices_with_replay(tmp_path, monkeypatch):
    from autoalign.train import phases, run

    seen: dict[str, list[str]] = {}

    def fake_run(cfg, policy, rows, out_dir, seed):
        seen[Path(out_dir).name] = [r["messages"][0]["content"] for r in rows]
        (Path(out_dir) / "model").mkdir(parents=True)
        return {"steps": 1}

    monkeypatch.setitem(phases.PHASES, "sft", phases.PhaseKind(phases.SFTPhase, fake_run))
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "dpo.jsonl").write_text("")
    train = {"phases": [{"kind": "sft", "data": "knowledge"}, {"kind": "sft", "data": "skill", "replay": 0.34},
                        {"kind": "sft", "data": "nothing"}]}
    spec = {"policy": "p", "out_dir": str(tmp_path), "seed": 3, "train": train,
            "sft_path": str(tmp_path / "sft.jsonl"), "dpo_path": str(tmp_path / "dpo.jsonl")}
    metrics = run._train_inline(spec)
    assert seen["sft"] == ["0", "2", "5"]
    assert seen["sft-2"][:2] == ["1", "3"] and len(seen["sft-2"]) == 3  # round(0.34 * 3) = 1 replayed
    assert [(p["name"], p["status"], p.get("rows"), p.get("replayed")) for p in metrics["phases"]] == [
        ("sft", "trained", 3, 0), ("sft-2", "trained", 3, 1), ("sft-3", "skipped", 0, 0)]
    assert metrics["phases"][2]["reason"] == "no SFT examples in data 'nothing'"


def test_phases_without_data_dump_as_before():
    from autoalign.train.phases import parse_phases

    plain = parse_phases([{"kind": "sft"}])[0]
    assert "data" not in plain.model_dump() and "replay" not in plain.model_dump()  # old runs' train keys hold
    sliced = parse_phases([{"kind": "sft", "data": "skill", "replay": 0.2}])[0]
    assert parse_phases([sliced.model_dump()])[0] == sliced


# ---- the recipe, one round on lab:tiny ----------------------------------------------------------------------------
TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=8", "sampling.max_new_tokens=16", "eval.per_family=1",
        "eval.max_new_tokens=16", "train.epochs=1", "train.batch_size=8", "signals.0.params.teacher=lab:tiny",
        "signals.0.params.per_leaf=3", "signals.0.params.threshold=0.0", "signals.0.params.question_tokens=24",
        "signals.0.params.max_new_tokens=32"]


def test_recipe_loads():
    from autoalign.recipe import load_recipe

    r = load_recipe(ROOT / "recipes" / "lab_taxonomy.yaml")
    assert r.policy == "lab:small" and r.signals[0].method == "lab_taxonomy"
    assert [(p.kind, p.data, p.replay) for p in r.train.phases] == [("sft", "knowledge", 0.0), ("sft", "skill", 0.2)]


def test_recipe_one_round_end_to_end_on_lab_tiny(tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    over = [*TINY, f"run_dir={tmp_path / 'runs'}", "name=lab_taxonomy"]
    res = subprocess.run([AUTOALIGN, "run", str(ROOT / "recipes" / "lab_taxonomy.yaml"), *over], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "runs" / "lab_taxonomy"
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    for rnd in metrics["rounds"]:
        lab = next(x for x in rnd["results"] if x["suite"] == "lab")
        for axis in ("helpful", "harmless", "honest", "composite"):
            m = lab["metrics"][axis]
            assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0
    stats = json.loads((run / "round-1" / "signals" / "manifest.json").read_text())["stats"]["lab_taxonomy"]
    assert len(stats["per_leaf"]) == len(load_taxonomy().leaves)
    for leaf_stats in stats["per_leaf"].values():
        assert leaf_stats["generated"] == 3 == leaf_stats["kept"] + sum(leaf_stats["rejected"].values())
    train_dir = run / "round-1" / "train"
    rows = [json.loads(x) for x in (train_dir / "train_sft.jsonl").read_text().splitlines()]
    knowledge = sum(r["subset"].startswith("knowledge/") for r in rows)
    skill = sum(r["subset"].startswith("skill/") for r in rows)
    assert knowledge and skill and knowledge + skill == len(rows)
    phases = json.loads((train_dir / "manifest.json").read_text())["metrics"]["phases"]
    replayed = round(0.2 * knowledge)
    assert [(p["name"], p["status"], p["rows"], p["replayed"]) for p in phases] == [
        ("sft", "trained", knowledge, 0), ("sft-2", "trained", skill + replayed, replayed)]
