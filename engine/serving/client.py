"""The one chat client: `openai` against whichever OpenAI-compatible endpoint is configured.

No URL configured -> the embedded llama.cpp server (started on demand). LLMLAB_LLM_BASE_URL -> vLLM, Ollama or
any compatible server. OPENAI_API_KEY alone -> OpenAI. The calling code is identical for all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai

from engine.core.config import get_settings
from engine.core.errors import UserError
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.serving import llama_server

MAX_TOKENS_LIMIT = 2048


class ModelServerError(UserError, RuntimeError):
    """The model server cannot answer; the message says what to do. A `UserError` (and still a RuntimeError)."""

    default_code = "server.error"


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str
    local: bool  # the embedded llama.cpp server (restartable by us)
    restarted: bool = False


def resolve_endpoint(progress: ProgressFn = null_progress) -> Endpoint:
    s = get_settings()
    if s.llm_base_url:
        return Endpoint(
            s.llm_base_url,
            s.llm_model or _first_model(s.llm_base_url, s.openai_api_key),
            s.openai_api_key or "not-needed",
            local=False,
        )
    try:
        server = llama_server.ensure_server(progress)
    except RuntimeError as exc:
        raise ModelServerError("server.embedded_failed", reason=exc) from exc
    return Endpoint(server.url, server.model, "not-needed", local=True, restarted=server.restarted)


def _first_model(base_url: str, api_key: str | None) -> str:
    try:
        models = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=5).models.list()
        return models.data[0].id
    except Exception as exc:  # any failure here means the endpoint is not usable
        raise ModelServerError("server.not_answering", url=base_url, reason=type(exc).__name__) from exc


def _client(ep: Endpoint) -> openai.OpenAI:
    # Short connect timeouts so a dead server is reported quickly; generation itself may take a while.
    return openai.OpenAI(base_url=ep.base_url, api_key=ep.api_key, timeout=120, max_retries=0)


def _check(max_tokens: int, temperature: float, top_p: float) -> None:
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise InputError("serving.bad_max_tokens", limit=MAX_TOKENS_LIMIT, value=max_tokens)
    if not 0.0 <= temperature <= 2.0:
        raise InputError("serving.bad_temperature", value=temperature)
    if not 0.0 < top_p <= 1.0:
        raise InputError("serving.bad_top_p", value=top_p)


def stream_chat(
    messages: list[dict],
    *,
    max_tokens: int = 256,
    temperature: float = 0.7,
    top_p: float = 0.95,
    seed: int | None = None,
    stop: list[str] | None = None,
    progress: ProgressFn = null_progress,
) -> Iterator[str]:
    """Yield text pieces as the server produces them.

    If the embedded server died, it is restarted once and the request retried; a first piece of the form
    "\\x00restarted" tells the page to say so (the page strips it).
    """
    _check(max_tokens, temperature, top_p)
    for attempt in range(2):
        ep = resolve_endpoint(progress)
        if ep.restarted:
            yield RESTART_MARK
        try:
            stream = _client(ep).chat.completions.create(
                model=ep.model,
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
                stop=stop or None,
                stream=True,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
            return
        except openai.APIConnectionError as exc:
            if ep.local and attempt == 0:
                continue  # ensure_server() on the next pass notices the dead server and restarts it
            raise ModelServerError("server.connection_lost", url=ep.base_url, reason=exc) from exc
        except openai.APIStatusError as exc:
            raise ModelServerError("server.refused", status=exc.status_code, reason=exc.message) from exc


RESTART_MARK = "\x00restarted"


def chat(messages: list[dict], **kwargs) -> str:
    """Non-streaming convenience: the whole answer as one string."""
    return "".join(p for p in stream_chat(messages, **kwargs) if p != RESTART_MARK)


def backend_info(check: bool = True) -> dict:
    """What the backend panel shows: tier, model, device, server URL and health (never starts a server)."""
    s = get_settings()
    info = {"tier": s.tier, "device": s.device, "offline": s.offline}
    if s.llm_base_url:
        info.update(url=s.llm_base_url, model=s.llm_model or "(first served model)", local=False)
        info["healthy"] = llama_server.healthy(s.llm_base_url) if check and "openai.com" not in s.llm_base_url else None
    else:
        st = llama_server.server_status()
        info.update(url=st["url"], model=llama_server.MODEL_ALIAS, local=True, healthy=st["running"], pid=st["pid"])
    return info
