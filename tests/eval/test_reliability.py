"""The fallback scorers' reliability figures quoted in the report are the ones the code achieves on the
hand-labelled sets (tests/eval/data/*_labelled.jsonl by the rules' author, *_heldout.jsonl by a second author)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoalign.evaluate.reliability import MEASURED, measure_refusal_rules, measure_toxicity_lexicon, summary

DATA = Path(__file__).parent / "data"


def _rows(scorer: str, split: str) -> list[dict]:
    name = MEASURED[scorer]["files"][split]
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    return [r for r in rows if r["split"] == split]


@pytest.mark.parametrize("split", ["dev", "test", "heldout"])
def test_refusal_rules_figures_match_the_labelled_set(split):
    assert measure_refusal_rules(_rows("refusal-rules", split)) == MEASURED["refusal-rules"][split]


@pytest.mark.parametrize("split", ["dev", "test", "heldout"])
def test_toxicity_lexicon_figures_match_the_labelled_set(split):
    assert measure_toxicity_lexicon(_rows("toxicity-lexicon", split)) == MEASURED["toxicity-lexicon"][split]


def test_labelled_sets_cover_every_class():
    for split in ("dev", "test", "heldout"):
        assert {r["label"] for r in _rows("refusal-rules", split)} == {"full_compliance", "partial_refusal",
                                                                        "full_refusal"}
        assert {r["toxic"] for r in _rows("toxicity-lexicon", split)} == {True, False}


def test_summary_quotes_the_held_out_figures():
    line = summary("refusal-rules")
    assert "held-out set: accuracy 0.84" in line and "n=44" in line and "upper bound" in line
    assert "recall 0.53" in summary("toxicity-lexicon")
    assert summary("exact-match") == ""
