# LLM Practice Lab — two commands do all the set-up: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8501
# The CPU build of torch (on these machines pip takes it from local disk in seconds). A GPU machine sets
# TORCH_SPEC to a CUDA build instead, e.g. `make install TORCH_SPEC=torch==2.13.0 EXTRAS=dev,gpu`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install run test test-fast test-slow test-e2e bench lint format browser clean-cache serve

help:
	@echo "make run        install what is missing, start the app on http://localhost:$(PORT)"
	@echo "make test       install what is missing, run every test (unit, server, pages, browser)"
	@echo "make test-slow  the long tests (marked slow)"
	@echo "make bench      benchmarks -> bench-results/"
	@echo "make lint       ruff check + format check"

$(PY):
	python3 -m venv $(VENV)

# Re-install only when pyproject.toml changes. torch first, so the range in pyproject is already satisfied
# by the CPU build and pip never pulls a multi-GB CUDA wheel.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

serve: install
	$(PY) -m engine serve

# Debian's Chromium and CJK fonts for the browser tests (root on CI and dev machines; skipped otherwise).
browser:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; \
	  else echo "chromium missing and not root: browser tests will be skipped"; fi; fi

test: install browser
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not e2e and not server" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-e2e: install browser
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

bench: install
	$(PY) -m tests.bench.run_bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-cache:
	rm -rf "$${LLMLAB_CACHE:-$$HOME/.cache/llmlab}"
