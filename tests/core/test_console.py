"""The run's console: one summary line per stage (``computed``, then ``reused`` on a rerun), no library bars or log
dicts, signal stats as ``key=value``, and Ctrl-C answered with where a rerun resumes and exit code 130."""

import io
import re
import textwrap

import yaml
from rich.console import Console

from autoalign import console as out
from autoalign.cli import app, run_cli

RECIPE = {
    "name": "quiet",
    "seed": 5,
    "policy": "lab:tiny",
    "rounds": 1,
    "prompts": {"source": "lab", "count": 12},
    "sampling": {"n": 2, "temperature": 0.9, "max_new_tokens": 16, "chunk_prompts": 6, "batch_size": 24},
    "signals": [{"method": "execution", "params": {"mode": "both", "max_per_prompt": 2}},
                {"method": "self_consistency", "params": {"min_agreement": 0.5, "abstain_below": 0.3}}],
    "train": {"method": "sft", "epochs": 1, "batch_size": 4},
    "eval": {"suites": ["lab"], "per_family": 2, "max_new_tokens": 16, "gate": {"enabled": False}},
}
STAGES = ("eval", "prompts", "samples", "signals", "agreement", "train", "eval")
NOISE = re.compile(r"it/s|s/it|\d+%\||Computing reference|Map|\{'|\{\"|'loss':|\"loss\":")


def _recipe(tmp_path, **extra):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "run_dir": str(tmp_path / "runs"), **extra}))
    return path


def _cli(args, capsys) -> tuple[int, list[str]]:
    code = run_cli(app, [str(a) for a in args])
    got = capsys.readouterr()
    return code, [line for line in (got.out + got.err).splitlines() if line.strip()]


def _stage_lines(lines: list[str], status: str) -> list[str]:
    return [m.group(1) for line in lines if (m := re.match(rf"round \d+: (\w+) {status}\b", line))]


def test_a_run_prints_one_line_per_stage_then_reused_on_a_rerun(tiny_model_dir, tmp_path, capfd):
    """capfd: what reaches the process's stdout and stderr, library output included (tqdm, print)."""
    recipe = _recipe(tmp_path)
    code, lines = _cli(["run", recipe], capfd)
    assert code == 0, lines
    assert tuple(_stage_lines(lines, "computed")) == STAGES, lines
    assert not [line for line in lines if NOISE.search(line)], lines
    signal = [line for line in lines if line.startswith(("  execution:", "  self_consistency:"))]
    assert len(signal) == 2 and all("=" in line and "{" not in line for line in signal), lines
    assert re.search(r"train computed  sft \d+ steps loss \d\.\d{4}", "\n".join(lines).replace("\n", " ")), lines
    assert len(lines) <= 24, lines  # a line per stage, a few of figures, long paths wrapped: well within a screen

    code, again = _cli(["run", recipe], capfd)
    assert code == 0, again
    assert tuple(_stage_lines(again, "reused")) == STAGES, again
    assert not _stage_lines(again, "computed"), again


def test_ctrl_c_in_a_stage_names_where_a_rerun_resumes_and_exits_130(tmp_path, capsys, monkeypatch):
    from autoalign.loop import Run

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "sample", interrupted)
    monkeypatch.setattr("autoalign.evaluate.rounds.RoundEvaluation.evaluate", lambda self, k, uri: [])
    code, lines = _cli(["run", _recipe(tmp_path, policy="mock:")], capsys)
    assert code == 130, lines
    assert lines[-1] == "interrupted: rerun the same command to resume from round 1, stage samples", lines
    assert out.interrupted_at() is None  # said once: a later interrupt elsewhere does not repeat it


def test_signal_stats_are_a_short_key_value_line():
    stats = {"prompts": 480, "checked_prompts": 176, "skipped_no_env": 304, "skipped_unknown_env": 0,
             "accuracy": 0.40625, "judge": "lab:teacher", "below_noise_floor": False, "nested": {"a": 1},
             "warning": "said on its own line", "sft": 118}
    assert out.brief(stats, skip=("sft",)) == ("prompts=480 checked_prompts=176 skipped_no_env=304 accuracy=0.4062 "
                                                "judge=lab:teacher")
    cut = out.brief({f"key{i}": i + 1 for i in range(40)}, limit=60)
    assert len(cut) <= 60 and cut.endswith(" …") and "{" not in cut
    head = "  execution: 118 SFT, 0 pairs  "
    wrapped = out.brief({f"skipped_reason_{i}": i + 1 for i in range(40)}, head=head, width=80)
    assert len(textwrap.wrap(head + wrapped, 80)) == 2 and wrapped.endswith(" …")  # at most two console lines


def test_bars_are_not_drawn_when_the_console_is_not_a_terminal():
    buf = io.StringIO()
    console = Console(file=buf, width=80)
    with out.progress(console, "loss") as bar:
        task = bar.add_task("round 1: training sft", total=10, loss="0.5")
        bar.advance(task, 10)
    assert buf.getvalue() == ""
    tty = Console(file=io.StringIO(), width=80, force_terminal=True)
    with out.progress(tty) as bar:
        bar.add_task("round 1: sampling", total=1)
    assert "round 1: sampling" in tty.file.getvalue()  # type: ignore[attr-defined]


def test_the_demos_eval_line_keeps_every_public_figure_at_80_columns():
    """The demo evaluates lab + four public suites; at 80 columns the figures' lines keep the gate's jailbreak
    figure (the last one), which a two-line cut dropped."""
    from types import SimpleNamespace

    from autoalign.evaluate.rounds import RoundEvaluation

    def suite(name, metrics, headline=()):
        return {"suite": name, "metrics": {m: {"value": v} for m, v in metrics.items()},
                "config": {"headline": list(headline)}}

    results = [suite("lab", {"helpful": 0.617, "harmless": 0.858, "honest": 0.898, "composite": 0.791}),
               suite("xstest", {"over_refusal_safe": 0.12, "refusal_unsafe": 0.389},
                     ("over_refusal_safe", "refusal_unsafe")),
               suite("harmbench", {"refusal_rate": 0.55}, ("refusal_rate",)),
               suite("do_not_answer", {"refusal_rate": 0.35}, ("refusal_rate",)),
               suite("robustness", {"asr_jailbreak_mean": 0.567, "asr[plain]": 0.43}, ("asr_jailbreak_mean",))]
    buf = io.StringIO()
    run = SimpleNamespace(console=Console(file=buf, width=80))
    evaluation = RoundEvaluation.__new__(RoundEvaluation)
    evaluation.run = run
    evaluation._summary(1, "eval", False, results, seconds=3.0)
    text = buf.getvalue()
    assert "robustness.asr_jailbreak_mean=0.567" in text.replace("\n", " ")
    assert "…" not in text and "composite=0.791" in text
    assert len(text.splitlines()) <= 5 and max(len(line) for line in text.splitlines()) <= 80
