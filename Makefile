# The two commands of the README. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench-speed clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/ganforge train demo --out runs/demo

# Lint, format and types first (seconds), then the suite on both cores (pytest-xdist; one thread per worker).
LINTED := ganforge tests scripts examples

test: $(DEVSTAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -n 2 --dist worksteal

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

bench-speed: $(STAMP)
	$(VENV)/bin/ganforge bench speed --out bench/results/speed.json

clean:
	rm -rf $(VENV) runs build *.egg-info

# The documentation site (mkdocs.yml: docs/ and the docstrings), built offline into build/site.
# No --quiet: it silences the warnings that --strict turns into a failed build.
DOCSTAMP := $(VENV)/.installed-docs

.PHONY: docs

$(DOCSTAMP): $(DEVSTAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(DOCSTAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
