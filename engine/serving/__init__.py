"""Chat-style calls through an OpenAI-compatible endpoint: the embedded llama.cpp server, vLLM or OpenAI."""

from engine.serving.client import ModelServerError, backend_info, chat, resolve_endpoint, stream_chat
from engine.serving.llama_server import LocalServer, ensure_server, server_status, stop_server

__all__ = [
    "LocalServer",
    "ModelServerError",
    "backend_info",
    "chat",
    "ensure_server",
    "resolve_endpoint",
    "server_status",
    "stop_server",
    "stream_chat",
]
