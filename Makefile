# The two commands of the README. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test bench-speed clean

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

test: $(DEVSTAMP)
	$(PY) -m pytest -q

bench-speed: $(STAMP)
	$(VENV)/bin/ganforge bench speed --out bench/results/speed.json

clean:
	rm -rf $(VENV) runs build *.egg-info
