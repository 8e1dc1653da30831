"""Settings from environment variables (LLMLAB_*, OPENAI_API_KEY, PINECONE_*), read in this one place only.

Every field carries help text so widgets and the CLI can show the same explanation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _flag(name: str) -> bool:
    return (_env(name, "") or "").lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    cache_dir: Path = field(metadata={"env": "LLMLAB_CACHE", "help": "Converted weights, indexes, server state."})
    offline: bool = field(metadata={"env": "LLMLAB_OFFLINE", "help": "Use packaged weights, never the hub."})
    llm_base_url: str | None = field(
        metadata={"env": "LLMLAB_LLM_BASE_URL", "help": "OpenAI-compatible endpoint (vLLM, Ollama, OpenAI)."}
    )
    llm_model: str | None = field(metadata={"env": "LLMLAB_LLM_MODEL", "help": "Model name sent to the endpoint."})
    openai_api_key: str | None = field(
        repr=False, metadata={"env": "OPENAI_API_KEY", "help": "Key for the hosted tier; never written anywhere."}
    )
    server_ctx: int = field(metadata={"env": "LLMLAB_SERVER_CTX", "help": "Context window of the local server."})
    server_threads: int = field(metadata={"env": "LLMLAB_SERVER_THREADS", "help": "CPU threads for llama.cpp."})
    device: str = field(metadata={"env": "LLMLAB_DEVICE", "help": "torch device for in-process models."})
    train_threads: int = field(
        default=1, metadata={"env": "LLMLAB_TRAIN_THREADS", "help": "torch threads for the small live training runs."}
    )
    instruct_model: str | None = field(
        default=None,
        metadata={
            "env": "LLMLAB_INSTRUCT_MODEL",
            "help": "Model name for applications (RAG, SQL, tools) on a configured endpoint; default LLMLAB_LLM_MODEL.",
        },
    )
    instruct_base_url: str | None = field(
        default=None,
        metadata={
            "env": "LLMLAB_INSTRUCT_BASE_URL",
            "help": "A second OpenAI-compatible endpoint for the application roles (vLLM serves one model a process).",
        },
    )
    tracking_uri: str | None = field(
        default=None,
        metadata={
            "env": "LLMLAB_TRACKING_URI",
            "help": "MLflow tracking/tracing store; default: a sqlite file under LLMLAB_CACHE/mlflow.",
        },
    )
    pinecone_api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"env": "PINECONE_API_KEY", "help": "Pinecone key: the vector store uses Pinecone when it is set."},
    )
    pinecone_cloud: str = field(default="aws", metadata={"env": "PINECONE_CLOUD", "help": "Pinecone serverless cloud."})
    pinecone_region: str = field(
        default="us-east-1", metadata={"env": "PINECONE_REGION", "help": "Pinecone serverless region."}
    )
    # course scale (engine.course): where learner progress lives, and how many heavy runs a machine takes at once
    db_url: str | None = field(
        default=None,
        repr=False,  # a PostgreSQL URL may carry a password
        metadata={
            "env": "LLMLAB_DB_URL",
            "help": "Learner progress database (SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db); "
            "default: a SQLite file under LLMLAB_CACHE/course.",
        },
    )
    instructor_key: str | None = field(
        default=None,
        repr=False,
        metadata={
            "env": "LLMLAB_INSTRUCTOR_KEY",
            "help": "Key that opens the instructor view (class dashboard, polls, demos); unset: open to all.",
        },
    )
    heavy_slots: int = field(
        default=1,
        metadata={
            "env": "LLMLAB_HEAVY_SLOTS",
            "help": "Heavy runs (training, sweeps, index builds) that may run at once on this machine; others queue.",
        },
    )
    max_rss_mb: int | None = field(
        default=None,
        metadata={
            "env": "LLMLAB_MAX_RSS_MB",
            "help": "Memory ceiling of one app process in MB: a heavy run whose estimate would pass it is refused; "
            "default: 80% of this machine's RAM.",
        },
    )

    @classmethod
    def from_env(cls) -> Settings:
        cache = _env("LLMLAB_CACHE") or platformdirs.user_cache_dir("llmlab")
        base_url = _env("LLMLAB_LLM_BASE_URL")
        key = _env("OPENAI_API_KEY")
        if base_url is None and key is not None:
            base_url = "https://api.openai.com/v1"
        return cls(
            cache_dir=Path(cache).expanduser(),
            # Offline unless the user explicitly allows the hub: this is the safe default on a laptop.
            offline=not _flag("LLMLAB_ONLINE") if _env("LLMLAB_OFFLINE") is None else _flag("LLMLAB_OFFLINE"),
            llm_base_url=base_url,
            llm_model=_env("LLMLAB_LLM_MODEL"),
            instruct_model=_env("LLMLAB_INSTRUCT_MODEL"),
            instruct_base_url=_env("LLMLAB_INSTRUCT_BASE_URL"),
            openai_api_key=key,
            server_ctx=int(_env("LLMLAB_SERVER_CTX", "4096")),
            server_threads=int(_env("LLMLAB_SERVER_THREADS", str(min(os.cpu_count() or 2, 8)))),
            device=_env("LLMLAB_DEVICE") or _default_device(),
            train_threads=int(_env("LLMLAB_TRAIN_THREADS", "1")),
            tracking_uri=_env("LLMLAB_TRACKING_URI"),
            pinecone_api_key=_env("PINECONE_API_KEY"),
            pinecone_cloud=_env("PINECONE_CLOUD", "aws"),
            pinecone_region=_env("PINECONE_REGION", "us-east-1"),
            db_url=_env("LLMLAB_DB_URL"),
            instructor_key=_env("LLMLAB_INSTRUCTOR_KEY"),
            heavy_slots=max(1, int(_env("LLMLAB_HEAVY_SLOTS", "1"))),
            max_rss_mb=int(_env("LLMLAB_MAX_RSS_MB")) if _env("LLMLAB_MAX_RSS_MB") else None,
        )

    @property
    def tier(self) -> str:
        """Which of the three hardware tiers (DESIGN.md §2) serves chat-style calls."""
        if self.openai_api_key and self.llm_base_url and "openai.com" in self.llm_base_url:
            return "hosted"
        if self.llm_base_url:
            return "gpu" if self.device.startswith("cuda") else "remote"
        return "offline-cpu"

    @staticmethod
    def help() -> dict[str, str]:
        """Every variable and what it does (the README's settings table is checked against this)."""
        return {f.metadata["env"]: f.metadata["help"] for f in fields(Settings)} | {
            "LLMLAB_ONLINE": "1 = use each model role's hub id instead of the packaged weights."
        }


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # torch missing or broken: the CPU is the honest answer
        return "cpu"


def get_settings() -> Settings:
    """Fresh settings each call (cheap); tests change the environment between calls."""
    return Settings.from_env()
