"""A LlamaIndex embedding model over an in-process sentence-transformers model.

LlamaIndex's default embedding is OpenAI's API; passing this one explicitly (and `Settings.llm = None`) means no
call ever leaves the machine. The model is the packaged all-MiniLM-L6-v2 (role `embed`) unless one is given; it is
loaded on first use, so opening a store, deleting or listing never waits for it.
"""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr


class SentenceTransformerEmbedding(BaseEmbedding):
    """Unit-length embeddings, so the store's cosine similarity is a plain dot product."""

    _model: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr()

    def __init__(self, model: Any = None, model_name: str = "all-MiniLM-L6-v2", **kwargs: Any):
        super().__init__(model_name=model_name, embed_batch_size=32, **kwargs)
        self._model = model  # None: the packaged model is loaded on the first text to embed
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                from engine.models.loading import load_sentence_embedder

                self._model = load_sentence_embedder("embed")
        return self._model

    @classmethod
    def class_name(cls) -> str:
        return "SentenceTransformerEmbedding"

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype("float32").tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)


def disable_llamaindex_llm() -> None:
    """`Settings.llm = None` (a MockLLM), so nothing in LlamaIndex can fall back to OpenAI for generation.

    LlamaIndex prints a notice when it does this; it is swallowed so `--json` output stays clean.
    """
    from llama_index.core import Settings

    if getattr(Settings, "_llm", None) is None:
        with contextlib.redirect_stdout(io.StringIO()):
            Settings.llm = None
