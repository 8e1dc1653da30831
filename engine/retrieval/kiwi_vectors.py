"""Korean morpheme vectors that run offline: the embeddings inside Kiwi's CoNg language model.

kiwipiepy-model ships a contextual n-gram model (`cong.mdl`) whose morphemes have 256-dimensional embeddings,
trained on a large Korean corpus: 세금 is close to 조세 and 납세, 노동자 to 근로자, 판사 to 법관. Kiwi does not
hand out the vectors, only cosine similarities (`Kiwi.morpheme_similarity`). A Nyström reconstruction turns those
into vectors: pick anchor morphemes a_1…a_A (A > 256), take the Gram matrix G = [sim(a_i, a_j)] = U Λ Uᵀ, and map
any morpheme m to x(m) = Λ^{-1/2} Uᵀ [sim(m, a_1) … sim(m, a_A)]. Then x(m)·x(n) = sim(m, n) exactly, because the
anchors span the embedding space (G has rank 256). One morpheme costs A similarity calls (≈1 ms).
"""

from __future__ import annotations

import importlib.metadata as md
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from engine.retrieval.tokenizers import analyze, kiwi

N_ANCHORS = 400
ANCHOR_SEED = 0
MIN_ID = 300  # ids below this are particles, endings and symbols: no meaning to anchor on
MAX_ANCHOR_ID = 30_000  # frequent morphemes: well-trained vectors

_lock = threading.Lock()


@dataclass(frozen=True)
class Morph:
    form: str
    tag: str
    id: int  # Kiwi's morpheme id; -1 when the morpheme has no vector (a split fallback may still give one)


def kiwi_version() -> str:
    try:
        return f"{md.version('kiwipiepy')}+{md.version('kiwipiepy-model')}"
    except md.PackageNotFoundError:
        return "unknown"


def content_morphs(text: str) -> list[Morph]:
    """Content morphemes with their Kiwi ids (particles, endings, punctuation and question words dropped)."""
    return [Morph(form, tag, mid) for form, tag, mid in analyze(text)]


@dataclass
class MorphemeVectors:
    """x(m) for any Kiwi morpheme id, cached; `vector` returns None where Kiwi's model has no embedding."""

    anchors: np.ndarray  # (A,) morpheme ids
    projection: np.ndarray  # (A, r): U Λ^{-1/2}
    cache: dict[int, np.ndarray | None] = field(default_factory=dict)
    version: str = ""

    @classmethod
    def build(cls, n_anchors: int = N_ANCHORS, seed: int = ANCHOR_SEED) -> MorphemeVectors:
        k = kiwi()
        rng = np.random.default_rng(seed)
        anchors: list[int] = []
        for candidate in rng.permutation(np.arange(MIN_ID, MAX_ANCHOR_ID)):
            if len(anchors) >= n_anchors:
                break
            with _lock:
                s = k.morpheme_similarity(int(candidate), int(candidate))
            if math.isfinite(s) and s > 0.5:  # has an embedding
                anchors.append(int(candidate))
        a = np.array(anchors)
        gram = np.array([[_sim(k, i, j) for j in anchors] for i in anchors])
        gram = (gram + gram.T) / 2
        eigval, eigvec = np.linalg.eigh(gram)
        keep = eigval > 1e-6 * eigval.max()
        projection = eigvec[:, keep] / np.sqrt(eigval[keep])
        return cls(a, projection, {}, kiwi_version())

    @property
    def dim(self) -> int:
        return self.projection.shape[1]

    def vector(self, morph_id: int) -> np.ndarray | None:
        if morph_id in self.cache:
            return self.cache[morph_id]
        k = kiwi()
        with _lock:
            sims = np.array([k.morpheme_similarity(int(morph_id), int(a)) for a in self.anchors])
        v = sims @ self.projection if np.isfinite(sims).all() and np.abs(sims).max() > 0 else None
        if v is not None and not np.isfinite(v).all():
            v = None
        self.cache[morph_id] = v
        return v

    def morph_vector(self, m: Morph) -> np.ndarray | None:
        """A morpheme's vector; a compound Kiwi knows only as a whole (국무위원) falls back to its parts' mean."""
        v = self.vector(m.id) if m.id >= 0 else None
        if v is not None or len(m.form) < 2:
            return v
        key = -hash(m.form) - 1  # negative keys cache the fallback per form
        if key in self.cache:
            return self.cache[key]
        parts = [p for p in content_morphs(" ".join(_halves(m.form))) if p.id != m.id]
        vecs = [x for x in (self.vector(p.id) for p in parts) if x is not None]
        v = np.mean(vecs, axis=0) if vecs else None
        self.cache[key] = v
        return v

    def similarity(self, a: int, b: int) -> float:
        va, vb = self.vector(a), self.vector(b)
        if va is None or vb is None:
            return float("nan")
        return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        keys = [k for k, v in self.cache.items() if v is not None and k >= 0]
        return {
            "anchors": self.anchors,
            "projection": self.projection,
            "cache_ids": np.array(keys, dtype=np.int64),
            "cache_vecs": np.array([self.cache[k] for k in keys]).reshape(len(keys), self.dim),
            "version": np.array(self.version),
        }

    @classmethod
    def from_arrays(cls, arrays) -> MorphemeVectors:
        cache = {int(i): v for i, v in zip(arrays["cache_ids"], arrays["cache_vecs"], strict=True)}
        return cls(arrays["anchors"], arrays["projection"], cache, str(arrays["version"]))


def _sim(k, a: int, b: int) -> float:
    with _lock:
        return k.morpheme_similarity(a, b)


def _halves(form: str) -> list[str]:
    """국무위원 -> ['국무', '위원']: split a long noun in the middle so Kiwi analyses each half on its own."""
    mid = len(form) // 2
    return [form[:mid], form[mid:]]
