"""End to end on lab:tiny: one full round through the CLI, then a run killed mid-stage and resumed, whose
artifacts must equal the uninterrupted run's, with no record lost or duplicated."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

AUTOALIGN = str(Path(sys.executable).parent / "autoalign")

RECIPE = {
    "name": "e2e",
    "seed": 3,
    "policy": "lab:tiny",
    "rounds": 1,
    "prompts": {"source": "lab", "count": 36},
    "sampling": {"n": 4, "temperature": 0.9, "max_new_tokens": 32, "chunk_prompts": 3, "batch_size": 48},
    "signals": [
        {"method": "execution", "params": {"mode": "both", "max_per_prompt": 2}},
        {"method": "self_consistency", "params": {"min_agreement": 0.5, "abstain_below": 0.3}},
    ],
    "train": {"method": "sft+dpo", "epochs": 1, "batch_size": 8},
    "eval": {"suites": ["lab"], "per_family": 4, "max_new_tokens": 32},
}


def _write_recipe(directory: Path) -> Path:
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "run_dir": str(directory / "runs")}))
    return path


def _run(recipe: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([AUTOALIGN, "run", str(recipe)], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def tiny_ready(tiny_model_dir):
    return tiny_model_dir  # build (or find) the lab model once, outside the timed runs


@pytest.fixture(scope="module")
def clean_run(tiny_ready, tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    result = _run(_write_recipe(d), d)
    assert result.returncode == 0, result.stderr[-3000:]
    return d / "runs" / "e2e"


def _artifacts(run: Path) -> dict[str, str]:
    """Every record file of the run (samples parts joined), as text."""
    out = {}
    r1 = run / "round-1"
    out["prompts"] = (r1 / "prompts" / "prompts.jsonl").read_text()
    out["samples"] = "".join(p.read_text() for p in sorted((r1 / "samples").glob("samples-*.jsonl")))
    for name in ("labels", "sft", "preferences"):
        out[name] = (r1 / "signals" / f"{name}.jsonl").read_text()
    for k in (0, 1):
        results = json.loads((run / f"round-{k}" / "eval" / "results.json").read_text())
        for r in results:
            r.pop("model")  # the trained policy's path names its run directory
        out[f"eval-{k}"] = json.dumps(results, sort_keys=True)
    return out


def test_one_round_end_to_end(clean_run):
    run = clean_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1]
    # the 3H gate decided round 1, and the result names the final policy and the last round against the base
    gate = metrics["rounds"][1]["gate"]
    assert gate["against_round"] == 0 and gate["comparisons"] and metrics["rounds"][1]["kept"] == gate["kept"]
    assert metrics["final"]["round"] == (1 if gate["kept"] else 0)
    assert metrics["result"]["last_vs_base"]["comparisons"]
    lab = metrics["rounds"][1]["results"][0]
    assert lab["suite"] == "lab"
    for name in ("helpful", "harmless", "honest", "composite"):
        m = lab["metrics"][name]
        assert 0.0 <= m["lo"] <= m["value"] <= m["hi"] <= 1.0 and m["n"] > 0
    for stage in ("prompts", "samples", "signals", "train", "eval"):
        manifest = json.loads((run / "round-1" / stage / "manifest.json").read_text())
        assert manifest["stage"] == stage and manifest["key"]
    samples = [json.loads(x) for x in _artifacts(run)["samples"].splitlines()]
    assert len(samples) == 36 * 4
    train = json.loads((run / "round-1" / "train" / "manifest.json").read_text())
    assert train["policy"].startswith("run:round-1/train/") and train["metrics"]["trained"]  # relative: movable
    assert (run / "round-1" / "train" / "model" / "model.safetensors").exists()
    assert (run / "recipe.yaml").exists() and (run / "report.html").exists()
    assert "<svg" in (run / "report.html").read_text()


def test_rerun_skips_finished_stages(clean_run, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in clean_run.rglob("manifest.json")}
    result = _run(clean_run.parent.parent / "recipe.yaml", clean_run.parent.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in clean_run.rglob("manifest.json")}
    assert before == after  # nothing recomputed


def kill_mid_sampling(cmd: list[str], cwd: Path, samples_dir: Path) -> int:
    """Start ``cmd``, SIGKILL its process group once the sampling stage has written its second part and before
    the stage finishes; returns the number of parts on disk at the kill."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while not (samples_dir / "samples-00001.jsonl").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (samples_dir / "manifest.json").exists(), "killed too late: the stage had finished"
    return len(list(samples_dir.glob("samples-*.jsonl")))


def test_killed_run_resumes_to_identical_artifacts(clean_run, tmp_path):
    recipe = _write_recipe(tmp_path)
    samples_dir = tmp_path / "runs" / "e2e" / "round-1" / "samples"
    parts_before = kill_mid_sampling([AUTOALIGN, "run", str(recipe)], tmp_path, samples_dir)
    assert 2 <= parts_before < 12

    result = _run(recipe, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed, clean = _artifacts(tmp_path / "runs" / "e2e"), _artifacts(clean_run)
    for name in clean:
        assert resumed[name] == clean[name], f"{name} differs after resume"
    keys = [(s["prompt_id"], s["index"]) for s in map(json.loads, resumed["samples"].splitlines())]
    assert len(keys) == len(set(keys)) == 36 * 4
