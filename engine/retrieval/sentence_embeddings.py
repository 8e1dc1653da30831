"""Sentence embeddings from token vectors: mean, CLS and max pooling, and a cosine-similarity heatmap.

Uses the transformer inside the packaged MiniLM (sentence-transformers' first module), so the three poolings are
computed from the same token vectors; MiniLM itself was trained with mean pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.textinput import InputError, clean_text

POOLINGS = ("mean", "cls", "max")
MAX_SENTENCES = 10


@dataclass
class PooledEmbeddings:
    sentences: list[str]
    pooling: str
    vectors: np.ndarray  # (S, D) unit rows
    similarity: np.ndarray  # (S, S)
    tokens: list[list[str]]


def pool(token_states: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """token_states (S, T, D), mask (S, T) -> (S, D)."""
    if pooling == "mean":
        m = mask[..., None]
        return (token_states * m).sum(1) / np.maximum(m.sum(1), 1)
    if pooling == "cls":
        return token_states[:, 0]
    if pooling == "max":
        return np.where(mask[..., None] > 0, token_states, -np.inf).max(1)
    raise InputError("input.unknown_choice", name="pooling", value=pooling, choices=", ".join(POOLINGS))


def pooled_embeddings(model, sentences: list[str], pooling: str = "mean") -> PooledEmbeddings:
    """`model`: a sentence_transformers.SentenceTransformer (its first module gives token embeddings)."""
    import torch

    cleaned = [clean_text(s, max_chars=500, allow_empty=True).text.strip() for s in sentences[:MAX_SENTENCES]]
    cleaned = [s for s in cleaned if s]
    if len(cleaned) < 2:
        raise InputError("retrieval.two_sentences")
    features = model.preprocess(cleaned) if hasattr(model, "preprocess") else model.tokenize(cleaned)
    with torch.no_grad():
        out = model[0](dict(features))
    states = out["token_embeddings"].numpy()
    mask = features["attention_mask"].numpy()
    vec = pool(states, mask, pooling)
    vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    tok = model.tokenizer
    tokens = [
        tok.convert_ids_to_tokens(ids[: int(m.sum())]) for ids, m in zip(features["input_ids"], mask, strict=True)
    ]
    return PooledEmbeddings(cleaned, pooling, vec, vec @ vec.T, tokens)
