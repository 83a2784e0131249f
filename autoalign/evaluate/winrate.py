"""Pairwise win rate against a reference model's answers, judged by an LM, with AlpacaEval 2.0's length control.

Each instruction is answered by the evaluated model and by the reference (a reference LM, or the ``output`` field
of an instructions file in AlpacaEval's format). A pairwise judge (both orders, see ``pairwise``) gives a
preference in [0, 1] for the model. The raw win rate is its mean; the length-controlled win rate fits AlpacaEval's
GLM (``stats.length_controlled_win_rate``) and predicts the win rate at zero length difference, so a model cannot
win by being verbose (Dubois et al. 2024, arXiv 2404.04475).
"""

from __future__ import annotations

from pathlib import Path

from autoalign.errors import UserError
from autoalign.evaluate.common import SuiteContext, chat, generate_texts, keep_transcripts, mean_metric, suite_config
from autoalign.evaluate.data import read_jsonl, stratified_sample
from autoalign.evaluate.pairwise import HELPFUL, PairwiseJudge
from autoalign.evaluate.result import Metric, SuiteResult, Transcript
from autoalign.evaluate.stats import length_controlled_win_rate
from autoalign.evaluate.winrate_prompts import INSTRUCTIONS

NAME = "winrate"


def load(ctx: SuiteContext) -> list[tuple[str, str, str | None]]:
    """(item_id, instruction, reference output or None)."""
    path = ctx.options.get("instructions")
    if path:
        rows = read_jsonl(Path(path), required=("instruction",))
        return [(f"wr-{i:03d}", str(r["instruction"]), r.get("output")) for i, r in enumerate(rows)]
    return [(f"wr-{i:03d}", text, None) for i, text in enumerate(INSTRUCTIONS)]


def run(ctx: SuiteContext) -> SuiteResult:
    if ctx.judge is None:
        raise UserError("suite winrate needs a judge model (--judge URI)")
    items = stratified_sample(load(ctx), ctx.limit, ctx.seed)
    need_ref = [k for k, (_, _, out) in enumerate(items) if out is None]
    if need_ref and ctx.reference is None:
        raise UserError("suite winrate needs a reference model (--reference URI) or an instructions file with outputs")
    sampling = ctx.greedy(256)
    prompts = [chat(text) for _, text, _ in items]
    answers = generate_texts(ctx.lm, prompts, sampling)
    refs = [out or "" for _, _, out in items]
    for k, text in zip(need_ref, generate_texts(ctx.reference, [prompts[k] for k in need_ref], sampling)):
        refs[k] = text
    judge = PairwiseJudge(ctx.judge, HELPFUL, seed=ctx.seed)
    prefs = judge.prefer([t for _, t, _ in items], answers, refs)
    diffs = [len(a) - len(r) for a, r in zip(answers, refs)]
    lc = length_controlled_win_rate(prefs, diffs, seed=ctx.seed)
    ref_name = getattr(ctx.reference, "uri", "reference outputs") if need_ref else "reference outputs"
    metrics = {
        "win_rate": mean_metric(prefs, "helpful", judge.name, True,
                                f"judge prefers the model over {ref_name}{judge.caveat()}"),
        "lc_win_rate": Metric(value=lc["value"], lo=lc["lo"], hi=lc["hi"], n=len(prefs), axis="helpful",
                              scorer=judge.name + "+lc-glm", higher_is_better=True,
                              description=f"length-controlled win rate (AlpacaEval 2.0 GLM){judge.caveat()}"),
    }
    if judge.mute():  # only forced ties: 0.5 is no measurement, so the interval is the whole range
        metrics = {k: m.model_copy(update={"lo": 0.0, "hi": 1.0}) for k, m in metrics.items()}
    transcripts = [
        Transcript(suite=NAME, item_id=i, prompt=t, response=a,
                   verdict="win" if p > 0.5 else "tie" if p == 0.5 else "loss", detail={"reference": r, "pref": p})
        for (i, t, _), a, r, p in zip(items, answers, refs, prefs)
    ]
    return SuiteResult(
        suite=NAME, model=ctx.lm.uri, metrics=metrics, transcripts=keep_transcripts(ctx, transcripts),
        config=suite_config(ctx, headline=["lc_win_rate"], reference=ref_name, length_coef=round(lc["phi"], 4),
                            mean_len_model=sum(map(len, answers)) / max(1, len(answers)),
                            mean_len_reference=sum(map(len, refs)) / max(1, len(refs)), **judge.report()),
    )
