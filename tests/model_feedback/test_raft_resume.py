"""RAFT trains its reward model once, in round 1, as an artifact of that round's signals stage. A 2-round run
killed in round 2 (after round 1's signals stage finished, so nothing of it is left in memory) must resume with
that very reward model: the same round-2 labels, the same model files, as an uninterrupted run."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_run import AUTOALIGN, kill_mid_sampling
from tests.model_feedback.test_recipes import ROOT, tiny_overrides


def _cmd(workdir: Path) -> list[str]:
    over = [o for o in tiny_overrides("raft", workdir) if not o.startswith("rounds=")]
    return [AUTOALIGN, "run", str(ROOT / "recipes" / "raft.yaml"), *over, "rounds=2"]


def _run(workdir: Path) -> Path:
    result = subprocess.run(_cmd(workdir), cwd=workdir, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "runs" / "raft"


def _tree_digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.suffix in {".safetensors", ".json"}
            and "trainer" not in p.parts}


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("raft-clean"))


def test_the_reward_model_is_an_artifact_of_the_run(uninterrupted):
    manifest = json.loads((uninterrupted / "round-1" / "signals" / "manifest.json").read_text())
    declared = manifest["artifacts"]["0"]["reward_model"]
    assert declared["kind"] == "reward_model" and not Path(declared["path"]).is_absolute()
    assert (uninterrupted / "round-1" / "signals" / declared["path"] / "config.json").is_file()
    # round 2 declares nothing new: it reuses round 1's model, found from the manifest
    assert "artifacts" not in json.loads((uninterrupted / "round-2" / "signals" / "manifest.json").read_text()) or \
        not json.loads((uninterrupted / "round-2" / "signals" / "manifest.json").read_text())["artifacts"]
    stats = json.loads((uninterrupted / "round-2" / "signals" / "manifest.json").read_text())["stats"]["raft"]
    assert stats["source"] == "earlier round"


def test_killed_in_round_two_resumes_with_the_same_reward_model(uninterrupted, tmp_path):
    parts = kill_mid_sampling(_cmd(tmp_path), tmp_path, tmp_path / "runs" / "raft" / "round-2" / "samples")
    assert parts >= 2
    resumed = _run(tmp_path)
    for name in ("labels", "sft"):
        got = (resumed / "round-2" / "signals" / f"{name}.jsonl").read_text()
        want = (uninterrupted / "round-2" / "signals" / f"{name}.jsonl").read_text()
        assert got and got == want, f"round-2 {name} differ after resume"
    rm = "round-1/signals/0/raft/reward_model/model"
    assert _tree_digest(resumed / rm) == _tree_digest(uninterrupted / rm) != {}
    got = json.loads((resumed / "round-2" / "eval@best-of-2" / "results.json").read_text())
    want = json.loads((uninterrupted / "round-2" / "eval@best-of-2" / "results.json").read_text())
    assert [r["metrics"] for r in got] == [r["metrics"] for r in want]
