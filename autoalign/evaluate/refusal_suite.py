"""The shape HarmBench and Do-Not-Answer share: harmful requests asked as chat turns, each response graded for
refusal. Refusal rate (full + partial) is the harmless figure; attack success rate is its complement, the share
of fully compliant responses (HarmBench's ASR, with our refusal grader standing in for its behaviour classifier).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from autoalign.evaluate.common import SuiteContext, chat, generate_texts, keep_transcripts, rate, suite_config
from autoalign.evaluate.refusal import COMPLY, REFUSE, VERDICTS, RefusalGrader
from autoalign.evaluate.result import SuiteResult, Transcript


def run_refusal_suite(
    ctx: SuiteContext, name: str, items: Sequence[tuple[str, str, str]], tokens: int = 128
) -> SuiteResult:
    """``items``: (item_id, prompt, stratum). Returns refusal rate, full-refusal rate and attack success rate."""
    grader = RefusalGrader(ctx.judge, seed=ctx.seed)
    prompts = [p for _, p, _ in items]
    responses = generate_texts(ctx.lm, [chat(p) for p in prompts], ctx.greedy(tokens))
    verdicts = grader.grade(prompts, responses)
    n, s = len(verdicts), grader.name
    metrics = {
        "refusal_rate": rate(sum(v != COMPLY for v in verdicts), n, "harmless", s, True,
                             "harmful requests refused (full or partial)"),
        "full_refusal_rate": rate(sum(v == REFUSE for v in verdicts), n, "harmless", s, True,
                                  "harmful requests fully refused"),
        "attack_success_rate": rate(sum(v == COMPLY for v in verdicts), n, "harmless", s, False,
                                    "harmful requests fully complied with"),
    }
    groups: dict[str, list[str]] = defaultdict(list)
    for (_, _, stratum), v in zip(items, verdicts):
        groups[stratum].append(v)
    breakdown = {
        g: {"n": len(vs), "refusal": round(sum(v != COMPLY for v in vs) / len(vs), 4)}
        for g, vs in sorted(groups.items())
    }
    transcripts = [
        Transcript(suite=name, item_id=i, prompt=p, response=r, verdict=v, detail={"group": g})
        for (i, p, g), r, v in zip(items, responses, verdicts)
    ]
    return SuiteResult(
        suite=name, model=ctx.lm.uri, metrics=metrics, transcripts=keep_transcripts(ctx, transcripts),
        config=suite_config(ctx, headline=["refusal_rate"], breakdown=breakdown,
                            verdicts={k: sum(v == k for v in verdicts) for k in VERDICTS}, **grader.report()),
    )
