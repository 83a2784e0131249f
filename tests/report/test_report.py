"""The HTML report: written atomically, self-contained, charts and sections present; and rendered in a real headless
browser (Debian chromium) with every chart laid out and nothing in the console."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from autoalign.errors import UserError
from autoalign.evaluate.result import Metric, SuiteResult, Transcript
from autoalign.report import write_eval_report, write_run_report


def _m(value, axis, scorer, higher=True, lo=None, hi=None, n=50):
    return Metric(value=value, lo=value - 0.1 if lo is None else lo, hi=value + 0.1 if hi is None else hi, n=n,
                  axis=axis, scorer=scorer, higher_is_better=higher, description="test figure")


def results(model: str, shift: float = 0.0) -> list[SuiteResult]:
    t = [Transcript(suite="lab", item_id=f"i{k}", prompt=f"What is {k} + {k}? <b>&</b>", response=f"The answer is {k}.",
                    verdict="correct" if (k + shift * 10) % 2 else "incorrect") for k in range(3)]
    return [
        SuiteResult(suite="lab", model=model, transcripts=t, config={"headline": ["task_success"]},
                    metrics={"task_success": _m(0.4 + shift, "helpful", "lab-oracle")}),
        SuiteResult(suite="xstest", model=model, config={"headline": ["over_refusal_safe", "refusal_unsafe"],
                                                         "breakdown": {"safe/homonyms": {"n": 3, "full_refusal": 0.5}}},
                    metrics={"over_refusal_safe": _m(0.2, "harmless", "refusal-rules", False),
                             "refusal_unsafe": _m(0.6 + shift, "harmless", "refusal-rules")}),
        SuiteResult(suite="bbq", model=model, config={"headline": ["bias_score_ambig"], "two_sided": ["bias_score_ambig"]},
                    metrics={"bias_score_ambig": _m(-0.3 + shift, "harmless", "logprob:" + model, False, -0.6, 0.1)}),
        SuiteResult(suite="truthfulqa", model=model, metrics={"mc1": _m(0.3, "honest", "logprob:" + model),
                                                              "ece": _m(0.2, "honest", "logprob:" + model, False)}),
    ]


def test_eval_report_is_self_contained_with_charts(tmp_path):
    path = write_eval_report(results("hf:a") + results("hf:b", 0.1), tmp_path / "out", "Two models")
    html = path.read_text()
    assert path.name == "report.html" and (tmp_path / "out" / "results.json").exists()
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())) == 8
    for chart in ("chart-3h", "chart-helpful", "chart-harmless", "chart-honest"):
        assert f'id="{chart}"' in html
    assert "How reliable is each scorer?" in html and "second-author held-out set: accuracy 0.84" in html
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in html  # transcripts are escaped
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # nothing fetched from the network
    assert "hf:a" in html and "hf:b" in html


def _write_run(run_dir: Path, rounds: int = 3) -> bytes:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"run": "demo", "recipe": {"signal": {"method": "self_judge"}},
            "rounds": [{"round": k, "model": f"runs/demo/round-{k}/model",
                        "results": [r.model_dump() for r in results("lab:tiny", 0.1 * k)]} for k in range(rounds)]}
    raw = json.dumps(data).encode()
    (run_dir / "metrics.json").write_bytes(raw)
    return raw


def test_run_report_has_lines_and_before_after(tmp_path):
    raw = _write_run(tmp_path / "run")
    path = write_run_report(tmp_path / "run")
    html = path.read_text()
    assert path == tmp_path / "run" / "report.html"
    assert (tmp_path / "run" / "metrics.json").read_bytes() == raw  # kept as it was
    assert html.count('id="line-') == 6  # one per headline metric (truthfulqa has none: all of its 2)
    assert "Same prompts, before and after" in html and "round 0" in html and "round 2" in html
    assert "incorrect → correct" in html or "correct → incorrect" in html


def test_run_report_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="metrics.json: file not found"):
        write_run_report(tmp_path)
    (tmp_path / "metrics.json").write_text('{"run": "x", "rounds": [{"round": 0, "results": [{"suite": 1}]}]}')
    with pytest.raises(UserError, match="metrics.json: malformed metrics file"):
        write_run_report(tmp_path)


# ---- headless browser ------------------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def render(page: Path, profile: Path) -> tuple[str, list[str]]:
    """(DOM after scripts ran, console lines) from Debian chromium, headless, offline."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def _write_loop_run(run_dir: Path) -> None:
    """metrics.json exactly as ``autoalign run`` writes it (loop.Run.execute): the resolved demo recipe, and each
    round's results from ``loop.evaluate_suites`` (lab suite + public suites), here on scripted models that get
    better from round to round."""
    from autoalign.evaluate.rounds import evaluate_suites
    from autoalign.recipe import EvalConfig, load_recipe
    from autoalign.store import write_json
    from tests.eval.fakes import FakeLM

    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "demo.yaml", [])
    cfg = EvalConfig(suites=["lab", "xstest", "bbq", "truthfulqa", "robustness"], per_family=2, limit=4,
                     max_new_tokens=8)
    replies = ["Sure. The answer is 4.", "I can't help with that."]
    rounds = [{"round": k, "model": "lab:tiny" if k == 0 else f"{run_dir}/round-{k}/train/model",
               "results": [r.model_dump() for r in evaluate_suites(FakeLM(reply=lambda p, k=k: replies[k % 2],
                                                                          uri=f"lab:tiny@{k}"), cfg)]}
              for k in range(2)]
    write_json(run_dir / "metrics.json", {"run": recipe.name, "recipe": recipe.model_dump(), "rounds": rounds})


def test_run_report_from_the_loop_shape(tmp_path):
    _write_loop_run(tmp_path / "run")
    html = write_run_report(tmp_path / "run").read_text()
    assert 'id="chart-3h"' in html and 'id="line-0"' in html and "Same prompts, before and after" in html
    for suite in ("lab", "xstest", "bbq", "truthfulqa", "robustness"):
        assert f"id='suite-{suite}'" in html
    assert "lab-oracle" in html and "refusal-rules" in html and "second-author held-out set" in html


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_reports_render_in_headless_chromium(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = render(bad, tmp_path / "profile0")
    assert any("Uncaught ReferenceError" in line for line in console)  # the check can see a failure

    pages = [write_eval_report(results("hf:a") + results("hf:b", 0.1), tmp_path / "eval", "Eval")]
    _write_run(tmp_path / "run")
    pages.append(write_run_report(tmp_path / "run"))
    _write_loop_run(tmp_path / "loop-run")  # what `autoalign run` / `autoalign demo` write
    pages.append(write_run_report(tmp_path / "loop-run"))
    for k, page in enumerate(pages):
        dom, console = render(page, tmp_path / f"profile{k + 1}")
        assert console == [], console
        charts = int(re.search(r'data-charts="(\d+)"', dom).group(1))
        rendered = int(re.search(r'data-charts-rendered="(\d+)"', dom).group(1))
        assert charts >= 4 and rendered == charts  # every chart laid out with a non-empty box
        assert dom.count("<rect") > 10 and "<svg" in dom
        assert "<th>95% CI</th>" in dom and "<th>scorer</th>" in dom and 'class="verdict"' in dom

    _write_regression_run(tmp_path / "regression-run")  # the headline states the change and flags the regression
    dom, console = render(write_run_report(tmp_path / "regression-run"), tmp_path / "profile-regression")
    assert console == [], console
    assert "<h2>Headline</h2>" in dom and "Regressions: 2 change(s) fell beyond their noise." in dom
    assert "XSTest: unsafe prompts refused</b> fell from 0.700 (round 1) to 0.100 (round 2)" in dom
    assert 'data-regression-colour="rgb(176, 58, 72)"' in dom  # laid out in red
    assert int(re.search(r'data-charts-rendered="(\d+)"', dom).group(1)) == int(
        re.search(r'data-charts="(\d+)"', dom).group(1))


def test_report_says_when_the_judge_produced_nothing(tmp_path):
    mute = SuiteResult(suite="xstest", model="hf:a", metrics={"refusal_unsafe": _m(0.5, "harmless", "refusal-rules")},
                       config={"scorer": "refusal-rules", "judge": "hf:j", "graded": 7, "judge_unparsed": 7})
    html = write_eval_report([mute], tmp_path, "mute judge").read_text()
    assert "the judge hf:j gave no parseable verdict on 7 items, so every figure is this fallback" in html


def _write_regression_run(run_dir: Path) -> None:
    """Three rounds; round 2 stops refusing XSTest's unsafe prompts (0.70 -> 0.10): a constructed regression."""
    _write_run(run_dir)
    data = json.loads((run_dir / "metrics.json").read_text())
    xs = next(r for r in data["rounds"][2]["results"] if r["suite"] == "xstest")
    xs["metrics"]["refusal_unsafe"].update(value=0.1, lo=0.05, hi=0.15)
    (run_dir / "metrics.json").write_text(json.dumps(data))
    for k, loss in ((1, [1.2, 0.8, 0.5]), (2, [0.6, 0.4, 0.3])):
        (run_dir / f"round-{k}" / "signals").mkdir(parents=True)
        (run_dir / f"round-{k}" / "train").mkdir(parents=True)
        (run_dir / f"round-{k}" / "signals" / "manifest.json").write_text(json.dumps(
            {"counts": {"sft": 30, "preferences": 5, "labels": 90},
             "stats": {"execution": {"sft": 20, "accuracy": 0.4}, "llm_judge": {"sft": 10, "preferences": 5}}}))
        (run_dir / f"round-{k}" / "train" / "manifest.json").write_text(json.dumps(
            {"screen": {"sft": {"kept": 27, "duplicate": 2, "pii": 1, "kept_refusals": 3}, "preferences": {"kept": 5}},
             "metrics": {"phases": [{"kind": "sft", "name": "sft", "status": "trained"}],
                         "sft": {"steps": 15, "train_loss": 0.8,
                                 "loss_log": [{"step": 5 * (i + 1), "loss": v} for i, v in enumerate(loss)]}}}))


def test_headline_states_changes_and_flags_a_regression_in_words(tmp_path):
    _write_regression_run(tmp_path / "run")
    html = write_run_report(tmp_path / "run").read_text()
    assert "<h2>Headline</h2>" in html and "Regressions: 2 change(s) fell beyond their noise." in html
    assert "<b>XSTest: unsafe prompts refused</b> fell from 0.700 (round 1) to 0.100 (round 2)" in html
    assert "change -0.600" in html and "<li class='down'>" in html  # the change vs the previous round, in red
    # vs round 0 (0.600 -> 0.100) it fell too; round 1's rise against round 0 is no regression
    assert "fell from 0.600 (round 0) to 0.100 (round 2): change -0.500" in html
    assert "<h2>Training</h2>" in html and "duplicate 2, pii 1" in html and "27 (3 of them refusals)" in html
    assert 'id="loss-1-0"' in html and 'id="loss-2-0"' in html
    # lower-is-better figures are plotted flipped and named so; no internal names in the chart titles
    assert "XSTest: 1 − safe prompts refused" in html and "over_refusal_safe ↓" not in html


def test_a_run_without_regressions_says_so(tmp_path):
    _write_run(tmp_path / "run")
    html = write_run_report(tmp_path / "run").read_text()
    assert "No figure fell beyond its noise" in html and "Regressions:" not in html


def test_chart_titles_fit_their_charts():
    from autoalign.report.svg import Bar, bar_chart, line_chart, title_width

    title = "robustness: 1 − jailbreak success rate over every round of a long run ↑"
    for svg in (line_chart(title, [0, 1], ["x"], [[Bar(0.1, 0, 0.2), Bar(0.2, 0.1, 0.3)]]),
                bar_chart(title, ["a"], ["x"], [[Bar(0.5, 0.4, 0.6)]])):
        width = int(re.search(r'width="(\d+)"', svg).group(1))
        assert width >= title_width(title, 40)
