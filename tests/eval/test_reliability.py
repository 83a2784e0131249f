"""The fallback scorers' reliability figures quoted in the report are the ones the code achieves on the
hand-labelled sets (tests/eval/data/*_labelled.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoalign.evaluate.reliability import MEASURED, measure_refusal_rules, measure_toxicity_lexicon, summary

DATA = Path(__file__).parent / "data"


def _rows(name: str, split: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    return [r for r in rows if r["split"] == split]


@pytest.mark.parametrize("split", ["dev", "test"])
def test_refusal_rules_figures_match_the_labelled_set(split):
    assert measure_refusal_rules(_rows("refusal_labelled.jsonl", split)) == MEASURED["refusal-rules"][split]


@pytest.mark.parametrize("split", ["dev", "test"])
def test_toxicity_lexicon_figures_match_the_labelled_set(split):
    assert measure_toxicity_lexicon(_rows("toxicity_labelled.jsonl", split)) == {
        k: MEASURED["toxicity-lexicon"][split][k] for k in ("n", "accuracy", "kappa")}


def test_labelled_sets_cover_every_class():
    labels = {r["label"] for s in ("dev", "test") for r in _rows("refusal_labelled.jsonl", s)}
    assert labels == {"full_compliance", "partial_refusal", "full_refusal"}
    assert {r["toxic"] for r in _rows("toxicity_labelled.jsonl", "test")} == {True, False}
    assert "accuracy" in summary("refusal-rules") and summary("exact-match") == ""
