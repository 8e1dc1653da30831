"""Shared fixtures: the REAL packaged models (no mocks), loaded once per test session.

The models come from the default cache (LLMLAB_CACHE or ~/.cache/llmlab): the first GGUF -> safetensors
conversion takes about 90 s for `base-ko` and 30 s for `chat`; later loads take a second or two.
"""

from __future__ import annotations

import os

import pytest
import torch

# Tests only ever use the packaged weights, whatever the developer's shell says.
for _name in ("LLMLAB_ONLINE", "LLMLAB_OFFLINE", "LLMLAB_LLM_BASE_URL", "LLMLAB_LLM_MODEL", "OPENAI_API_KEY"):
    os.environ.pop(_name, None)


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
    from engine.tokenization import load_tokenizers

    return load_tokenizers()
