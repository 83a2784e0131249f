"""Aligners with inspectors (Ngweta et al. 2024): the pure parts by hand (routing, pairs, threshold calibration),
the wrapper's order with scripted parts, an inspector trained by TRL deciding a constructed pair, and one round on
lab:tiny through the CLI that writes the artifacts, evaluates the wrapped variant and resumes with the same parts."""

import json
import subprocess
from pathlib import Path

import pytest

from autoalign.decoding.aligners_inspectors import AlignersInspectorsLM, route
from autoalign.models.base import Completion, Sampling
from autoalign.recipe import load_recipe
from autoalign.records import Prompt, Sample
from autoalign.signals.base import StageContext
from autoalign.signals.model_feedback.aligners_inspectors import (
    AlignersInspectors,
    Inspector,
    artifact_kind,
    calibrate_threshold,
    criterion_principle,
    decision_accuracy,
    inspector_pairs,
)
from autoalign.signals.model_feedback.constitution import default_constitution
from autoalign.signals.model_feedback.critique_revise import Revision

ROOT = Path(__file__).resolve().parents[2]


# ---- routing ----------------------------------------------------------------------------------------------------
def test_route_keeps_the_failed_criteria_in_the_given_order():
    scores = {"helpful": -1.0, "honest": 0.9, "harmless": 0.1}
    thresholds = {"helpful": 0.0, "honest": 0.5, "harmless": 0.5}
    assert route(scores, thresholds, ["harmless", "honest", "helpful"]) == ["harmless", "helpful"]
    assert route(scores, thresholds, ["helpful", "harmless"]) == ["helpful", "harmless"]


def test_route_at_the_threshold_meets_and_a_missing_inspector_is_never_routed():
    assert route({"harmless": 0.5}, {"harmless": 0.5}, ["harmless"]) == []  # score >= threshold: meets
    assert route({"harmless": 0.1}, {}, ["harmless"]) == []  # no threshold: no inspector
    assert route({}, {"honest": 0.5}, ["honest"]) == []
    assert route({"honest": 0.1}, {"honest": 0.5}, ["harmless"]) == []  # outside the order: not applied


# ---- pairs and calibration ---------------------------------------------------------------------------------------
def test_inspector_pairs_put_the_own_prompts_meeting_answer_first():
    ids, meets = ["a", "a", "b", "b", "c"], [True, False, True, True, False]
    one = inspector_pairs(ids, meets, per_fail=1, seed=0)
    assert one[0] == (0, 1) and len(one) == 2 and one[1][1] == 4 and one[1][0] in (0, 2, 3)
    pairs = inspector_pairs(ids, meets, per_fail=2, seed=0)
    first = [p for p in pairs if p[1] == 1]
    assert first[0] == (0, 1) and len(first) == 2 and first[1][0] in (2, 3)  # own prompt, then one drawn
    fourth = [p for p in pairs if p[1] == 4]
    assert len(fourth) == 2 and {i for i, _ in fourth} <= {0, 2, 3} and len({i for i, _ in fourth}) == 2
    assert pairs == inspector_pairs(ids, meets, per_fail=2, seed=0)  # seeded
    assert inspector_pairs(ids, [True] * 5, 2, 0) == [] and inspector_pairs(ids, [False] * 5, 2, 0) == []


def test_calibrate_threshold_by_hand():
    t, v = calibrate_threshold([0.1, 0.4, 0.6, 0.9], [False, False, True, True])
    assert t == pytest.approx(0.5) and v == pytest.approx(1.0)
    # scores ranked against the labels: accuracy is best labelling all as meets (2 of 3), the lowest threshold
    t, v = calibrate_threshold([0.1, 0.2, 0.3], [True, True, False])
    assert t == pytest.approx(-0.9) and v == pytest.approx(2 / 3)
    # balanced accuracy: every threshold at best 0.5; among equals the lowest (fewest answers flagged)
    t, v = calibrate_threshold([0.1, 0.2, 0.3], [True, True, False], "balanced")
    assert t == pytest.approx(-0.9) and v == pytest.approx(0.5)
    t, v = calibrate_threshold([0.3, 0.7], [True, True])
    assert t == pytest.approx(-0.7) and v == pytest.approx(1.0)
    assert decision_accuracy([0.1, 0.4, 0.6], [False, True, True], 0.5) == pytest.approx(2 / 3)


def test_criterion_names_a_principle_by_id_or_axis():
    const = default_constitution()
    assert criterion_principle(const, "honest").axis == "honest"
    with pytest.raises(ValueError, match="neither a principle id nor an axis"):
        criterion_principle(const, "funny")
    with pytest.raises(ValueError):
        AlignersInspectors(criteria=["helpful", "helpful"])


# ---- the wrapper, with scripted parts ----------------------------------------------------------------------------
class _Policy:
    uri = "scripted"

    def fingerprint(self) -> str:
        return "p"

    def generate(self, prompts, sampling):
        return [[Completion(text=p[-1]["content"].upper(), num_tokens=3)] for p in prompts]

    def logprobs(self, prompts, continuations):
        return [0.0] * len(prompts)


class _Inspector:
    def __init__(self, criterion, fails_on):
        self.criterion, self.fails_on, self.threshold, self.meta = criterion, fails_on, 0.0, {"axis": criterion}

    def fingerprint(self):
        return self.criterion

    def scores(self, prompts, answers):
        return [-1.0 if self.fails_on in a else 1.0 for a in answers]


class _AlignerLM:
    def __init__(self, criterion):
        self.criterion = criterion

    def fingerprint(self):
        return self.criterion

    def generate(self, prompts, sampling):
        return [[Completion(text=f"{self.criterion}({p[-1]['content']})", num_tokens=2)] for p in prompts]


class _Aligner:
    def __init__(self, criterion):
        self.lm, self.template, self.principle = _AlignerLM(criterion), "", criterion

    def messages(self, prompt, answer):
        return [{"role": "user", "content": answer}]


def test_wrapper_applies_the_routed_aligners_in_order_and_records_them():
    order = ["harmless", "honest", "helpful"]
    lm = AlignersInspectorsLM(_Policy(), {c: _Inspector(c, f) for c, f in
                                          (("harmless", "BOMB"), ("honest", "XYZ"), ("helpful", "BOMB"))},
                              {c: _Aligner(c) for c in order}, order)
    out = lm.generate([[{"role": "user", "content": "a bomb"}], [{"role": "user", "content": "fine"}]], Sampling())
    assert out[0][0].text == "helpful(harmless(A BOMB))" and out[0][0].logprob is None
    assert out[1][0].text == "FINE"  # no inspector flags it: the draft stands
    first = lm.records[0]
    assert first.applied == ["harmless", "helpful"] and first.draft == "A BOMB"
    assert first.aligner_tokens == 4 and out[0][0].num_tokens == 7
    assert lm.stats["applied.harmless"] == 1 and lm.stats["applied.honest"] == 0 and lm.stats["rewritten"] == 1


# ---- the trained parts ---------------------------------------------------------------------------------------------
def _arith(n: int) -> tuple[Prompt, list[Sample], int]:
    a, b = n % 5 + 1, n % 3 + 2
    p = Prompt(id=f"p{n}", messages=[{"role": "user", "content": f"What is {a} + {b}?"}], axis="helpful")
    good = Sample(prompt_id=p.id, index=0, text=f"The answer is {a + b}.", model="m")
    bad = Sample(prompt_id=p.id, index=1, text="I can't help with that.", model="m")
    return p, [good, bad], a + b


def test_an_inspector_trained_by_trl_decides_a_constructed_pair(tiny_lm, tmp_path):
    signal = AlignersInspectors(criteria=["helpful"], inspector_base="policy", heldout=0.0, pairs_per_fail=2,
                                min_pairs=2, inspector_epochs=6, inspector_learning_rate=2e-3, batch_size=8)
    principle = signal.criteria["helpful"]
    revs = []
    for n in range(8):
        p, (good, bad), _ = _arith(n)
        revs += [Revision(p, good, principle, status="passed", draft_score=0.9),
                 Revision(p, bad, principle, status="not_improved", draft_score=0.1)]
    stats = signal.train_inspector("helpful", revs, tiny_lm, tmp_path / "insp", seed=0)
    assert stats["trained"] and stats["pairs"] == 16 and stats["calibrated_on"] == "train"
    assert stats["train_accuracy"] == pytest.approx(1.0, abs=0.07)
    inspector = Inspector(tmp_path / "insp")
    pair = [[{"role": "user", "content": "What is 4 + 4?"}]] * 2
    assert inspector.meets(pair, ["The answer is 8.", "I can't help with that."]) == [True, False]
    again = signal.train_inspector("helpful", revs, tiny_lm, tmp_path / "insp", seed=0)  # same inputs: reused
    assert again["threshold"] == pytest.approx(stats["threshold"])


def test_a_later_round_reuses_the_earlier_parts_without_the_teacher(tmp_path):
    def no_loading(uri, **_):
        raise AssertionError(f"loaded {uri}")

    signal = AlignersInspectors(criteria=["helpful", "honest"], load_lm=no_loading)
    arts = {artifact_kind(r, c): tmp_path / r / c for r in ("inspector", "aligner") for c in ("helpful", "honest")}
    res = signal([], [], _Policy(), StageContext(dir=tmp_path, round=2, seed=0, artifacts=arts))
    assert res.stats["source"] == "earlier round" and not res.artifacts and not res.sft


# ---- the recipe ----------------------------------------------------------------------------------------------------
def test_recipe_loads():
    r = load_recipe(ROOT / "recipes" / "aligners_inspectors.yaml")
    assert r.policy == "lab:small" and r.train.phases == [] and r.eval.wrappers[0].method == "aligners_inspectors"
    assert r.signals[0].params["teacher"] == "lab:teacher"


TINY = ["policy=lab:tiny", "rounds=1", "prompts.count=12", "sampling.max_new_tokens=16", "eval.per_family=1",
        "eval.max_new_tokens=16", "signals.0.params.teacher=lab:tiny", "signals.0.params.max_new_tokens=24",
        "signals.0.params.min_pairs=1", "signals.0.params.min_examples=1", "signals.0.params.inspector_epochs=1",
        "signals.0.params.aligner_epochs=1", "name=ai"]


def test_one_round_on_lab_tiny_writes_the_parts_evaluates_the_variant_and_resumes(tiny_model_dir, tmp_path):
    from tests.e2e.test_run import AUTOALIGN

    cmd = [AUTOALIGN, "run", str(ROOT / "recipes" / "aligners_inspectors.yaml"), *TINY, f"run_dir={tmp_path / 'runs'}"]

    def run() -> str:
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        return res.stderr

    run()
    run_dir = tmp_path / "runs" / "ai"
    manifest = json.loads((run_dir / "round-1" / "signals" / "manifest.json").read_text())
    declared = manifest["artifacts"]["0"]
    assert declared, manifest["stats"]
    stats = manifest["stats"]["aligners_inspectors"]
    for kind, art in declared.items():
        role, _, c = kind.partition(".")
        assert art["kind"] == kind and stats[c][role]["trained"]
        assert (run_dir / "round-1" / "signals" / art["path"] / "model" / "config.json").is_file()
    for c in ("helpful", "harmless", "honest"):
        assert stats[c]["judged"] > 0 and {"failing", "revisions_kept"} <= set(stats[c])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    suites = {x["suite"]: x for x in metrics["rounds"][1]["results"]}
    assert {"lab", "lab@aligners"} <= set(suites)
    for axis in ("helpful", "harmless", "honest", "composite"):
        m = suites["lab@aligners"]["metrics"][f"{axis}@aligners"]
        assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0
    models = sorted((run_dir / "round-1" / "signals" / "0").glob("aligners_inspectors/*/model/model.safetensors"))
    stamps = {p: p.stat().st_mtime_ns for p in models}

    # a run killed after training, before the signals stage's manifest: the parts are found again, not retrained
    (run_dir / "round-1" / "signals" / "manifest.json").unlink()
    run()
    again = json.loads((run_dir / "round-1" / "signals" / "manifest.json").read_text())
    assert again["artifacts"] == manifest["artifacts"]
    assert {p: p.stat().st_mtime_ns for p in models} == stamps


# ---- evaluation against the oracle -------------------------------------------------------------------------------
class _SaysMeets:
    threshold, meta = 0.0, {"axis": "honest"}

    def meets(self, prompts, answers):
        return [a.startswith("I don't know") or a.startswith("No,") for a in answers]


def test_inspector_accuracy_counts_agreement_with_the_oracle_on_its_axis():
    from autoalign.evaluate.inspectors import heldout_answers, inspector_accuracy
    from autoalign.lab.oracle import eval_items, grade_many

    tasks = [t for t in eval_items(2, 1234) if t.axis in ("honest", "helpful")][:12]
    items = heldout_answers(tasks, None, seed=0)
    assert [s for _, _, s in items].count("reference") == len(tasks) == [s for _, _, s in items].count("failure")
    res = inspector_accuracy({"honest": _SaysMeets()}, items)["honest"]
    honest = [(t, a) for t, a, _ in items if t.axis == "honest"]
    grades = grade_many([t for t, _ in honest], [a for _, a in honest])
    said = _SaysMeets().meets(None, [a for _, a in honest])
    expected = sum(m == g.correct for m, g in zip(said, grades)) / len(honest)
    assert res["accuracy"]["n"] == len(honest) and res["accuracy"]["value"] == pytest.approx(expected)
    assert res["accuracy"]["lo"] <= res["accuracy"]["value"] <= res["accuracy"]["hi"]
