"""The docs cannot drift: docs/recipes.md is what ``python -m autoalign.docgen`` writes from the code, and every
example of docs/api.md runs as a doctest."""

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python -m autoalign.docgen > docs/recipes.md"


def test_the_recipe_reference_is_what_the_generator_writes_today():
    from autoalign.docgen import generate

    committed = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert generate() == committed, f"docs/recipes.md is out of date: run `{REGENERATE}`"


def test_the_recipe_reference_covers_every_key_and_method():
    from autoalign import methods
    from autoalign.docgen import generate
    from autoalign.evaluate.runner import NAMES
    from autoalign.recipe import EvalConfig, PromptsConfig, Recipe, SamplingConfig, TrainConfig
    from autoalign.signals import catalog
    from autoalign.train.phases import PHASES

    text = generate()
    for cls in (Recipe, PromptsConfig, SamplingConfig, TrainConfig, EvalConfig):
        for key in cls.model_fields:
            assert f"| `{key}` |" in text, (cls.__name__, key)
    for name in catalog.SIGNALS:
        assert f'<a id="signal-{name}"></a>' in text, name
        module, cls_name = catalog.SIGNALS[name]
        params = catalog.params_model(getattr(importlib.import_module(module), cls_name)).model_fields
        section = text.split(f'<a id="signal-{name}"></a>')[1].split("<a id=")[0]
        for param in params:
            assert f"| `{param}` |" in section, (name, param)
    for kind, spec in PHASES.items():
        assert f"#### `{kind}`: {spec.config.__name__}" in text
    for table in (methods.PROMPT_WRITERS, methods.POLICY_WRAPPERS, methods.REWARD_SCORERS, methods.PTX_SOURCES):
        for name in table:
            assert f"`{name}`" in text, name
    for name in NAMES:
        assert f"| `{name}` |" in text, name
    assert "Prompt files" in text and '{"prompt": "..."}' in text  # the prompt-file format
    assert " at 0x" not in text and str(ROOT) not in text  # nothing that changes from one machine to another


def test_the_generator_is_one_command():
    out = subprocess.run([sys.executable, "-m", "autoalign.docgen"], capture_output=True, text=True, cwd=ROOT,
                         check=True, timeout=300)
    assert out.stdout.startswith("# Recipe reference\n")


def test_import_autoalign_loads_nothing_heavy():
    code = ("import sys, autoalign; heavy = [m for m in ('pydantic', 'torch', 'transformers', 'rich', 'yaml', "
            "'autoalign.loop', 'autoalign.api') if m in sys.modules]; print(heavy); "
            "print(callable(autoalign.evaluate), sorted(autoalign.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.splitlines() == ["[]", "True ['__version__', 'evaluate', 'load_lm', 'load_recipe', 'run']"]


def test_autoalign_evaluate_is_still_the_evaluation_package():
    import autoalign
    import autoalign.evaluate.runner as runner

    assert autoalign.evaluate.runner is runner and autoalign.evaluate.__name__ == "autoalign.evaluate"


def test_the_api_examples_run(tiny_model_dir, tmp_path, monkeypatch):
    """docs/api.md as a doctest, in an empty directory (its runs go to ./runs); ``tiny_model_dir`` builds lab:tiny
    first (once per machine, then cached), the policy of its ``run`` example."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0 and result.attempted >= 10, result


def test_user_docs_hold_no_internal_notes():
    files = [ROOT / "README.md", ROOT / "docs" / "CONTRACTS.md", ROOT / "docs" / "backends.md",
             ROOT / "docs" / "api.md", ROOT / "docs" / "recipes.md"]
    comments = [line for path in sorted((ROOT / "autoalign" / "recipes").glob("*.yaml"))
                for line in path.read_text().splitlines() if "#" in line]
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in files if p.exists()}
    texts["recipe comments"] = "\n".join(comments)
    internal = re.compile(r"the lead|lead commits|issue \d+|helper|\bsession\b|your brief|/work/|workspace|"
                          r"developers at once|git commit", re.IGNORECASE)
    found = {name: internal.findall(text) for name, text in texts.items() if internal.search(text)}
    assert not found, found


@pytest.mark.parametrize("doc", ["recipes.md", "api.md"])
def test_the_readme_links_the_reference_and_the_api(doc):
    assert f"docs/{doc}" in (ROOT / "README.md").read_text()
