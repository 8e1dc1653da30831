"""engine.core.config: LLMLAB_* variables read in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.config import Settings, get_settings

ENV = (
    "LLMLAB_CACHE",
    "LLMLAB_ONLINE",
    "LLMLAB_OFFLINE",
    "LLMLAB_LLM_BASE_URL",
    "LLMLAB_LLM_MODEL",
    "LLMLAB_INSTRUCT_MODEL",
    "LLMLAB_INSTRUCT_BASE_URL",
    "LLMLAB_INSTRUCTOR_KEY",
    "LLMLAB_TRACKING_URI",
    "OPENAI_API_KEY",
    "LLMLAB_SERVER_CTX",
    "LLMLAB_SERVER_THREADS",
    "LLMLAB_DEVICE",
    "LLMLAB_TRAIN_THREADS",
    "PINECONE_API_KEY",
    "PINECONE_CLOUD",
    "PINECONE_REGION",
    "LLMLAB_DB_URL",
    "LLMLAB_HEAVY_SLOTS",
    "LLMLAB_MAX_RSS_MB",
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_offline_cpu(clean_env):
    clean_env.setenv("LLMLAB_DEVICE", "cpu")
    s = get_settings()
    assert s.offline is True
    assert s.llm_base_url is None and s.openai_api_key is None
    assert s.tier == "offline-cpu"
    assert s.server_ctx == 4096 and s.server_threads >= 1
    assert s.cache_dir.name == "llmlab"


def test_cache_dir_from_env(clean_env, tmp_path):
    clean_env.setenv("LLMLAB_CACHE", str(tmp_path))
    assert get_settings().cache_dir == Path(tmp_path)


@pytest.mark.parametrize(
    ("online", "offline", "expected"),
    [("1", None, False), ("0", None, True), (None, "0", False), ("1", "1", True), (None, "yes", True)],
)
def test_offline_flag(clean_env, online, offline, expected):
    if online is not None:
        clean_env.setenv("LLMLAB_ONLINE", online)
    if offline is not None:
        clean_env.setenv("LLMLAB_OFFLINE", offline)
    assert get_settings().offline is expected


def test_tiers(clean_env):
    clean_env.setenv("LLMLAB_DEVICE", "cpu")
    clean_env.setenv("OPENAI_API_KEY", "sk-test")
    s = get_settings()
    assert s.llm_base_url == "https://api.openai.com/v1" and s.tier == "hosted"
    assert "sk-test" not in repr(s)  # the key is never printed
    clean_env.delenv("OPENAI_API_KEY")
    clean_env.setenv("LLMLAB_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    assert get_settings().tier == "remote"
    clean_env.setenv("LLMLAB_DEVICE", "cuda")
    assert get_settings().tier == "gpu"


def test_help_covers_every_variable():
    assert set(Settings.help()) == set(ENV)
    assert all(text for text in Settings.help().values())


def test_every_setting_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.help() if f"`{name}" not in readme]
    assert not missing, f"README settings table lacks {missing}"
