"""Judge/oracle agreement (evaluation side) with hand-computed values, and the loop's variant renaming."""

import pytest

from autoalign.evaluate.judge_agreement import judge_agreement, lab_tasks_for, reward_model_lab_accuracy
from autoalign.evaluate.rounds import variant
from autoalign.lab.prompts import lab_prompts
from autoalign.records import Label, Preference, Sample, SFTExample


@pytest.fixture(scope="module")
def arithmetic():
    """Two lab arithmetic prompts with their tasks, regenerated the way the loop does."""
    prompts = lab_prompts(2, seed=5, families=["arithmetic"])
    tasks = lab_tasks_for(prompts, 2, 5, ["arithmetic"])
    assert set(tasks) == {p.id for p in prompts}
    return prompts, tasks


def _answer(task, right: bool) -> str:
    return task.good if right else f"The answer is {int(task.truth['answer']) + 1}."


def test_pairwise_pointwise_and_training_data_agreement(arithmetic):
    prompts, tasks = arithmetic
    p, q = prompts
    tp, tq = tasks[p.id], tasks[q.id]
    # prompt p: samples 0 (right), 1 (wrong), 2 (wrong); prompt q: 0 (wrong), 1 (right)
    samples = [Sample(prompt_id=p.id, index=0, text=_answer(tp, True), model="m"),
               Sample(prompt_id=p.id, index=1, text=_answer(tp, False), model="m"),
               Sample(prompt_id=p.id, index=2, text=_answer(tp, False) + " ", model="m"),
               Sample(prompt_id=q.id, index=0, text=_answer(tq, False), model="m"),
               Sample(prompt_id=q.id, index=1, text=_answer(tq, True), model="m")]
    scores = {(p.id, 0): 0.9, (p.id, 1): 0.2, (p.id, 2): 0.95, (q.id, 0): 0.4, (q.id, 1): 0.4}
    labels = [Label(prompt_id=pid, sample_index=i, signal="j", verdict="scored", score=v, kind="unit")
              for (pid, i), v in scores.items()]
    # oracle-separated pairs: p (0,1) judge right, p (0,2) judge wrong, q (0,1) a tie -> a miss: 1/3
    # pointwise (>= 0.5 vs oracle): p0 yes/right, p1 no/wrong, p2 yes/wrong, q0 no/wrong, q1 no/right -> 3/5
    sft = [SFTExample(prompt_id=p.id, messages=[*p.messages, {"role": "assistant", "content": _answer(tp, False)}],
                      signal="j")]
    prefs = [Preference(prompt_id=p.id, prompt=p.messages, chosen=samples[0].text, rejected=samples[1].text, signal="j"),
             Preference(prompt_id=q.id, prompt=q.messages, chosen=samples[3].text, rejected=samples[4].text, signal="j"),
             Preference(prompt_id=p.id, prompt=p.messages, chosen=samples[1].text, rejected=samples[2].text, signal="j")]
    res = judge_agreement(prompts, samples, labels, sft, prefs, tasks, model="m")
    m = res.metrics
    assert m["samples_correct"].value == pytest.approx(2 / 5) and m["samples_correct"].n == 5
    assert m["j.judge_pairwise"].value == pytest.approx(1 / 3) and m["j.judge_pairwise"].n == 3
    assert m["j.judge_pointwise"].value == pytest.approx(3 / 5)
    assert m["j.sft_correct"].value == 0.0 and m["j.sft_correct"].n == 1
    # the third pair is two wrong answers: the oracle does not separate it
    assert m["j.pair_correct"].value == pytest.approx(1 / 2) and m["j.pair_correct"].n == 2
    assert 0.0 <= m["j.judge_pairwise"].lo <= 1 / 3 <= m["j.judge_pairwise"].hi <= 1.0
    assert res.config["headline"] == ["j.judge_pairwise", "j.proxy_score", "samples_correct"]
    assert res.config["graded_prompts"] == 2
    # the over-optimisation meter: the judge's own mean score (0.9 + 0.2 + 0.95 + 0.4 + 0.4) / 5 beside the oracle's
    assert m["j.proxy_score"].value == pytest.approx(0.57) and m["j.proxy_score"].axis == "signal"


def test_pairwise_verdicts_and_revisions(arithmetic):
    prompts, tasks = arithmetic
    p = prompts[0]
    t = tasks[p.id]
    samples = [Sample(prompt_id=p.id, index=0, text=_answer(t, True), model="m"),
               Sample(prompt_id=p.id, index=1, text=_answer(t, False), model="m")]
    labels = [Label(prompt_id=p.id, sample_index=0, signal="rl", verdict="win", score=0.8, kind="pairwise",
                    detail={"versus": 1}),
              Label(prompt_id=p.id, sample_index=1, signal="rl", verdict="win", score=0.7, kind="pairwise",
                    detail={"versus": 0}),
              Label(prompt_id=p.id, sample_index=0, signal="rl", verdict="tie", score=0.5, kind="pairwise",
                    detail={"versus": 1}),
              # revisions: 1 fixes a wrong draft, 0 breaks a right one
              Label(prompt_id=p.id, sample_index=1, signal="cai", verdict="revised", score=1.0,
                    selected=True, detail={"revision": _answer(t, True)}),
              Label(prompt_id=p.id, sample_index=0, signal="cai", verdict="revised", score=1.0,
                    selected=True, detail={"revision": "I don't know."}),
              # a revision the signal did not keep is not measured as one
              Label(prompt_id=p.id, sample_index=0, signal="cai", verdict="not_improved", score=0.0,
                    selected=False, detail={"revision": _answer(t, True)}),
              Label(prompt_id=p.id, sample_index=0, signal="cai", verdict="passed", score=1.0, selected=True,
                    detail={})]
    res = judge_agreement(prompts, samples, labels, [], [], tasks)
    assert res.metrics["rl.judge_pairwise"].value == pytest.approx(1 / 3)
    assert res.metrics["cai.revision_correct"].value == pytest.approx(1 / 2)
    assert res.metrics["cai.draft_correct"].value == pytest.approx(1 / 2)
    assert res.config["breakdown"]["cai"]["revisions"] == {"fixed": 1, "broken": 1, "n": 2}


def test_a_signal_never_seen_before_is_measured(arithmetic):
    """A toy signal, defined here, with verdict words no module knows: its scores are measured against the oracle
    because its labels say what the score means (``kind``), not because evaluation knows its vocabulary."""
    prompts, tasks = arithmetic
    p, q = prompts
    samples = [Sample(prompt_id=p.id, index=0, text=_answer(tasks[p.id], True), model="m"),
               Sample(prompt_id=p.id, index=1, text=_answer(tasks[p.id], False), model="m"),
               Sample(prompt_id=q.id, index=0, text=_answer(tasks[q.id], True), model="m"),
               Sample(prompt_id=q.id, index=1, text=_answer(tasks[q.id], False), model="m")]

    def toy_signal(samples):  # likes short answers: right on p, wrong on q when the wrong answer is shorter
        return [Label(prompt_id=s.prompt_id, sample_index=s.index, signal="toy",
                      verdict="splendid" if len(s.text) < 30 else "dreadful",
                      score=1.0 / (1.0 + len(s.text)), kind="reward") for s in samples]

    labels = toy_signal(samples)
    res = judge_agreement(prompts, samples, labels, [], [], tasks)
    # one oracle-separated pair per prompt; the toy ranks the shorter text higher
    expect = [len(samples[0].text) < len(samples[1].text), len(samples[2].text) < len(samples[3].text)]
    assert res.metrics["toy.judge_pairwise"].n == 2
    assert res.metrics["toy.judge_pairwise"].value == pytest.approx(sum(expect) / 2)
    assert "toy.judge_pointwise" not in res.metrics  # a reward is not a probability: no threshold reading
    unit = [lab.model_copy(update={"kind": "unit", "score": 1.0 if lab.verdict == "splendid" else 0.0})
            for lab in labels]
    res = judge_agreement(prompts, samples, unit, [], [], tasks)
    assert res.metrics["toy.judge_pointwise"].n == 4
    # and a label that says it is no judgement is not read as one, whatever its verdict word
    none = [lab.model_copy(update={"kind": "none", "verdict": "scored"}) for lab in labels]
    assert "toy.judge_pairwise" not in judge_agreement(prompts, samples, none, [], [], tasks).metrics


def test_prompts_without_ground_truth_are_left_out(arithmetic):
    prompts, tasks = arithmetic
    written = prompts[0].model_copy(update={"id": "si-1", "source": "self_instruct"})
    assert lab_tasks_for([written], 2, 5, ["arithmetic"]) == {}
    res = judge_agreement([written], [Sample(prompt_id="si-1", index=0, text="x", model="m")],
                          [Label(prompt_id="si-1", sample_index=0, signal="j", verdict="scored", score=1.0,
                                 kind="unit")],
                          [], [], {})
    assert res.metrics == {} and res.config["graded_prompts"] == 0


def test_reward_model_lab_accuracy_counts_ties_as_errors():
    class LengthRM:  # prefers the longer response; a constant RM ties everything
        def __init__(self, const=False):
            self.const = const

        def score(self, prompts, responses):
            return [0.0 if self.const else float(len(r)) for r in responses]

    assert reward_model_lab_accuracy(LengthRM(const=True), per_family=2).value == 0.0
    m = reward_model_lab_accuracy(LengthRM(), per_family=2)
    assert m.n > 0 and 0.0 <= m.value <= 1.0


def test_variant_renames_axis_scores_and_suite():
    res = {"suite": "lab", "model": "m", "metrics": {"helpful": {"v": 1}, "composite": {"v": 2}, "helpful.x": {}},
           "transcripts": [{"suite": "lab", "item_id": "a"}], "config": {"headline": ["composite"]}}
    out = variant(res, "best-of-4")
    assert out["suite"] == "lab@best-of-4"
    assert set(out["metrics"]) == {"helpful@best-of-4", "composite@best-of-4", "helpful.x"}
    assert out["config"]["headline"] == ["composite@best-of-4"] and out["transcripts"][0]["suite"] == "lab@best-of-4"
    assert res["suite"] == "lab"  # the input is not modified
