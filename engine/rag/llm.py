"""The `instruct` model as a LlamaIndex LLM: every call goes through engine.serving (one client for the whole app).

Why not `llama-index-llms-openai-like`: it pins `openai<3` (the lock would have to step back a major version), and it
would bypass engine.serving — the embedded server's start-on-demand, restart-after-crash and the per-role model
choice. This class is LlamaIndex's own extension point (`CustomLLM`) with chat and streaming implemented; the
messages it sent last are kept (`last_messages`) so a page can show the assembled prompt exactly as the model saw it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import Field, PrivateAttr

from engine.core.config import get_settings
from engine.serving.client import RESTART_MARK, stream_chat


class ServingLLM(CustomLLM):
    """A chat model served by engine.serving (`role` "instruct" by default), greedy unless told otherwise."""

    role: str = Field(default="instruct")
    max_tokens: int = Field(default=256)
    temperature: float = Field(default=0.0)
    _last_messages: list[dict] = PrivateAttr(default_factory=list)
    _first_token_s: float | None = PrivateAttr(default=None)
    _restarted: bool = PrivateAttr(default=False)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=get_settings().server_ctx,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=self.role,
        )

    @property
    def last_messages(self) -> list[dict]:
        return list(self._last_messages)

    @property
    def first_token_s(self) -> float | None:
        return self._first_token_s

    @property
    def restarted(self) -> bool:
        return self._restarted

    def _pieces(self, messages: list[dict]):
        self._last_messages = messages
        self._first_token_s = None
        start = time.perf_counter()
        for piece in stream_chat(
            messages, max_tokens=self.max_tokens, temperature=self.temperature, seed=0, role=self.role
        ):
            if piece == RESTART_MARK:
                self._restarted = True
                continue
            if self._first_token_s is None:
                self._first_token_s = time.perf_counter() - start
            yield piece

    @staticmethod
    def _as_dicts(messages: Sequence[ChatMessage]) -> list[dict]:
        return [{"role": m.role.value, "content": m.content or ""} for m in messages]

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = "".join(self._pieces(self._as_dicts(messages)))
        return ChatResponse(message=ChatMessage(role="assistant", content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            text = ""
            for piece in self._pieces(self._as_dicts(messages)):
                text += piece
                yield ChatResponse(message=ChatMessage(role="assistant", content=text), delta=piece)

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="".join(self._pieces([{"role": "user", "content": prompt}])))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            for piece in self._pieces([{"role": "user", "content": prompt}]):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return gen()

    @classmethod
    def class_name(cls) -> str:
        return "llmlab_serving_llm"
