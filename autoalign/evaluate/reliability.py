"""How far each scorer can be trusted, for the report's "scorer reliability" section.

The built-in fallbacks (``refusal-rules``, ``toxicity-lexicon``) were measured against hand-labelled sets written
for the project (``tests/eval/data/*_labelled.jsonl``, split dev / test). ``tests/eval/test_reliability.py``
recomputes these figures from the files with ``measure_*`` below and fails if they drift, so the numbers quoted
here are always the numbers the code achieves. Both sets were written by the fallbacks' author, with the dev split
used to shape the rules: treat the figures as an upper bound on agreement with a careful human on real model
output, not as an unbiased estimate.
"""

from __future__ import annotations

from typing import Iterable

from autoalign.evaluate.stats import cohen_kappa, wilson_interval

MEASURED: dict[str, dict] = {
    "refusal-rules": {
        "labelled_set": "tests/eval/data/refusal_labelled.jsonl",
        "dev": {"n": 60, "accuracy": 1.0, "kappa": 1.0, "refusal_accuracy": 1.0},
        "test": {"n": 58, "accuracy": 1.0, "kappa": 1.0, "refusal_accuracy": 1.0},
        "history": "test split: 56/58 at first measurement; the two misses were one regex typo (\"I'd rather "
                   "not\" unmatched), fixed afterwards, so the test split is no longer fully held out",
    },
    "toxicity-lexicon": {
        "labelled_set": "tests/eval/data/toxicity_labelled.jsonl",
        "dev": {"n": 40, "accuracy": 1.0, "kappa": 1.0},
        "test": {"n": 40, "accuracy": 1.0, "kappa": 1.0},
        "history": "test split measured once after the lexicon was written; no change followed",
    },
}

KIND_NOTES: dict[str, str] = {
    "refusal-rules": "Built-in clause-level rules (refusal phrases, warnings, redirections, pivots back to the "
                     "request) giving XSTest's three classes. Misses refusals phrased in ways it has no rule for "
                     "and reads any non-refusing text, even gibberish, as compliance (as XSTest's definition does).",
    "toxicity-lexicon": "Built-in lexicon and patterns (profanity, threats, dehumanising generalisations, insults "
                        "aimed at a person). No slur list and no sense of context or sarcasm: it under-counts "
                        "identity attacks made with slurs or euphemism, and cannot grade degrees of toxicity.",
    "exact-match": "Deterministic: the last number of the final answer against the gold number. Wrong only when the "
                   "model states its answer in words or puts another number after it.",
    "sandbox": "Deterministic: the model's code runs with the task's unit tests in the execution sandbox. "
               "Timeouts and crashes count as failures.",
    "logprob": "Deterministic given the model: summed log-likelihood of each answer after a raw-text prompt "
               "(lm-evaluation-harness style). Favours short answers; measures preference, not generation.",
    "judge": "An LM judge: as reliable as that model. Where the fallback also graded the same items, the agreement "
             "rate is shown beside it; position bias is reduced by judging both orders in pairwise comparisons.",
    "reward": "A reward model's scores: as reliable as that model.",
    "oracle": "The lab's ground truth: exact by construction for the lab's procedurally generated tasks.",
}


def scorer_kind(scorer: str) -> str:
    """``judge:hf:x+lc-glm`` -> ``judge``; ``refusal-rules`` -> itself."""
    head = scorer.split(":", 1)[0].split("+", 1)[0]
    return head if head in KIND_NOTES else scorer


# ---- measurement (used by the test that keeps MEASURED honest) --------------------------------------------------
def measure_refusal_rules(rows: Iterable[dict]) -> dict:
    """Accuracy (3-way), Cohen's kappa, and refusal-vs-compliance accuracy of ``refusal-rules`` on labelled rows
    ``{question, response, label}``."""
    from autoalign.evaluate.refusal import COMPLY, classify_refusal

    rows = list(rows)
    gold = [r["label"] for r in rows]
    pred = [classify_refusal(r["question"], r["response"]) for r in rows]
    n = len(rows)
    return {
        "n": n,
        "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / n, 4),
        "kappa": round(cohen_kappa(gold, pred), 4),
        "refusal_accuracy": round(sum((g == COMPLY) == (p == COMPLY) for g, p in zip(gold, pred)) / n, 4),
    }


def measure_toxicity_lexicon(rows: Iterable[dict]) -> dict:
    from autoalign.evaluate.toxicity import is_toxic

    rows = list(rows)
    gold = [bool(r["toxic"]) for r in rows]
    pred = [is_toxic(r["text"]) for r in rows]
    n = len(rows)
    return {
        "n": n,
        "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / n, 4),
        "kappa": round(cohen_kappa(gold, pred), 4),
    }


def summary(scorer: str) -> str:
    """One line for the report: the measured figures of a fallback scorer, with a 95% CI on test accuracy."""
    m = MEASURED.get(scorer)
    if not m:
        return ""
    t = m["test"]
    lo, hi = wilson_interval(t["accuracy"] * t["n"], t["n"])
    return (f"held-out test split: accuracy {t['accuracy']:.2f} (95% CI {lo:.2f}-{hi:.2f}, n={t['n']}), "
            f"Cohen's kappa {t['kappa']:.2f}; dev split accuracy {m['dev']['accuracy']:.2f} (n={m['dev']['n']}). "
            f"{m['history']}.")
