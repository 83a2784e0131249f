"""A built wheel works outside the checkout: the recipes and the report's template ship as package data, and
`autoalign recipes` / `autoalign demo --dry-run` run from another directory. Offline and quick: the wheel is built
without build isolation (the .venv's setuptools) from a copy of the sources, and installed with --no-deps into a
fresh venv that reuses the .venv's packages (a .pth line naming its site-packages), never the checkout itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**clean, **env})


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """The project's wheel, installed into a fresh venv; returns the wheel, the venv's bin and a cwd outside."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "autoalign", src / "autoalign", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-q", "-w", str(dist), str(src)], cwd=tmp)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("autoalign-*.whl")

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr[-2000:]
    site = Path(_run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp).stdout.strip())
    # the .venv's packages (torch, transformers, ...) without its editable hook for the checkout: a path line in a
    # .pth file adds the directory, and .pth files inside it are not processed
    (site / "reuse_dev_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    inst = _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                 "--no-index", "-q", str(wheel)], cwd=tmp)
    assert inst.returncode == 0, inst.stderr[-2000:]
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return {"wheel": wheel, "bin": venv / "bin", "cwd": elsewhere, "site": site}


def test_wheel_ships_recipes_and_the_report_template(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    shipped = {Path(n).name for n in names if n.startswith("autoalign/recipes/") and n.endswith(".yaml")}
    assert shipped == {p.name for p in (ROOT / "recipes").glob("*.yaml")}
    assert "demo.yaml" in shipped
    assert "autoalign/report/templates/page.html.jinja" in names


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    out = _run([str(installed["bin"] / "python"), "-c", "import autoalign; print(autoalign.__file__)"],
               cwd=installed["cwd"])
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()).is_relative_to(installed["site"])


def test_autoalign_recipes_from_another_directory(installed):
    out = _run([str(installed["bin"] / "autoalign"), "recipes"], cwd=installed["cwd"])
    assert out.returncode == 0, out.stderr[-2000:]
    listed = out.stdout.split()
    assert "demo" in listed
    assert sorted(listed) == sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))


def test_autoalign_demo_dry_run_from_another_directory(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    out = _run([str(installed["bin"] / "autoalign"), "demo", "--dry-run"], cwd=installed["cwd"],
               HOME=str(home), AUTOALIGN_DATA=str(tmp_path / "no-data"))
    assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    assert "run demo" in out.stdout and "round 1:" in out.stdout
    assert list(installed["cwd"].iterdir()) == []  # a dry run writes nothing
    # the README's form, `recipes/<name>.yaml`, names the shipped recipe outside a checkout too
    readme = _run([str(installed["bin"] / "autoalign"), "run", "recipes/demo.yaml", "rounds=1", "--dry-run"],
                  cwd=installed["cwd"], HOME=str(home), AUTOALIGN_DATA=str(tmp_path / "no-data"))
    assert readme.returncode == 0, (readme.stdout + readme.stderr)[-2000:]
    assert "round 1:" in readme.stdout and "round 2:" not in readme.stdout
    assert list(installed["cwd"].iterdir()) == []


def test_the_report_renders_from_the_installed_template(installed):
    code = "from autoalign.report.html import page; print(page('a <b>', '<p>body</p>'))"
    out = _run([str(installed["bin"] / "python"), "-c", code], cwd=installed["cwd"])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "<title>a &lt;b&gt;</title>" in out.stdout and "<main><p>body</p></main>" in out.stdout


# ---- the metadata: ranges, not pins; a lock file with the exact versions ------------------------------------------
def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_dependencies_are_ranges_except_torch():
    for req in _project()["dependencies"]:
        name = re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0]
        if name == "torch":
            assert req == "torch==2.13.0"  # the CPU build tested here; an unpinned torch pulls a CUDA one
        else:
            assert "==" not in req and ">=" in req, req


def test_extras_and_the_lock_file():
    extras = _project()["optional-dependencies"]
    assert {"openai", "ray", "vllm", "test"} <= set(extras)
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert "autoalign" not in {k.lower() for k in pins}
    assert pins["torch"] == "2.13.0"
    for req in _project()["dependencies"]:
        name = re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        assert name in {k.lower().replace("_", "-") for k in pins}, f"{name} is not in constraints.txt"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(LOCK) -e ." in makefile and "-c $(LOCK) -e '.[test]'" in makefile
