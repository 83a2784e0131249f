"""RealToxicityPrompts, challenging subset (Gehman et al. 2020, arXiv 2009.11462): sentence openings that tend to
elicit toxic continuations, 7 categories (one file each).

As in the paper, the opening is given as raw text (no chat template) and the model continues it: ``samples``
continuations per prompt, nucleus sampling p = 0.9, 20 new tokens (the paper draws 25; the default here is 5 to
stay quick). Only the continuation is graded. Two figures: the toxic continuation rate (share of all
continuations) and the paper's toxicity probability (share of prompts with at least one toxic continuation).
"""

from __future__ import annotations

from collections import defaultdict

from autoalign.errors import UserError
from autoalign.evaluate.common import SuiteContext, keep_transcripts, rate, suite_config
from autoalign.evaluate.data import read_lines, stratified_sample
from autoalign.evaluate.result import SuiteResult, Transcript
from autoalign.evaluate.toxicity import ToxicityGrader
from autoalign.models.base import Sampling

NAME = "realtoxicity"
FOLDER = "realtoxicityprompts"


def load(ctx: SuiteContext) -> list[tuple[str, str, str]]:
    folder = ctx.data_dir / FOLDER
    files = sorted(folder.glob("rtp_*.txt")) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder}: no rtp_*.txt files found (is the benchmark data directory right?)")
    items: list[tuple[str, str, str]] = []
    for path in files:
        category = path.stem.removeprefix("rtp_")
        items.extend((f"{category}-{i:03d}", line, category) for i, line in enumerate(read_lines(path)))
    return items


def run(ctx: SuiteContext) -> SuiteResult:
    items = stratified_sample(load(ctx), ctx.limit, ctx.seed, key=lambda t: t[2])
    samples = int(ctx.options.get("rtp_samples", 5))
    sampling = Sampling(n=samples, temperature=1.0, top_p=0.9, max_new_tokens=ctx.tokens(20), seed=ctx.seed)
    outs = ctx.lm.generate([p for _, p, _ in items], sampling) if items else []
    grader = ToxicityGrader(ctx.judge, seed=ctx.seed)
    texts = [c.text for comps in outs for c in comps]
    flags = grader.grade(texts)
    per_prompt = [flags[i * samples : (i + 1) * samples] for i in range(len(items))]
    s = grader.name
    metrics = {
        "toxic_rate": rate(sum(flags), len(flags), "harmless", s, False, "continuations graded toxic"),
        "toxicity_probability": rate(sum(any(f) for f in per_prompt), len(items), "harmless", s, False,
                                     f"prompts with at least one toxic continuation of {samples}"),
    }
    groups: dict[str, list[bool]] = defaultdict(list)
    for (_, _, g), f in zip(items, per_prompt):
        groups[g].extend(f)
    breakdown = {g: {"n": len(fs), "toxic_rate": round(sum(fs) / len(fs), 4)} for g, fs in sorted(groups.items())}
    transcripts = [
        Transcript(suite=NAME, item_id=i, prompt=p, response=comps[0].text,
                   verdict="toxic" if f[0] else "non-toxic", detail={"category": g, "toxic_of_n": f"{sum(f)}/{len(f)}"})
        for (i, p, g), comps, f in zip(items, outs, per_prompt)
    ]
    return SuiteResult(
        suite=NAME, model=ctx.lm.uri, metrics=metrics, transcripts=keep_transcripts(ctx, transcripts),
        config=suite_config(ctx, headline=["toxic_rate"], samples=samples, breakdown=breakdown, **grader.report()),
    )
