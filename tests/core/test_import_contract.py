"""Signals never read the lab's ground truth: only evaluation may import the oracle (import-linter contract).

The second test proves the contract can fail: a copy of the package with one cheating signal must be rejected.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = str(Path(sys.executable).parent / "lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}
    )


def test_contract_holds_on_the_tree():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_a_signal_that_imports_the_oracle_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "autoalign", tmp_path / "autoalign", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    cheat = tmp_path / "autoalign" / "signals" / "inductive" / "cheat.py"
    cheat.write_text("def peek():\n    from autoalign.lab import oracle\n    return oracle\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "autoalign.signals.inductive.cheat" in result.stdout
