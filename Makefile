# clone_pipeline: every target sets up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

# Everything the demo writes stays inside the checkout unless you say otherwise.
export CLONE_HOME ?= $(CURDIR)/.clone_home
export DAGSTER_HOME ?= $(CLONE_HOME)/dagster

.PHONY: help setup demo test lint ui bench clean

help:
	@echo "make demo   - import the demo personas and run the pipeline on them (SQLite, CPU)"
	@echo "make test   - run the test suite (SQLite and the local PostgreSQL)"
	@echo "make ui     - open the Dagster UI (webserver + daemon) on http://127.0.0.1:3000"
	@echo "make bench  - run the benchmarks in benchmarks/ (JSON out)"
	@echo "make lint   - ruff and the import contracts (lint-imports)"

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# The CPU build of torch, pinned: on this machine kind pip takes it from local disk, and
	# the pin keeps set-up from pulling a multi-GB CUDA build onto a CPU machine.
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/clone-pipeline demo

test: lint
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check clone_pipeline clone_pipeline_tests benchmarks
	$(BIN)/lint-imports

# clone-pipeline ui: init, then dagster dev; Ctrl-C or SIGTERM stops it and its runs.
ui: setup
	$(BIN)/clone-pipeline ui --host 127.0.0.1 --port 3000

bench: setup
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/voice.py

clean:
	rm -rf $(VENV) .clone_home .pytest_cache .ruff_cache
