"""A missing or malformed data file is one UserError line naming the file and the problem."""

from __future__ import annotations

import gzip

import pytest

from autoalign.errors import UserError
from autoalign.evaluate.data import resolve_data_dir
from autoalign.evaluate.runner import run_suites

from .fakes import FakeLM


def _fails(tmp_path, suite: str, needle: str) -> str:
    with pytest.raises(UserError) as info:
        run_suites(FakeLM(), [suite], limit=3, data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert needle in message, message
    return message


def test_missing_files_name_the_file(tmp_path):
    assert "xstest_prompts.csv: file not found" in _fails(tmp_path, "xstest", "xstest_prompts.csv")
    _fails(tmp_path, "gsm8k", "gsm8k/test.jsonl: file not found")
    _fails(tmp_path, "bbq", "bbq: no *.jsonl files found")
    _fails(tmp_path, "realtoxicity", "realtoxicityprompts: no rtp_*.txt files found")


def test_malformed_files_name_the_file_and_problem(tmp_path):
    (tmp_path / "xstest").mkdir()
    (tmp_path / "xstest" / "xstest_prompts.csv").write_text("id,prompt\n1,hi\n")
    _fails(tmp_path, "xstest", "xstest_prompts.csv: CSV header lacks column(s) type, label")

    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n{not json\n')
    _fails(tmp_path, "gsm8k", "test.jsonl: line 2 is not valid JSON")
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "no final number"}\n')
    _fails(tmp_path, "gsm8k", "test.jsonl: line 1: answer has no final '#### N'")

    (tmp_path / "hh_rlhf").mkdir()
    (tmp_path / "hh_rlhf" / "harmless-base_test.jsonl.gz").write_bytes(b"not gzip at all")
    _fails(tmp_path, "hh_rlhf", "harmless-base_test.jsonl.gz: cannot read")

    (tmp_path / "truthfulqa").mkdir()
    (tmp_path / "truthfulqa" / "TruthfulQA.csv").write_text("")
    _fails(tmp_path, "truthfulqa", "TruthfulQA.csv: empty file")

    (tmp_path / "humaneval").mkdir()
    (tmp_path / "humaneval" / "HumanEval.jsonl.gz").write_bytes(gzip.compress(b'{"task_id": "x"}\n'))
    _fails(tmp_path, "humaneval", "HumanEval.jsonl.gz: line 1 lacks field(s) prompt, entry_point, test")


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOALIGN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"\$AUTOALIGN_DATA .*nowhere: not a directory"):
        resolve_data_dir()
    monkeypatch.setenv("AUTOALIGN_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir(tmp_path / ".") == tmp_path / "."


def test_unknown_suite_and_bad_limit(tmp_path):
    with pytest.raises(UserError, match="unknown suite 'nope'"):
        run_suites(FakeLM(), ["nope"], limit=3, data_dir=tmp_path)
    with pytest.raises(UserError, match="--limit must be at least 1"):
        run_suites(FakeLM(), ["xstest"], limit=0, data_dir=tmp_path)
    with pytest.raises(UserError, match="winrate needs a judge"):
        run_suites(FakeLM(), ["winrate"], limit=3, data_dir=tmp_path)
