# The README's two commands: `make demo` and `make test`. Everything goes through .venv with the constraints applied.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_FIND_LINKS := /opt/wheels $(PIP_FIND_LINKS)

.PHONY: setup test demo demo-grounding bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

test: setup
	$(PY) -m pytest -q tests demo/tests

demo: setup
	$(PY) -m demo.jobs.demo --config demo/configs/demo.yaml

demo-grounding: setup
	$(PY) -m demo.jobs.demo --config demo/configs/demo_grounding.yaml

bench: setup
	$(PY) -m bench.run_all
	$(PY) -m demo.bench.decisions

clean:
	rm -rf runs
