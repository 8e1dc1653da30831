"""A private embedded llama.cpp server for one test module (the real server, on a loopback port)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest


@contextlib.contextmanager
def own_llama_server(cache: Path, threads: int | None = None):
    """Run the module's tests against their own server: a fresh LLMLAB_CACHE (so its own server state file, never
    a developer's running server), a 2048-token context, optionally fewer threads; stopped afterwards."""
    from engine.serving import stop_server

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMLAB_CACHE", str(cache))
        mp.setenv("LLMLAB_SERVER_CTX", "2048")
        if threads is not None:
            mp.setenv("LLMLAB_SERVER_THREADS", str(threads))
        try:
            yield cache
        finally:
            stop_server()
