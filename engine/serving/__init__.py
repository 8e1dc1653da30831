"""Chat-style calls through an OpenAI-compatible endpoint: the embedded llama.cpp server, vLLM or OpenAI."""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face
from engine.serving.client import ModelServerError, backend_info, chat, resolve_endpoint, stream_chat
from engine.serving.llama_server import LocalServer, ensure_server, server_status, stop_server

_LAZY = {
    "ROLES": "client",
    "ToolCall": "client",
    "ToolReply": "client",
    "count_tokens": "client",
    "parse_tool_calls": "client",
    "structured_chat": "client",
    "tool_chat": "client",
    "MAX_CONCURRENCY": "load_test",
    "PROMPTS": "load_test",
    "RESTART_MARK": "client",
    "run_load_test": "load_test",
}
__all__ = [
    "MAX_CONCURRENCY",
    "PROMPTS",
    "RESTART_MARK",
    "ROLES",
    "LocalServer",
    "ModelServerError",
    "ToolCall",
    "ToolReply",
    "backend_info",
    "chat",
    "count_tokens",
    "ensure_server",
    "parse_tool_calls",
    "resolve_endpoint",
    "run_load_test",
    "server_status",
    "stop_server",
    "stream_chat",
    "structured_chat",
    "tool_chat",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
