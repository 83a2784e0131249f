"""``autoalign eval`` through the real command line: a bad data file is one line naming it, exit code 2, no
traceback, before any model loads; a small run writes the report and a rerun is served from the cache."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

AUTOALIGN = str(Path(sys.executable).parent / "autoalign")


def _eval(args: list[str], cwd: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([AUTOALIGN, "eval", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "suite, files, expected",
    [
        ("xstest", {}, "xstest/xstest_prompts.csv: file not found"),
        ("xstest", {"xstest/xstest_prompts.csv": b"id,prompt\n1,hi\n"},
         "xstest_prompts.csv: CSV header lacks column(s) type, label"),
        ("gsm8k", {"gsm8k/test.jsonl": b'{"question": "q", "answer": "#### 1"}\n{oops\n'},
         "gsm8k/test.jsonl: line 2 is not valid JSON"),
        ("hh_rlhf", {"hh_rlhf/harmless-base_test.jsonl.gz": b"plain text, not gzip"},
         "harmless-base_test.jsonl.gz: cannot read"),
        ("humaneval", {"humaneval/HumanEval.jsonl.gz": gzip.compress(b'{"task_id": "x"}\n')},
         "HumanEval.jsonl.gz: line 1 lacks field(s) prompt, entry_point, test"),
        ("bbq", {"bbq/Age.jsonl": b'{"context": "c"}\n'}, "bbq/Age.jsonl: line 1 lacks field(s) question"),
        ("harmbench", {"harmbench/harmbench_prompts.txt": b"\xff\xfe\x00bad"}, "harmbench_prompts.txt: not UTF-8"),
    ],
)
def test_bad_data_file_is_one_line_and_exit_2(tmp_path, suite, files, expected):
    data = tmp_path / "data"
    data.mkdir()
    for rel, content in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    line = _one_error_line(_eval(["lab:tiny", "--suite", suite, "--data-dir", str(data), "--limit", "3"], tmp_path))
    assert expected in line, line


def test_bad_arguments_are_one_line(tmp_path):
    assert "unknown suite 'nope'" in _one_error_line(_eval(["lab:tiny", "--suite", "nope"], tmp_path))
    assert "--limit must be at least 1" in _one_error_line(_eval(["lab:tiny", "--suite", "xstest", "--limit", "0"],
                                                                 tmp_path))
    assert "not a directory" in _one_error_line(_eval(["lab:tiny", "--suite", "xstest", "--data-dir",
                                                       str(tmp_path / "none")], tmp_path))
    assert "unknown template(s) nope" in _one_error_line(
        _eval(["lab:tiny", "--suite", "robustness", "--option", "templates=direct,nope"], tmp_path))


def test_small_eval_writes_the_report_and_reruns_from_cache(tmp_path, shared_data, tiny_model_dir):
    args = ["lab:tiny", "--suite", "gsm8k,truthfulqa", "--limit", "2", "--max-new-tokens", "8",
            "--data-dir", str(shared_data), "--out", str(tmp_path / "out")]
    first = _eval(args, tmp_path, timeout=240)
    assert first.returncode == 0, first.stderr
    assert "gsm8k.exact_match = " in first.stderr and "(exact-match)" in first.stderr
    assert "truthfulqa.mc1 = " in first.stderr and "(logprob:lab:tiny)" in first.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="chart-3h"' in html and "How reliable is each scorer?" in html
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["suite"] for r in results] == ["gsm8k", "truthfulqa"]
    second = _eval(args, tmp_path, timeout=240)
    assert second.returncode == 0, second.stderr
    assert json.loads((tmp_path / "out" / "results.json").read_text())[1]["metrics"] == results[1]["metrics"]
