"""The one chat client: `openai` against whichever OpenAI-compatible endpoint is configured.

No URL configured -> the embedded llama.cpp servers (started on demand, one per role: `chat` = SmolLM2-135M for
the early chapters, `instruct` = Qwen2.5-Coder-0.5B for applications). LLMLAB_LLM_BASE_URL -> vLLM, Ollama or any
compatible server (LLMLAB_INSTRUCT_MODEL names the model for `instruct`). OPENAI_API_KEY alone -> OpenAI. The
calling code is identical for all three.

Structured output and tool calls use the standard `openai` fields. Two gaps of llama-cpp-python's server are
bridged here, and only for it: it refuses `response_format={"type": "json_schema", ...}` (HTTP 500: "Input should be
'text' or 'json_object'") but accepts the same schema as `{"type": "json_object", "schema": ...}` and compiles it
to a grammar; and with `tool_choice="auto"` it renders the tools into Qwen's chat template but returns the model's
call as text (`<tool_call>{...}</tool_call>` or a fenced JSON block), which `parse_tool_calls` turns into tool calls
the way vLLM's hermes parser does on the server. A forced `tool_choice` is grammar-constrained by the server itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
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


ROLES = llama_server.ROLES  # ("chat", "instruct")


def _configured(role: str) -> tuple[str, str | None] | None:
    """(base URL, model name or None = the first it serves) of a configured endpoint for `role`; None = embedded.

    The application roles (`instruct`, `instruct-large`) go to LLMLAB_INSTRUCT_BASE_URL when it is set (vLLM serves
    one model a process, so a course runs one vLLM for `chat` and one for `instruct`), else to LLMLAB_LLM_BASE_URL
    with LLMLAB_INSTRUCT_MODEL as the model name."""
    s = get_settings()
    instruct = role.startswith("instruct")
    if instruct and s.instruct_base_url:
        return s.instruct_base_url, s.instruct_model
    if s.llm_base_url:
        return s.llm_base_url, (s.instruct_model if instruct else None) or s.llm_model
    return None


def resolve_endpoint(progress: ProgressFn = null_progress, role: str = "chat") -> Endpoint:
    if role not in ROLES:
        raise InputError("input.unknown_choice", name="role", value=role, choices=", ".join(ROLES))
    remote = _configured(role)
    if remote:
        url, model = remote
        key = get_settings().openai_api_key
        return Endpoint(url, model or _first_model(url, key), key or "not-needed", local=False)
    try:
        server = llama_server.ensure_server(progress, role)
    except RuntimeError as exc:
        raise ModelServerError("server.embedded_failed", reason=exc) from exc
    return Endpoint(server.url, server.model, "not-needed", local=True, restarted=server.restarted)


def model_name(role: str = "chat") -> str:
    """The model name requests for `role` carry, without starting a server (a cache key needs it before any call)."""
    if role not in ROLES:
        raise InputError("input.unknown_choice", name="role", value=role, choices=", ".join(ROLES))
    remote = _configured(role)
    if not remote:
        return llama_server.ALIASES[role]
    url, model = remote
    return model or _first_model(url, get_settings().openai_api_key)


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
    role: str = "chat",
) -> Iterator[str]:
    """Yield text pieces as the server of `role` produces them.

    If the embedded server died before the answer began, it is restarted once and the request retried; a first
    piece of the form "\\x00restarted" tells the page to say so (the page strips it). If it dies in the middle of
    an answer, the pieces already given stay given and a `ModelServerError` ("server.connection_lost") ends the
    stream: a silent retry would write the answer's beginning twice. The next request restarts the server.
    """
    _check(max_tokens, temperature, top_p)
    for attempt in range(2):
        ep = resolve_endpoint(progress, role)
        if ep.restarted:
            yield RESTART_MARK
        began = False
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
                    began = True
                    yield chunk.choices[0].delta.content
            return
        except (openai.APIConnectionError, httpx.TransportError) as exc:
            if ep.local and attempt == 0 and not began:
                continue  # ensure_server() on the next pass notices the dead server and restarts it
            raise ModelServerError("server.connection_lost", url=ep.base_url, reason=exc) from exc
        except openai.APIStatusError as exc:
            raise ModelServerError("server.refused", status=exc.status_code, reason=exc.message) from exc


RESTART_MARK = "\x00restarted"


def chat(messages: list[dict], **kwargs) -> str:
    """Non-streaming convenience: the whole answer as one string."""
    return "".join(p for p in stream_chat(messages, **kwargs) if p != RESTART_MARK)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict
    id: str = ""


@dataclass(frozen=True)
class ToolReply:
    content: str  # the text answer ("" when the model called tools instead)
    tool_calls: list[ToolCall] = field(default_factory=list)
    parsed_from_text: bool = False  # True when the calls were recovered from the text (local server, auto)


def _create(ep: Endpoint, messages: list[dict], **kwargs):
    try:
        return _client(ep).chat.completions.create(model=ep.model, messages=messages, **kwargs)
    except openai.APIConnectionError as exc:
        raise ModelServerError("server.connection_lost", url=ep.base_url, reason=exc) from exc
    except openai.APIStatusError as exc:
        raise ModelServerError("server.refused", status=exc.status_code, reason=exc.message) from exc


def structured_chat(
    messages: list[dict],
    schema: dict,
    *,
    name: str = "answer",
    max_tokens: int = 256,
    temperature: float = 0.0,
    role: str = "instruct",
    progress: ProgressFn = null_progress,
) -> dict:
    """An answer constrained to a JSON schema, parsed. The caller validates it (pydantic) against its own model."""
    _check(max_tokens, temperature, 1.0)
    ep = resolve_endpoint(progress, role)
    if ep.local:  # llama-cpp-python: the schema rides on json_object and becomes a grammar
        response_format = {"type": "json_object", "schema": schema}
    else:
        response_format = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    reply = _create(
        ep, messages, max_tokens=max_tokens, temperature=temperature, response_format=response_format, seed=0
    )
    text = reply.choices[0].message.content or ""
    try:
        return json.loads(text)
    except ValueError as exc:  # cut off by max_tokens, typically
        raise ModelServerError("server.bad_json", chars=len(text), max_tokens=max_tokens) from exc


_TOOL_TAG = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)
_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def parse_tool_calls(text: str, tool_names: set[str]) -> list[ToolCall]:
    """Tool calls written as text: Qwen's `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, a fenced
    JSON block or the bare object. Only names of offered tools count; anything else stays text."""
    candidates = _TOOL_TAG.findall(text) or _FENCED.findall(text) or ([text.strip()] if text.strip()[:1] == "{" else [])
    calls = []
    for i, raw in enumerate(candidates):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        args = obj.get("arguments", obj.get("parameters", {})) if isinstance(obj, dict) else None
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                args = None
        if isinstance(obj, dict) and obj.get("name") in tool_names and isinstance(args, dict):
            calls.append(ToolCall(obj["name"], args, f"call_{i}"))
    return calls


def tool_chat(
    messages: list[dict],
    tools: list[dict],
    *,
    tool_choice: str | dict = "auto",
    max_tokens: int = 256,
    temperature: float = 0.0,
    role: str = "instruct",
    progress: ProgressFn = null_progress,
) -> ToolReply:
    """One turn with tools offered (the standard `tools` / `tool_choice` fields); the calls come back parsed."""
    _check(max_tokens, temperature, 1.0)
    ep = resolve_endpoint(progress, role)
    reply = _create(
        ep, messages, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens, temperature=temperature, seed=0
    )
    msg = reply.choices[0].message
    calls = [ToolCall(c.function.name, json.loads(c.function.arguments or "{}"), c.id) for c in msg.tool_calls or []]
    if calls or not ep.local:
        return ToolReply(msg.content or "", calls)
    names = {t["function"]["name"] for t in tools if t.get("type") == "function"}
    parsed = parse_tool_calls(msg.content or "", names)
    return ToolReply("" if parsed else (msg.content or ""), parsed, parsed_from_text=bool(parsed))


def count_tokens(text: str, role: str = "instruct") -> int | None:
    """Tokens of `text` for the model of `role`, asked of the embedded server (`/extras/tokenize/count`);
    None for other endpoints (their tokenizer is not ours to run)."""
    ep = resolve_endpoint(role=role)
    if not ep.local:
        return None
    root = ep.base_url.removesuffix("/v1")
    try:
        r = httpx.post(f"{root}/extras/tokenize/count", json={"input": text, "model": ep.model}, timeout=30)
        r.raise_for_status()
        return int(r.json()["count"])
    except (httpx.HTTPError, KeyError, ValueError):
        return None


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
