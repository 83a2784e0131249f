"""How far a round's model feedback agrees with the lab oracle: measured here, by evaluation, from what the signal
wrote (its labels and training data); the signal itself never sees the oracle (import contract).

Per signal (``Label.signal``), on the round's lab prompts (a prompt the policy wrote itself has no ground truth and
is left out; ``config["graded_prompts"]`` says how many were graded):

- ``<signal>.judge_pairwise``: over pairs of a prompt's samples that the oracle grades differently (one correct,
  one not), the share where the signal ranks the correct one strictly higher: its pointwise score (labels of
  kind ``unit`` or ``reward``: a judge's verdict, a reward model's reward) or its pairwise score (kind
  ``pairwise``: P(the sample beats ``detail["versus"]``) on the correct side of 1/2; exactly 1/2 is a miss);
- ``<signal>.judge_pointwise``: for labels of kind ``unit`` (scores in [0, 1]), the share where ``score >= 0.5``
  matches the oracle's correct / incorrect;
- ``<signal>.revision_correct`` / ``<signal>.draft_correct`` (critique-and-revise, Aligner): the oracle's
  verdict on the revisions the signal kept (``selected`` labels with a ``detail["revision"]``) and on the drafts
  they revise;
- ``<signal>.sft_correct``: SFT targets the oracle grades correct; ``<signal>.pair_correct``: training pairs whose
  chosen response is the correct one, over the pairs the oracle separates;
- ``samples_correct``: the round's samples the oracle grades correct (the base rate the signal should beat).

``reward_model_lab_accuracy``: a reward model's pairwise accuracy on held-out lab pairs (eval-split tasks, the
reference response vs the task's characteristic failure, kept only when the oracle grades them apart).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

from autoalign.evaluate.common import mean_metric, rate
from autoalign.evaluate.oracle_scorer import OracleScorer
from autoalign.evaluate.result import Metric, SuiteResult
from autoalign.lab.oracle import Task, eval_items, grade_many
from autoalign.records import Label, Preference, Prompt, Sample, SFTExample

SUITE = "judge_agreement"
SCORER = "lab-oracle"
# Read from a label's structure (``Label.kind``, ``Label.selected``, ``detail["revision"]``), never from its verdict
# word, so a signal nobody here has heard of is measured as long as it says what its score means.
POINTWISE = ("unit",)  # scores in [0, 1]: P(the sample is good)
RANKED = ("unit", "reward")  # scores that rank a prompt's samples
PAIRED = ("pairwise",)  # P(the sample beats detail["versus"])


def proposed_revision(lab: Label) -> str | None:
    """The revision a label proposes for its sample (critique-and-revise, Aligner), if any."""
    rev = lab.detail.get("revision")
    return rev if isinstance(rev, str) else None


def lab_tasks_for(prompts: Sequence[Prompt], count: int, seed: int, families: list[str] | None,
                  split: str = "train") -> dict[str, Task]:
    """The lab task behind each lab prompt of a round, regenerated from the arguments the round's prompts were
    drawn with (``autoalign.lab.prompts.lab_prompts(count, seed, families, split)``), matched by (family,
    question). Prompts not found (written by the policy, or from a file) are absent from the result."""
    from autoalign.lab.world import FAMILIES, tasks

    fams = list(families or FAMILIES)
    per = {f: count // len(fams) + (i < count % len(fams)) for i, f in enumerate(fams)}
    table: dict[tuple[str | None, str], Task] = {
        (t.family, t.question): t for f in fams for t in tasks(f, per[f], seed, split)}
    out = {}
    for p in prompts:
        t = table.get((p.family, p.text))
        if t is not None and p.source == "lab":
            out[p.id] = t
    return out


class _Grader:
    """Grades (prompt id, text) pairs once each, in one sandbox batch."""

    def __init__(self, tasks: dict[str, Task]):
        self.tasks = tasks
        self.todo: dict[tuple[str, str], None] = {}
        self.done: dict[tuple[str, str], bool] = {}

    def want(self, pid: str, text: str | None) -> None:
        if text is not None and pid in self.tasks and (pid, text) not in self.done:
            self.todo[(pid, text)] = None

    def run(self) -> None:
        keys = list(self.todo)
        prompts = [Prompt(id=pid, messages=[{"role": "user", "content": ""}]) for pid, _ in keys]
        scores = OracleScorer(self.tasks)(prompts, [text for _, text in keys])
        self.done.update({k: s.value == 1.0 for k, s in zip(keys, scores, strict=True) if s.ok})
        self.todo.clear()

    def __call__(self, pid: str, text: str | None) -> bool | None:
        return None if text is None else self.done.get((pid, text))


def judge_agreement(
    prompts: Sequence[Prompt],
    samples: Sequence[Sample],
    labels: Sequence[Label],
    sft: Sequence[SFTExample],
    preferences: Sequence[Preference],
    tasks: dict[str, Task],
    model: str = "",
) -> SuiteResult:
    """The metrics of the module docstring, as one ``SuiteResult`` (suite ``judge_agreement``)."""
    grader = _Grader(tasks)
    text_of = {(s.prompt_id, s.index): s.text for s in samples}
    for s in samples:
        grader.want(s.prompt_id, s.text)
    for lab in labels:
        grader.want(lab.prompt_id, proposed_revision(lab))
    for ex in sft:
        grader.want(ex.prompt_id, ex.messages[-1]["content"])
    for pr in preferences:
        grader.want(pr.prompt_id, pr.chosen)
        grader.want(pr.prompt_id, pr.rejected)
    grader.run()

    metrics: dict[str, Metric] = {}
    graded = [s for s in samples if s.prompt_id in tasks]
    if graded:
        hits = sum(bool(grader(s.prompt_id, s.text)) for s in graded)
        metrics["samples_correct"] = _rate(hits, len(graded), "the round's samples the oracle grades correct")
    headline: list[str] = []
    breakdown: dict[str, dict] = {}
    for signal in sorted({lab.signal for lab in labels} | {e.signal for e in sft} | {p.signal for p in preferences}):
        mine = [lab for lab in labels if lab.signal == signal and lab.prompt_id in tasks]
        found = _signal_metrics(signal, mine, text_of, grader, tasks,
                                [e for e in sft if e.signal == signal and e.prompt_id in tasks],
                                [p for p in preferences if p.signal == signal and p.prompt_id in tasks], breakdown)
        metrics.update(found)
        for name in (f"{signal}.judge_pairwise", f"{signal}.revision_correct", f"{signal}.pair_correct",
                     f"{signal}.sft_correct"):
            if name in found:
                headline.append(name)
                break
        proxy = [lab.score for lab in mine if lab.kind == "unit"]  # the graded prompts' samples, as samples_correct
        if proxy:  # the over-optimisation meter: what the signal's scorer says, beside what the oracle says
            metrics[f"{signal}.proxy_score"] = mean_metric(
                proxy, "signal", f"{signal}-scorer", True,
                "the signal's own mean score of the round's samples (the proxy it optimises); compare samples_correct")
            headline.append(f"{signal}.proxy_score")
    return SuiteResult(
        suite=SUITE, model=model, metrics=metrics,
        config={"headline": [*headline, "samples_correct"] if "samples_correct" in metrics else headline,
                "graded_prompts": len({s.prompt_id for s in graded}),
                "prompts": len(prompts), "breakdown": breakdown, "scorer": SCORER},
    )


def _rate(hits: int, n: int, description: str) -> Metric:
    return rate(hits, n, "signal", SCORER, True, description)


def _signal_metrics(signal: str, labels: list[Label], text_of: dict, grader: _Grader, tasks: dict[str, Task],
                    sft: list[SFTExample], prefs: list[Preference], breakdown: dict) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    axis_of = {pid: t.axis for pid, t in tasks.items()}
    by_axis: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    # pointwise verdicts in [0, 1]: does score >= 1/2 say what the oracle says?
    point = [(lab, grader(lab.prompt_id, text_of.get((lab.prompt_id, lab.sample_index)))) for lab in labels
             if lab.kind in POINTWISE]
    point = [(lab, ok) for lab, ok in point if ok is not None]
    if point:
        hits = sum((lab.score >= 0.5) == ok for lab, ok in point)
        out[f"{signal}.judge_pointwise"] = _rate(hits, len(point), "verdict (score >= 0.5) agrees with the oracle")

    # pairs of a prompt's samples the oracle separates: ranked by score, or by a pairwise verdict
    pairs: list[tuple[str, bool]] = []
    ranked: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for lab in labels:
        if lab.kind in RANKED:
            ok = grader(lab.prompt_id, text_of.get((lab.prompt_id, lab.sample_index)))
            if ok is not None:
                ranked[lab.prompt_id].append((lab.score, ok))
        elif lab.kind in PAIRED and "versus" in lab.detail:
            a = grader(lab.prompt_id, text_of.get((lab.prompt_id, lab.sample_index)))
            b = grader(lab.prompt_id, text_of.get((lab.prompt_id, int(lab.detail["versus"]))))
            if a is not None and b is not None and a != b:
                # P(this sample wins) on the correct side of 1/2; exactly 1/2 ranks nothing: a miss
                pairs.append((lab.prompt_id, lab.score > 0.5 if a else lab.score < 0.5))
    for pid, items in ranked.items():
        for i, (sa, oa) in enumerate(items):
            for sb, ob in items[i + 1:]:
                if oa != ob:
                    pairs.append((pid, (sa > sb) if oa else (sb > sa)))  # a tie ranks nothing: a miss
    if pairs:
        out[f"{signal}.judge_pairwise"] = _rate(sum(ok for _, ok in pairs), len(pairs),
                                                "the oracle-correct sample of a pair ranked above the incorrect one")
        for pid, ok in pairs:
            by_axis[axis_of[pid]][0] += ok
            by_axis[axis_of[pid]][1] += 1
        breakdown[signal] = {ax: {"pairs": n, "agree": round(h / n, 4)} for ax, (h, n) in sorted(by_axis.items())}

    # critique-and-revise: revisions vs their drafts
    revised = [lab for lab in labels if lab.selected and proposed_revision(lab) is not None]
    rev_graded = [(grader(lab.prompt_id, proposed_revision(lab)),
                   grader(lab.prompt_id, text_of.get((lab.prompt_id, lab.sample_index)))) for lab in revised]
    rev = [(r, d) for r, d in rev_graded if r is not None and d is not None]
    if rev:
        out[f"{signal}.revision_correct"] = _rate(sum(r for r, _ in rev), len(rev), "revisions the oracle grades correct")
        out[f"{signal}.draft_correct"] = _rate(sum(d for _, d in rev), len(rev),
                                               "the drafts those revisions revise, graded correct")
        breakdown.setdefault(signal, {})["revisions"] = {
            "fixed": sum(r and not d for r, d in rev), "broken": sum(d and not r for r, d in rev), "n": len(rev)}

    # the training data the signal emits
    sft_graded = [grader(e.prompt_id, e.messages[-1]["content"]) for e in sft]
    sft_ok = [x for x in sft_graded if x is not None]
    if sft_ok:
        out[f"{signal}.sft_correct"] = _rate(sum(sft_ok), len(sft_ok), "SFT targets the oracle grades correct")
    pairs_graded = [(grader(p.prompt_id, p.chosen), grader(p.prompt_id, p.rejected)) for p in prefs]
    sep = [(c, r) for c, r in pairs_graded if c is not None and r is not None and c != r]
    if sep:
        out[f"{signal}.pair_correct"] = _rate(sum(c for c, _ in sep), len(sep),
                                              "training pairs the oracle separates whose chosen response is correct")
        breakdown.setdefault(signal, {})["pairs_separated"] = {"separated": len(sep), "all": len(prefs)}
    return out


def lab_pairs(per_family: int, seed: int) -> list[tuple[Task, str, str]]:
    """(task, good, bad) for eval-split tasks whose reference response the oracle grades correct and whose
    characteristic failure it grades incorrect."""
    items = eval_items(per_family, seed)
    rng = random.Random(f"lab-pairs-{seed}")
    bads = [t.bad(rng) for t in items]
    grades = grade_many(items + items, [t.good for t in items] + bads)
    n = len(items)
    return [(t, t.good, b) for i, (t, b) in enumerate(zip(items, bads))
            if grades[i].correct and not grades[n + i].correct and b.strip() != t.good.strip()]


def multihead_lab_accuracy(rm, per_family: int = 20, seed: int = 1234) -> dict[str, Metric]:
    """A multi-head reward model on the held-out lab pairs: each pair ranked by the head of its task's axis (the
    model's use on a prompt of known axis), per axis (``<axis>``) and over all pairs (``all``); ties are errors.
    ``rm`` is a ``MultiHeadRewardModel`` (``head_scores``, ``heads``)."""
    pairs = [(t, g, b) for t, g, b in lab_pairs(per_family, seed) if t.axis in rm.heads]
    prompts = [[{"role": "user", "content": t.question}] for t, _, _ in pairs]
    good = rm.head_scores(prompts, [g for _, g, _ in pairs])
    bad = rm.head_scores(prompts, [b for _, _, b in pairs])
    hits = [g[rm.heads.index(t.axis)] > b[rm.heads.index(t.axis)] for (t, _, _), g, b in zip(pairs, good, bad)]
    out = {"all": rate(sum(hits), len(hits), "signal", SCORER, True,
                       "the head of the pair's axis ranks the reference above the characteristic failure")}
    for axis in rm.heads:
        mine = [h for (t, _, _), h in zip(pairs, hits) if t.axis == axis]
        if mine:
            out[axis] = rate(sum(mine), len(mine), "signal", SCORER, True,
                             f"the {axis} head ranks the reference above the failure ({axis} lab pairs)")
    return out


def reward_model_lab_accuracy(rm, per_family: int = 20, seed: int = 1234) -> Metric:
    """Pairwise accuracy of a reward model (``rm.score(prompts, responses)``) on held-out lab pairs: the share where
    r(x, good) > r(x, bad) (ties count as errors)."""
    pairs = lab_pairs(per_family, seed)
    prompts = [[{"role": "user", "content": t.question}] for t, _, _ in pairs]
    good = rm.score(prompts, [g for _, g, _ in pairs])
    bad = rm.score(prompts, [b for _, _, b in pairs])
    hits = sum(g > b for g, b in zip(good, bad))
    return rate(hits, len(pairs), "signal", SCORER, True,
                "reward model ranks the reference response above the characteristic failure (held-out lab pairs)")
