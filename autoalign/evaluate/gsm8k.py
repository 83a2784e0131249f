"""GSM8K test (Cobbe et al. 2021, arXiv 2110.14168): grade-school word problems, zero-shot chat prompt asking for
working and a final "The answer is N."; exact match of the final number (``answers.final_number``) against the
number after "####", compared as numbers so "18.00" matches "18"."""

from __future__ import annotations

from autoalign.answers import final_number
from autoalign.evaluate.common import SuiteContext, chat, generate_texts, keep_transcripts, rate, suite_config
from autoalign.evaluate.data import malformed, read_jsonl, stratified_sample
from autoalign.evaluate.result import SuiteResult, Transcript

NAME = "gsm8k"
FILE = "gsm8k/test.jsonl"
INSTRUCTION = "Solve the problem step by step, then finish with \"The answer is N.\" where N is a number."


def gold_number(answer: str) -> str | None:
    if "####" not in answer:
        return None
    return answer.rsplit("####", 1)[1].strip().replace(",", "").replace("$", "") or None


def same_number(pred: str | None, gold: str) -> bool:
    if pred is None:
        return False
    try:
        return abs(float(pred) - float(gold)) < 1e-6
    except ValueError:
        return pred.strip() == gold.strip()


def load(ctx: SuiteContext) -> list[tuple[str, str, str]]:
    path = ctx.data_dir / FILE
    items = []
    for number, row in enumerate(read_jsonl(path, required=("question", "answer")), start=1):
        gold = gold_number(str(row["answer"]))
        if gold is None:
            raise malformed(path, f"line {number}", "answer has no final '#### N'")
        items.append((f"gsm8k-{number - 1:04d}", str(row["question"]), gold))
    return items


def run(ctx: SuiteContext) -> SuiteResult:
    items = stratified_sample(load(ctx), ctx.limit, ctx.seed)
    responses = generate_texts(ctx.lm, [chat(f"{q}\n\n{INSTRUCTION}") for _, q, _ in items], ctx.greedy(256))
    preds = [final_number(r) for r in responses]
    hits = [same_number(p, g) for p, (_, _, g) in zip(preds, items)]
    metrics = {"exact_match": rate(sum(hits), len(hits), "helpful", "exact-match", True, "final number correct")}
    transcripts = [
        Transcript(suite=NAME, item_id=i, prompt=q, response=r, verdict="correct" if h else "incorrect",
                   detail={"gold": g, "predicted": p})
        for (i, q, g), r, p, h in zip(items, responses, preds, hits)
    ]
    return SuiteResult(suite=NAME, model=ctx.lm.uri, metrics=metrics, transcripts=keep_transcripts(ctx, transcripts),
                       config=suite_config(ctx, headline=["exact_match"], scorer="exact-match"))
