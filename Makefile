# The two commands of the README. Each sets itself up (a .venv, then an editable install through the lock file
# constraints.txt, the exact versions tested together) and is idempotent. `make demo` installs what the demo needs,
# `make test` adds the test extras; `make lock` rewrites constraints.txt from the working .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := constraints.txt

.PHONY: setup demo test bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-demo: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install -q -c $(LOCK) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install -q -c $(LOCK) -e '.[test]'
	@touch $@ $(VENV)/.installed-demo

setup: $(VENV)/.installed-test

demo: $(VENV)/.installed-demo
	$(BIN)/autoalign demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check autoalign tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/generation.py

# pip freeze of the working .venv, less the project itself; torch's local build tag (+cpu) is dropped so that the
# pin matches the CPU wheel here and the same release from PyPI elsewhere.
lock: $(VENV)/.installed-test
	{ echo "# The versions tested together: pip freeze of a working .venv (make lock). Used as pip constraints:"; \
	  echo "#   pip install -c constraints.txt -e '.[test]'"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^autoalign' | sed -E 's/^(torch==[^+]+)\+.*/\1/'; \
	} > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)

clean:
	rm -rf $(VENV) runs .pytest_cache
