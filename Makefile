# Two commands set everything up on a fresh machine:
#   make demo   -- create .venv, install, run variable selection on the diabetes data
#   make test   -- same venv, lint + the default test suite (slow and GPU tests deselected)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-all test-slow lint format clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel is served locally; an unpinned torch pulls CUDA builds.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/l0bayes demo --out demo_output

lint: $(STAMP)
	$(VENV)/bin/ruff check l0bayes models analysis tests bench
	$(VENV)/bin/ruff format --check l0bayes models analysis tests bench
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format l0bayes models analysis tests bench
	$(VENV)/bin/ruff check --fix l0bayes models analysis tests bench

test: lint
	$(PY) -m pytest -m "not slow and not gpu" -p no:cacheprovider

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow" -p no:cacheprovider

test-all: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) demo_output

# The HTML documentation (warnings are errors; the tutorials are executed): docs/_build/html.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
