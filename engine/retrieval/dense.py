"""Dense retrieval: encode documents once, encode the query, rank by cosine similarity.

Two encoders share this code: the packaged English MiniLM (sentence-transformers) — the baseline that shows why an
English model fails on Korean — and the Korean morpheme encoder trained here (engine/retrieval/korean_dense.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.config import get_settings
from engine.core.corpus import Doc
from engine.core.progress import ProgressFn, null_progress

Encoder = Callable[[list[str]], np.ndarray]


@dataclass
class DenseIndex:
    name: str
    encode: Encoder  # texts -> (n, d) unit vectors
    matrix: np.ndarray  # (N, d) document vectors, unit length

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query to every document, in corpus order."""
        q = self.encode([query])[0]
        return self.matrix @ q


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def minilm_encoder(progress: ProgressFn = null_progress) -> Encoder:
    """The packaged all-MiniLM-L6-v2 (English WordPiece: Hangul is cut into jamo)."""
    from engine.models.loading import load_sentence_embedder

    model = load_sentence_embedder("embed", progress)

    def encode(texts: list[str]) -> np.ndarray:
        return _normalize(model.encode(list(texts), batch_size=16, convert_to_numpy=True, show_progress_bar=False))

    return encode


def build_dense(
    name: str, encode: Encoder, docs: list[Doc], cache_key: str | None = None, progress: ProgressFn = null_progress
) -> DenseIndex:
    """Encode every document (cached on disk under LLMLAB_CACHE when `cache_key` is given)."""
    path = _cache_path(name, docs, cache_key) if cache_key else None
    if path is not None and path.exists():
        try:
            return DenseIndex(name, encode, np.load(path))
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    vectors = []
    step = 16
    for i in range(0, len(docs), step):
        progress(i / len(docs), f"{name}: encoding documents {i}/{len(docs)}")
        vectors.append(encode([d.text for d in docs[i : i + step]]))
    matrix = _normalize(np.concatenate(vectors)) if vectors else np.zeros((0, 1), np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npy")
        np.save(tmp, matrix)
        tmp.replace(path)
    progress(1.0, f"{name}: {len(docs)} documents encoded")
    return DenseIndex(name, encode, matrix)


def _cache_path(name: str, docs: list[Doc], key: str) -> Path:
    h = hashlib.sha256(key.encode())
    for d in docs:
        h.update(d.doc_id.encode() + b"\0" + d.text.encode() + b"\0")
    return get_settings().cache_dir / "retrieval" / f"dense-{name}-{h.hexdigest()[:16]}.npy"
