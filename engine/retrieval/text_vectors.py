"""Chapter 10, first steps: turning Korean text into vectors — one-hot, bag-of-words, TF-IDF.

Tokens are Kiwi content morphemes (engine/retrieval/tokenizers.py), so 국민은 and 국민의 count as one word.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.core.textinput import InputError, clean_text
from engine.retrieval.tokenizers import get_tokenizer

MAX_SENTENCES = 12
MAX_VOCAB = 400


@dataclass
class TextVectors:
    sentences: list[str]
    tokens: list[list[str]]
    vocab: list[str]
    one_hot: np.ndarray  # (T, V): one row per token of the first sentence
    bow: np.ndarray  # (S, V) counts
    tfidf: np.ndarray  # (S, V) tf · idf, rows L2-normalized
    idf: np.ndarray  # (V,)
    cosine_bow: np.ndarray  # (S, S)
    cosine_tfidf: np.ndarray  # (S, S)


def _cosine(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    u = m / np.where(n == 0, 1, n)
    return u @ u.T


def text_vectors(sentences: list[str], tokenizer: str = "kiwi") -> TextVectors:
    """One-hot of the first sentence's tokens, BoW counts and TF-IDF (smooth idf = ln((1+N)/(1+df)) + 1)."""
    cleaned = [clean_text(s, max_chars=1000, allow_empty=True).text.strip() for s in sentences[:MAX_SENTENCES]]
    cleaned = [s for s in cleaned if s]
    if len(cleaned) < 2:
        raise InputError("retrieval.two_sentences")
    tok = get_tokenizer(tokenizer)
    tokens = [tok(s) for s in cleaned]
    counts = Counter(t for ts in tokens for t in ts)
    if not counts:
        raise InputError("retrieval.no_words")
    vocab = [w for w, _ in counts.most_common(MAX_VOCAB)]
    index = {w: i for i, w in enumerate(vocab)}
    bow = np.zeros((len(cleaned), len(vocab)))
    for r, ts in enumerate(tokens):
        for t in ts:
            if t in index:
                bow[r, index[t]] += 1
    one_hot = np.zeros((len(tokens[0]), len(vocab)))
    for r, t in enumerate(tokens[0]):
        if t in index:
            one_hot[r, index[t]] = 1
    df = (bow > 0).sum(0)
    n = len(cleaned)
    idf = np.array([math.log((1 + n) / (1 + d)) + 1 for d in df])
    tfidf = bow * idf
    tfidf = tfidf / np.maximum(np.linalg.norm(tfidf, axis=1, keepdims=True), 1e-12)
    return TextVectors(cleaned, tokens, vocab, one_hot, bow, tfidf, idf, _cosine(bow), _cosine(tfidf))
