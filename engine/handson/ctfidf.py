"""Hands-On LLM ch.5: class-based TF-IDF (c-TF-IDF) from scratch, the weighting BERTopic names its topics with.

BERTopic joins every document of a topic into one long "class document", counts words per class and weighs them:

    tf(x, c)  = count(x, c) / Σ_x' count(x', c)          how much of class c's text is word x   (L1 per row)
    f(x)      = Σ_c count(x, c)                          how often x occurs over all classes
    A         = int(mean_c Σ_x count(x, c))              the average number of words per class (cut to an integer)
    idf(x)    = log(1 + A / f(x))                        rare over all classes -> large
    W(x, c)   = tf(x, c) · idf(x)

Two switches of `bertopic.vectorizers.ClassTfidfTransformer`, both off by default there and here:

- `reduce_frequent_words`: tf -> sqrt(tf) (after the L1 step), so a word that fills a class counts less.
- `bm25_weighting`: idf(x) = log(1 + (A - f(x) + 0.5) / (f(x) + 0.5)), BM25's idf with A in place of N.

`c_tf_idf` equals `ClassTfidfTransformer().fit_transform(counts)` on the same count matrix to float precision for
every combination of the two switches (tests/engine/test_handson_topics.py); `top_words` reads a topic's words off
one row the way BERTopic does (highest weight first, zero weights never).
"""

from __future__ import annotations

import numpy as np


def c_tf_idf(counts, *, reduce_frequent_words: bool = False, bm25_weighting: bool = False) -> np.ndarray:
    """(C, V) word counts per class (dense or scipy sparse) -> (C, V) float64 c-TF-IDF weights."""
    x = np.asarray(counts.toarray() if hasattr(counts, "toarray") else counts, dtype=np.float64)  # (C, V)
    if x.ndim != 2:
        raise ValueError(f"counts must be a (classes, words) matrix, got shape {x.shape}")
    row_sums = x.sum(axis=1, keepdims=True)  # (C, 1) words per class
    tf = x / np.where(row_sums > 0, row_sums, 1.0)  # (C, V) L1 per class; an empty class stays all zeros
    if reduce_frequent_words:
        tf = np.sqrt(tf)
    f = x.sum(axis=0)  # (V,) frequency of each word over all classes
    avg = int(row_sums.mean())  # A: BERTopic casts the average to int, so do we (it changes idf when A is small)
    with np.errstate(divide="ignore", invalid="ignore"):
        if bm25_weighting:
            idf = np.log(1 + (avg - f + 0.5) / (f + 0.5))  # (V,)
        else:
            idf = np.log(avg / f + 1)  # (V,)
    return tf * idf[None, :]  # (C, V)


def idf_of(counts, *, bm25_weighting: bool = False) -> np.ndarray:
    """(V,) the idf part alone (for the page's formula table)."""
    x = np.asarray(counts.toarray() if hasattr(counts, "toarray") else counts, dtype=np.float64)
    f = x.sum(axis=0)
    avg = int(x.sum(axis=1).mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(1 + (avg - f + 0.5) / (f + 0.5)) if bm25_weighting else np.log(avg / f + 1)


def top_words(weights_row, words, n: int = 8) -> list[tuple[str, float]]:
    """The `n` highest-weighted words of one class, highest first, ties broken by vocabulary order; zeros dropped."""
    row = np.asarray(weights_row.toarray()).ravel() if hasattr(weights_row, "toarray") else np.asarray(weights_row)
    order = np.argsort(-row, kind="stable")[:n]  # (n,)
    return [(str(words[i]), float(row[i])) for i in order if row[i] > 0]
