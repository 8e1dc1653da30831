"""Shared fixtures: the REAL packaged models (no mocks), loaded once per test session.

The models come from the default cache (LLMLAB_CACHE or ~/.cache/llmlab): the first GGUF -> safetensors
conversion takes about 90 s for `base-ko` and 30 s for `chat`; later loads take a second or two.
"""

from __future__ import annotations

import os

import pytest
import torch

# Tests only ever use the packaged weights, whatever the developer's shell says.
for _name in (
    "LLMLAB_ONLINE",
    "LLMLAB_OFFLINE",
    "LLMLAB_LLM_BASE_URL",
    "LLMLAB_LLM_MODEL",
    "OPENAI_API_KEY",
    "LLMLAB_TRACKING_URI",
    "LLMLAB_INSTRUCT_MODEL",
    "LLMLAB_INSTRUCT_BASE_URL",
    "LLMLAB_INSTRUCTOR_KEY",
):
    os.environ.pop(_name, None)

# One compute thread by default (LLMLAB_TEST_THREADS overrides). The test machine's 2 cores are shared with
# other jobs, and an oversubscribed OpenMP pool spin-waits: 8 greedy steps of SmolLM2 measured 100 s with
# 2 threads against 4.7 s with 1 under load. OMP_NUM_THREADS carries the setting into CLI subprocesses.
_THREADS = os.environ.setdefault("LLMLAB_TEST_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", _THREADS)
torch.set_num_threads(int(_THREADS))


@pytest.fixture(scope="session")
def chat_lm():
    from engine.models.loading import load_causal_lm

    torch.manual_seed(0)
    return load_causal_lm("chat")


@pytest.fixture(scope="session")
def base_ko_lm():
    from engine.models.loading import load_causal_lm

    torch.manual_seed(0)
    return load_causal_lm("base-ko")


@pytest.fixture(scope="session")
def tokenizers():
    from engine.lm.tokenization import load_tokenizers

    return load_tokenizers()


def pytest_addoption(parser):
    parser.addoption(
        "--monkey-full", action="store_true", help="browser monkey test: touch every control (default: a sample)"
    )
