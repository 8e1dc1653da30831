"""Reranking by late interaction over a small multilingual language model's token states (ColBERT-style MaxSim).

The second stage of the search pipeline (bi-encoder → rerank). The first stage — BM25 on Kiwi morphemes fused with
the Korean morpheme encoder — is fast but sees words, not context: it ranks 제105조 (대법원장의 임기 … 연임) above
제70조 (대통령의 임기 … 중임할 수 없다) for "대통령 임기는 몇 년이고 연임이 가능한가요?". Here every token of the
question and of each candidate article gets a *contextual* vector: the hidden state of layer 11 of the packaged
Gemma-3-270M (multilingual; its tokenizer keeps Hangul as syllables and subwords, unlike MiniLM's jamo). Then

    lm(q, d) = Σ_i w_i · max_j cos(h_i(q), h_j(d)) / Σ_i w_i

— each question token finds its best match anywhere in the article (ColBERT's MaxSim); w_i is the token's IDF over
the corpus, counted only for tokens inside a content morpheme (Kiwi), so 나요 / 어떻게 / 몇 carry no weight.

The LM itself stays frozen. Article states are computed once at build time (≈1 min on 2 cores, cached under
LLMLAB_CACHE); then a low-rank adapter x ↦ x + xAB of the token states is fine-tuned with MNR on the hand-written
training questions (`train_adapter`, ColBERT's recipe at small scale; ≈2 min on one core), which moved dev hit@1 of
the LM signal alone from zero-shot to ≈.79. A query costs one 11-layer forward pass over ~15 tokens (tens of ms) plus
one matrix product.
A fourth, tiny signal is the classic answer-type match of question answering: a question asking 몇 년 / 몇 명 /
며칠 / 몇 살 / 몇 번 is answered by an article that states a number of years / persons (인) / days / ages (세) /
times. The final score fuses the four signals over the top-`depth` hybrid candidates,

    final(d) = w_bm25 · norm(bm25) + w_dense · norm(dense) + w_lm · norm(lm) + w_type · type(q, d)

(norm = min-max over the candidates; type ∈ {0, 1}), with the weights chosen on the dev questions (a grid over
the simplex, like α for the hybrid), so on dev the pipeline cannot lose to its inputs. Measured numbers are in the
chapter 11 page and tests/bench/bench_search.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.config import get_settings
from engine.core.corpus import Doc
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.retrieval.hybrid import minmax

MODEL_ROLE = "base-ko"  # Gemma-3-270M, packaged offline (engine/models/registry.py)
LAYER = 11  # chosen on the dev questions among layers 8–14 (middle layers match meaning best; the last predict)
DEPTH = 30  # candidates taken from the hybrid ranking
DEFAULT_WEIGHTS = (0.1, 0.4, 0.4, 0.1)  # (bm25, dense, lm, type) as chosen on the constitution dev set
MAX_DOCS = 2_000  # beyond this the article states take too long to build on a laptop: the reranker is skipped
MAX_TOKENS = 512  # per article (the longest article of the Constitution has ~350)
STATES_VERSION = 2

_lock = threading.Lock()  # one forward pass at a time (Streamlit sessions share the model)
_load_lock = threading.Lock()


# (what the question asks for, how an article states it): a number of years, persons, days, ages, times
ANSWER_TYPES = (
    (re.compile(r"몇\s*년|임기"), re.compile(r"\d+\s*년")),
    (re.compile(r"몇\s*(?:명|사람|인)|인원|정족수"), re.compile(r"\d+\s*(?:인|명)|과반수|\d+분의")),
    (re.compile(r"며칠|몇\s*일|언제까지|기한|기간"), re.compile(r"\d+\s*일")),
    (re.compile(r"몇\s*살|나이"), re.compile(r"\d+\s*세")),
    (re.compile(r"몇\s*(?:번|회)"), re.compile(r"\d+\s*회|\d+차")),
)


def asked_types(query: str) -> list[int]:
    return [k for k, (ask, _) in enumerate(ANSWER_TYPES) if ask.search(query)]


def stated_types(text: str) -> set[int]:
    return {k for k, (_, state) in enumerate(ANSWER_TYPES) if state.search(text)}


def answer_type_match(query: str, stated: list[set[int]]) -> np.ndarray:
    """1.0 for each document that states what the question asks for (all 0 when it asks for no quantity)."""
    asked = asked_types(query)
    return np.array([float(any(k in s for k in asked)) for s in stated])


def _is_word(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


class TokenStates:
    """Text -> (token ids, unit-length hidden states of layer `layer`, content mask), from a causal LM."""

    def __init__(self, tokenizer, model, layer: int, name: str):
        self.tokenizer, self.model, self.layer, self.name = tokenizer, model, layer, name

    @classmethod
    def load(cls, progress: ProgressFn = null_progress, layer: int = LAYER, device: str = "cpu") -> TokenStates:
        from engine.models.loading import load_causal_lm

        lm = load_causal_lm(MODEL_ROLE, progress, device=device)
        base = lm.model.model  # the decoder without the LM head
        base.layers = base.layers[:layer]  # layers past `layer` are never used: skip their compute
        base.config.num_hidden_layers = layer
        return cls(lm.tokenizer, base, layer, f"{lm.resolved.model_id} layer {layer}")

    def encode(self, text: str, content: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        enc = self.tokenizer(
            text, return_tensors="pt", truncation=True, max_length=MAX_TOKENS, return_offsets_mapping=True
        )
        offsets = enc.pop("offset_mapping")[0].tolist()
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        with _lock, torch.no_grad():
            hidden = self.model(**enc, output_hidden_states=True).hidden_states[self.layer][0]
        ids = enc["input_ids"][0].tolist()
        special = set(self.tokenizer.all_special_ids)
        keep = [k for k, i in enumerate(ids) if i not in special and _is_word(text[offsets[k][0] : offsets[k][1]])]
        states = torch.nn.functional.normalize(hidden[keep].float(), dim=-1).cpu().numpy()
        mask = np.ones(len(keep), dtype=bool)
        if content:
            from engine.retrieval.tokenizers import content_spans

            spans = content_spans(text)
            mask = np.array([any(a < e and s < b for s, e in spans) for a, b in (offsets[k] for k in keep)], bool)
        return np.array([ids[k] for k in keep], dtype=np.int64), states, mask


def _one_blas_thread():
    """A context in which numpy's BLAS runs on one thread.

    Right after a forward pass torch's OpenMP threads still spin on both cores; a multi-threaded BLAS call then
    fights them and a 10 ms product takes 80 ms (measured on 2 cores). One BLAS thread is enough for these sizes."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


_blas = None


def maxsim(query: np.ndarray, weights: np.ndarray, doc_states: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Σ_i w_i · max_j q_i·d_j / Σ_i w_i for every document; documents are row ranges [offsets[k], offsets[k+1])."""
    if len(query) == 0 or weights.sum() <= 0:
        return np.zeros(len(offsets) - 1)
    with _one_blas_thread():
        sims = query @ doc_states.T  # (query tokens, all document tokens)
    best = np.maximum.reduceat(sims, offsets[:-1], axis=1)  # (query tokens, documents)
    return weights @ best / weights.sum()


@dataclass
class LateInteractionReranker:
    doc_states: np.ndarray  # (all article tokens, hidden) unit rows, float32
    offsets: np.ndarray  # (N + 1,) row ranges per article
    idf: dict[int, float]
    stated: list[set[int]] = field(default_factory=list)  # answer types each article states
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    depth: int = DEPTH
    info: dict = field(default_factory=dict)
    encoder: TokenStates | None = None  # loaded on first use: a bm25-only search never pays for the LM
    adapter: tuple[np.ndarray, np.ndarray] | None = None  # (A, B) of x + xAB, trained on training questions
    _projected: np.ndarray | None = field(default=None, repr=False)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Token states through the low-rank adapter (identity without one), unit length again."""
        if self.adapter is None:
            return x
        a, b = self.adapter
        with _one_blas_thread():
            y = x + (x @ a) @ b
        return (y / (np.linalg.norm(y, axis=-1, keepdims=True) + 1e-9)).astype(np.float32)

    def set_adapter(self, adapter: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.adapter = None if adapter is None else tuple(np.asarray(m, dtype=np.float32) for m in adapter)
        self._projected = None

    @property
    def projected_states(self) -> np.ndarray:
        if self._projected is None:
            self._projected = self.project(self.doc_states)
        return self._projected

    @property
    def max_idf(self) -> float:
        return max(self.idf.values()) if self.idf else 1.0

    def ensure_encoder(self, progress: ProgressFn = null_progress) -> TokenStates:
        with _load_lock:
            if self.encoder is None:
                self.encoder = TokenStates.load(progress, self.info.get("layer", LAYER))
        return self.encoder

    def query_vectors(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        ids, states, content = self.ensure_encoder().encode(query, content=True)
        w = np.array([self.idf.get(int(i), self.max_idf) for i in ids])
        if content.any():  # a question with no content morpheme at all keeps every token
            w = w * content
        return states, w

    def lm_scores(self, query: str, candidates: list[int] | None = None) -> np.ndarray:
        """MaxSim of the query against every article (or only `candidates`, in that order)."""
        q, w = self.query_vectors(query)
        scores = maxsim(self.project(q), w, self.projected_states, self.offsets)
        return scores if candidates is None else scores[candidates]

    def type_scores(self, query: str, candidates) -> np.ndarray:
        return answer_type_match(query, [self.stated[int(i)] for i in candidates])

    def fuse(self, bm25: np.ndarray, dense: np.ndarray, lm: np.ndarray, kind: np.ndarray, weights=None):
        wb, wd, wl, wt = weights or self.weights
        return wb * minmax(bm25) + wd * minmax(dense) + wl * minmax(lm) + wt * kind

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{time.time_ns()}.tmp.npz")
        np.savez(
            tmp,
            states=self.doc_states.astype(np.float16),
            offsets=self.offsets,
            idf_ids=np.array(list(self.idf), dtype=np.int64),
            idf_values=np.array(list(self.idf.values())),
            stated=np.array(json.dumps([sorted(x) for x in self.stated])),
            info=np.array(json.dumps(self.info, ensure_ascii=False)),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LateInteractionReranker:
        with np.load(path, allow_pickle=False) as z:
            idf = {int(i): float(v) for i, v in zip(z["idf_ids"], z["idf_values"], strict=True)}
            stated = [set(x) for x in json.loads(str(z["stated"]))]
            return cls(z["states"].astype(np.float32), z["offsets"], idf, stated, info=json.loads(str(z["info"])))


def states_path(docs: list[Doc], layer: int = LAYER) -> Path:
    from engine.models.registry import SHA256
    from engine.retrieval.korean_dense import corpus_hash

    tag = hashlib.sha256(f"{SHA256[MODEL_ROLE]}-{layer}-{MAX_TOKENS}-v{STATES_VERSION}".encode()).hexdigest()[:8]
    return get_settings().cache_dir / "retrieval" / f"lm-states-{corpus_hash(docs)}-{tag}.npz"


def load_states(docs: list[Doc], layer: int = LAYER) -> LateInteractionReranker | None:
    path = states_path(docs, layer)
    if not path.exists():
        return None
    try:
        return LateInteractionReranker.load(path)
    except (OSError, ValueError, KeyError):
        path.unlink(missing_ok=True)  # a broken cache file is rebuilt, not trusted
        return None


def build_states(
    docs: list[Doc], progress: ProgressFn = null_progress, layer: int = LAYER, encoder: TokenStates | None = None
) -> LateInteractionReranker:
    """Every article's token states (cached); ≈0.3–1 s per article on 2 CPU cores."""
    cached = load_states(docs, layer)
    if cached is not None:
        return cached
    if len(docs) > MAX_DOCS:
        raise InputError("input.too_large", name="documents", limit=MAX_DOCS, value=len(docs))
    start = time.perf_counter()
    encoder = encoder or TokenStates.load(lambda f, m: progress(0.05 * f, m), layer)
    states, ids, offsets = [], [], [0]
    for k, doc in enumerate(docs):
        if k % 4 == 0:
            progress(0.05 + 0.95 * k / len(docs), f"{encoder.name}: article states {k}/{len(docs)}")
        tok, s, _ = encoder.encode(doc.text)
        if len(tok) == 0:  # keep one zero row so every article has a range
            tok, s = np.array([-1]), np.zeros((1, encoder.model.config.hidden_size), np.float32)
        states.append(s)
        ids.append(tok)
        offsets.append(offsets[-1] + len(tok))
    df: dict[int, int] = {}
    for tok in ids:
        for i in set(tok.tolist()):
            df[i] = df.get(i, 0) + 1
    n = len(docs)
    idf = {i: float(np.log(1 + (n - c + 0.5) / (c + 0.5))) for i, c in df.items()}
    reranker = LateInteractionReranker(
        np.concatenate(states).astype(np.float32),
        np.array(offsets, dtype=np.int64),
        idf,
        [stated_types(d.text) for d in docs],
        info={"model": encoder.name, "layer": layer, "tokens": int(offsets[-1]), "seconds": 0.0},
        encoder=encoder,
    )
    reranker.info["seconds"] = round(time.perf_counter() - start, 1)
    reranker.save(states_path(docs, layer))
    progress(1.0, f"article states ready ({reranker.info['seconds']:.0f} s)")
    return reranker


@dataclass
class AdapterConfig:
    rank: int = 32  # low-rank update x + xAB of the frozen layer states (2 · 640 · rank parameters)
    epochs: int = 8  # passes over the training questions
    batch_size: int = 32
    lr: float = 3e-3
    scale: float = 30.0  # MNR temperature: logits = scale · MaxSim
    seed: int = 0


def train_adapter(
    reranker: LateInteractionReranker,
    questions: list[tuple[str, int]],
    config: AdapterConfig | None = None,
    progress: ProgressFn = null_progress,
) -> tuple[tuple[np.ndarray, np.ndarray], list[dict]]:
    """Fine-tune late interaction on (question, article index) pairs: ColBERT's recipe at small scale.

    The LM stays frozen; only a low-rank update of its token states is learned (B starts near zero, so training
    starts from the zero-shot MaxSim). The loss is MNR with the whole corpus as candidates: softmax over the
    question's MaxSim against every article. Returns ((A, B), loss history)."""
    import torch

    config = config or AdapterConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    encoded = []
    for k, (q, d) in enumerate(questions):
        if k % 16 == 0:
            progress(0.4 * k / max(1, len(questions)), f"training questions through the LM {k}/{len(questions)}")
        states, w = reranker.query_vectors(q)
        if w.sum() > 0:
            encoded.append((torch.tensor(states), torch.tensor(w, dtype=torch.float32), d))
    docs = torch.tensor(reranker.doc_states)  # (T, H) every article token
    n_docs = len(reranker.offsets) - 1
    seg = torch.tensor(np.repeat(np.arange(n_docs), np.diff(reranker.offsets)))
    hidden = docs.shape[1]
    a = torch.nn.Parameter(torch.zeros(hidden, config.rank))
    b = torch.nn.Parameter(torch.randn(config.rank, hidden) * 0.01)
    opt = torch.optim.Adam([a, b], lr=config.lr)

    def proj(x):
        return torch.nn.functional.normalize(x + (x @ a) @ b, dim=-1)

    history = []
    steps = config.epochs * ((len(encoded) + config.batch_size - 1) // config.batch_size)
    step = 0
    for epoch in range(config.epochs):
        total = 0.0
        order = rng.permutation(len(encoded))
        for start in range(0, len(order), config.batch_size):
            dp = proj(docs)
            losses = []
            for i in order[start : start + config.batch_size]:
                q, w, gold = encoded[i]
                sims = proj(q) @ dp.T  # (query tokens, all article tokens)
                best = torch.full((len(q), n_docs), -1e4).scatter_reduce(1, seg.expand(len(q), -1), sims, "amax")
                score = (w @ best) / w.sum()  # (articles,)
                losses.append(torch.nn.functional.cross_entropy(config.scale * score[None], torch.tensor([gold])))
            loss = torch.stack(losses).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(losses)
            step += 1
            progress(0.4 + 0.6 * step / steps, f"late-interaction adapter: epoch {epoch + 1}/{config.epochs}")
        history.append({"epoch": epoch + 1, "loss": round(total / max(1, len(encoded)), 4)})
    return (a.detach().numpy(), b.detach().numpy()), history


def rank_in(order: np.ndarray, gold: int) -> int | None:
    hit = np.nonzero(order == gold)[0]
    return int(hit[0]) + 1 if hit.size else None


def choose_weights(
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]], step: float = 0.1
) -> tuple[tuple[float, ...], list[dict]]:
    """The (bm25, dense, lm, type) weights on a simplex grid with the best dev MRR (ties: hit@1, then hit@5).

    `rows`: per question (candidate indices, bm25, dense, lm, type scores of the candidates, gold index)."""
    grid = np.round(np.arange(0, 1 + 1e-9, step), 3)
    normed = [(cand, minmax(b), minmax(d), minmax(lm), kind, gold) for cand, b, d, lm, kind, gold in rows]
    table = []
    for wb, wl, wt in itertools.product(grid, grid, grid):
        if wb + wl + wt > 1 + 1e-9:
            continue
        w = (float(wb), round(1 - float(wb) - float(wl) - float(wt), 3), float(wl), float(wt))
        ranks = []
        for cand, b, d, lm, kind, gold in normed:
            s = w[0] * b + w[1] * d + w[2] * lm + w[3] * kind
            ranks.append(rank_in(cand[np.argsort(-s, kind="stable")], gold))
        n = len(ranks)
        table.append(
            {
                "bm25": w[0],
                "dense": w[1],
                "lm": w[2],
                "type": w[3],
                "hit@1": sum(r == 1 for r in ranks) / n,
                "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
                "mrr": sum(1 / r for r in ranks if r) / n,
            }
        )
    best = max(table, key=lambda r: (round(r["mrr"], 9), r["hit@1"], r["hit@5"]))
    return (best["bm25"], best["dense"], best["lm"], best["type"]), table
