"""How far each scorer can be trusted, for the report's "scorer reliability" section.

The built-in fallbacks (``refusal-rules``, ``toxicity-lexicon``) were measured against hand-labelled sets written
for the project. ``tests/eval/test_reliability.py`` recomputes every figure here from the files with ``measure_*``
below and fails if they drift, so the numbers quoted are always the numbers the code achieves.

- ``dev`` / ``test`` (``tests/eval/data/*_labelled.jsonl``): written by the fallbacks' author, dev used to shape
  the rules and test touched once afterwards. Both are near 1.0 and are an upper bound, not an estimate.
- ``heldout`` (``tests/eval/data/*_heldout.jsonl``): written and labelled by a second author after the rules were
  frozen, in the styles of real chat models (verbose apologies, bare "No.", refusal-then-alternative, threats
  with no swear word), and measured once; the rules were not changed after seeing the result. This is the
  figure the report quotes: the best estimate of how the fallback fares on text it was not written for.
"""

from __future__ import annotations

from typing import Iterable

from autoalign.evaluate.stats import cohen_kappa, wilson_interval

MEASURED: dict[str, dict] = {
    "refusal-rules": {
        "dev": {"n": 60, "accuracy": 1.0, "kappa": 1.0, "refusal_accuracy": 1.0},
        "test": {"n": 58, "accuracy": 1.0, "kappa": 1.0, "refusal_accuracy": 1.0},
        "heldout": {"n": 44, "accuracy": 0.8409, "kappa": 0.7356, "refusal_accuracy": 0.9091},
        "files": {"dev": "refusal_labelled.jsonl", "test": "refusal_labelled.jsonl", "heldout": "refusal_heldout.jsonl"},
        "misses": "refusals with no refusal phrase (a bare \"No.\", a lecture then \"instead, here are...\") read "
                  "as compliance; hedged compliance (\"I wouldn't recommend it, but...\") read as compliance; "
                  "refusal + pointer to help sometimes read as partial",
    },
    "toxicity-lexicon": {
        "dev": {"n": 40, "accuracy": 1.0, "kappa": 1.0, "recall": 1.0, "precision": 1.0},
        "test": {"n": 40, "accuracy": 1.0, "kappa": 1.0, "recall": 1.0, "precision": 1.0},
        "heldout": {"n": 40, "accuracy": 0.8, "kappa": 0.564, "recall": 0.5294, "precision": 1.0},
        "files": {"dev": "toxicity_labelled.jsonl", "test": "toxicity_labelled.jsonl", "heldout": "toxicity_heldout.jsonl"},
        "misses": "every error is a miss: threats and insults without a listed word (\"I will break your legs\", "
                  "\"waste of oxygen\", \"breed like rats\"); no false alarm on neutral mentions of violence, "
                  "illness or mild swearing",
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


ALIASES: dict[str, str] = {"lab-oracle": "oracle"}


def scorer_kind(scorer: str) -> str:
    """``judge:hf:x+lc-glm`` -> ``judge``; ``refusal-rules`` -> itself."""
    head = scorer.split(":", 1)[0].split("+", 1)[0]
    head = ALIASES.get(head, head)
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
    """Accuracy, Cohen's kappa, recall (toxic texts caught) and precision of ``toxicity-lexicon`` on labelled rows
    ``{text, toxic}``."""
    from autoalign.evaluate.toxicity import is_toxic

    rows = list(rows)
    gold = [bool(r["toxic"]) for r in rows]
    pred = [is_toxic(r["text"]) for r in rows]
    n = len(rows)
    hits = sum(g and p for g, p in zip(gold, pred))
    return {
        "n": n,
        "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / n, 4),
        "kappa": round(cohen_kappa(gold, pred), 4),
        "recall": round(hits / max(1, sum(gold)), 4),
        "precision": round(hits / max(1, sum(pred)), 4),
    }


def summary(scorer: str) -> str:
    """One line for the report: a fallback scorer's held-out figures (95% CI on accuracy), then its own-set ones."""
    m = MEASURED.get(scorer)
    if not m:
        return ""
    h = m["heldout"]
    lo, hi = wilson_interval(h["accuracy"] * h["n"], h["n"])
    extra = (f", refusal-vs-compliance accuracy {h['refusal_accuracy']:.2f}" if "refusal_accuracy" in h else
             f", recall {h['recall']:.2f} (toxic texts caught), precision {h['precision']:.2f}" if "recall" in h else "")
    dev, test = m["dev"], m["test"]
    return (f"second-author held-out set: accuracy {h['accuracy']:.2f} (95% CI {lo:.2f}-{hi:.2f}, n={h['n']}), "
            f"Cohen's kappa {h['kappa']:.2f}{extra}. Typical misses: {m['misses']}. On its author's own dev / test "
            f"sets: accuracy {dev['accuracy']:.2f} / {test['accuracy']:.2f} (n={dev['n']} / {test['n']}), an upper "
            "bound.")
