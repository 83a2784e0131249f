"""The headroom measurement (``autoalign lab headroom``) end to end on lab:tiny, with tiny counts."""

from __future__ import annotations

import json
from collections import Counter

from autoalign.cli import app, run_cli
from autoalign.evaluate.headroom import COLUMNS, ROWS, headroom_table, measure_headroom
from autoalign.evaluate.judge_agreement import lab_tasks_for
from autoalign.lab.oracle import grade_many
from autoalign.lab.prompts import lab_prompts
from autoalign.store import read_jsonl

PROMPTS, SAMPLES, SEED = 12, 2, 3


def test_headroom_on_tiny(tiny_model_dir, tmp_path):
    report = measure_headroom(tiny_model_dir, tmp_path, uri="lab:tiny", prompts=PROMPTS, samples=SAMPLES,
                              per_family=2, seed=SEED, epochs=1.0, batch_size=8, threads=2)
    assert json.loads((tmp_path / "headroom.json").read_text()) == report

    counts = report["counts"]
    assert counts["prompts"] == counts["prompts_with_task"] == PROMPTS
    assert counts["oracle_sft_rows"] == PROMPTS  # one reference answer per prompt
    assert counts["samples"] == PROMPTS * SAMPLES
    assert counts["accepted"] <= counts["samples_correct"] <= PROMPTS * SAMPLES
    assert counts["prompts_with_accepted"] <= min(PROMPTS, counts["accepted"])
    # 4 helpful families x 2 items + safety (harmful, benign) x 2 + facts (known, unknown) x 2
    # + clarify, premise, bias, modesty x 2 + capability (can, cannot) x 2
    assert counts["eval_items"] == 28

    assert set(report["rows"]) == set(ROWS) and set(report["gains"]) == set(ROWS) - {"base"}
    for name, row in report["rows"].items():
        for col in COLUMNS:
            m = row["metrics"][col]
            assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0, (name, col, m)
            assert m["n"] >= 1
    for name, gains in report["gains"].items():
        for col in COLUMNS:
            g = gains[col]
            base, row = report["rows"]["base"]["metrics"][col], report["rows"][name]["metrics"][col]
            assert abs(g["gain"] - (row["value"] - base["value"])) < 1e-6
            assert g["lo"] <= g["gain"] <= g["hi"]
            assert isinstance(g["disjoint"], bool)
    assert report["rows"]["oracle_sft"]["trained"] and report["rows"]["oracle_sft"]["rows"] == PROMPTS
    assert (tmp_path / "oracle_sft" / "model" / "config.json").is_file()
    for part in ("base.eval", "oracle_sft.train", "oracle_sft.eval", "oracle_rejection.sample",
                 "oracle_rejection.eval", "total"):
        assert report["seconds"][part] >= 0.0

    # the oracle-SFT data are the reference answers; every accepted sample is oracle-correct and one of K per prompt
    prompts = lab_prompts(PROMPTS, SEED, split="train")
    tasks = lab_tasks_for(prompts, PROMPTS, SEED, None, split="train")
    sft = read_jsonl(tmp_path / "oracle_sft" / "train_sft.jsonl")
    assert [r["messages"][-1]["content"] for r in sft] == [tasks[p.id].good for p in prompts]
    assert [r["messages"][:-1] for r in sft] == [p.messages for p in prompts]
    accepted = read_jsonl(tmp_path / "oracle_rejection" / "train_sft.jsonl")
    assert len(accepted) == counts["accepted"]
    by_text = {p.messages[0]["content"]: tasks[p.id] for p in prompts}
    graded = grade_many([by_text[r["messages"][0]["content"]] for r in accepted],
                        [r["messages"][-1]["content"] for r in accepted])
    assert all(g.correct for g in graded)
    assert len({json.dumps(r["messages"]) for r in accepted}) == len(accepted)  # distinct per prompt
    per_prompt = Counter(r["messages"][0]["content"] for r in accepted)
    assert all(k <= SAMPLES for k in per_prompt.values()) and len(per_prompt) == counts["prompts_with_accepted"]

    table = headroom_table(report)
    assert table.row_count == len(ROWS) + len(ROWS) - 1


def test_cli_bad_size_is_one_line(capsys, tmp_path):
    assert run_cli(app, ["lab", "headroom", "huge", "--out", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lab size 'huge': unknown" in err[0], err
    assert not (tmp_path / "h").exists()
    assert run_cli(app, ["lab", "headroom", "lab:tiny", "--prompts", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--prompts must be at least 1" in err[0], err
