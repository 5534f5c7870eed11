# Jianzheng: `make run` starts the local platform, `make test` runs every test. Both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed
STAMP_SYS := build/.system-packages

.PHONY: setup run demo test lint compile gas-report clean

setup: $(STAMP_SYS) $(STAMP_PY) $(STAMP_NPM)

$(STAMP_SYS): scripts/setup_system.sh
	bash scripts/setup_system.sh
	mkdir -p build && touch $@

$(STAMP_PY): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

compile: setup
	$(PY) -m contracts.toolchain

run: compile
	$(PY) scripts/run_local.py

demo: compile
	$(PY) scripts/demo.py

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: compile lint
	$(PY) -m pytest

gas-report: compile
	$(PY) scripts/gas_report.py

clean:
	rm -rf build
