"""An LLM answer cache, exact and semantic, persisted in SQLite — and why a semantic cache needs Korean grammar.

Why cache: on 2 CPU cores the `instruct` model takes seconds per answer; a learner (or a class) asks the same few
questions again and again. Two levels:

1. **Exact**: the question normalized (NFC, whitespace collapsed, case folded, trailing punctuation dropped) is
   looked up by its unique (scope, question) index. Measured 0.007 ms median with 825 cached questions (goal ≤ 5 ms;
   tests/bench/bench_rag_cache.py, 2 shared cores).
2. **Semantic**: the question's embedding (by default the project's Korean morpheme encoder for the Constitution,
   engine/retrieval/korean_dense.py) against the scope's cached questions (one matrix product, the matrix kept in
   memory until the table changes); the best one with cosine ≥ threshold that passes the guard is served.
   Measured 0.98 ms median over 825 cached questions, including the query embedding and Kiwi (goal ≤ 30 ms); a
   store costs ≈ 7 ms (embedding, Kiwi, one commit).

Every entry lives under a **scope**: `cache_scope(model, template, settings)` hashes the model name, the prompt
template's text and the retrieval settings, so changing any of them never serves an answer made under the old ones.

**The false-hit problem.** The encoder is a weighted bag of content morphemes: "A가 B보다 크다" and "B가 A보다 크다"
have the same bag, cosine 1.000; so do "…해산할 수 있나요" and "…해산할 수 없나요" (있/없 are not content words) and
"제70조" vs "제71조" (numbers carry no vector). No threshold separates them: without a guard the false-hit rate on
assets/rag/cache_pairs.yaml stays high at every threshold up to 0.99 (see the table in `threshold_sweep`).

**The guard** (`guard=True`) adds what Korean grammar marks explicitly and the embedding throws away — who does what
to whom. Kiwi splits every question into morphemes; each noun phrase gets the role its case particle marks
(이/가 subject, 을/를 object, 보다 comparison, 에게 dative …; `_CASE_ROLES`), and a semantic hit also needs:
- the same **arguments in the same roles** (a multiset of (noun phrase, role) pairs, compared as a matching, so
  word order is free: "B보다 A가 크다" still hits "A가 B보다 크다");
- the same **polarity** (않/못/없/아니/말 counted; "수 없으면" = "하지 못하면");
- the same **numbers** ("5년" vs "4년", 제70조 vs 제71조).
The Korean details that make paraphrases still match: 의 and bare noun-noun compounds are one phrase
(대통령의 임기 = 대통령 임기; 국회의원 = 국회/의원), the topic marker 은/는 marks no case, so it takes the subject's
role when the sentence has no 이/가 and otherwise the object's or a possessor's ("계엄은 누가 선포하나" = "누가
계엄을 선포하나"; "대통령은 임기가" = "대통령의 임기가"), a phrase without a particle matches any role (spoken
Korean drops particles), and question words (누구, 몇 년, 얼마나 …) are the question's gap, not an argument.

Measured on the 64 labelled pairs (32 paraphrases, 32 changed-meaning pairs) at the default 0.90: without the guard
75 % of the changed-meaning pairs are false hits (paraphrase hits 78 %); with it 0 % (paraphrase hits 59 %). The
whole sweep is in DEFAULT_THRESHOLD's comment.

Robustness: the file is SQLite in WAL mode (readers never block the writer; a crash mid-write leaves the last
committed state); every store is one transaction; a corrupted file is moved aside (`llm_cache.sqlite.corrupt-<ts>`)
and a fresh one started, with the warning code `rag.cache.corrupt_reset` on `LLMCache.warning` — never an exception
to the learner; an unwritable cache directory falls back to an in-memory cache (`rag.cache.unwritable`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from engine.core.assets import asset
from engine.core.config import get_settings
from engine.core.textinput import InputError

Embedder = Callable[[list[str]], np.ndarray]

# Chosen on assets/rag/cache_pairs.yaml with `threshold_sweep`: the best paraphrase hit rate whose false-hit rate
# with the guard is ≤ 10 %, ties broken towards the higher (safer) threshold. Measured (32 + 32 pairs):
#   threshold        0.80  0.84  0.88  0.90  0.92  0.96  0.99
#   guard on   hits  .594  .594  .594  .594  .562  .562  .562   false hits  0 at every threshold
#   guard off  hits  .781  .781  .781  .781  .688  .656  .625   false hits .844 .781 .750 .750 .719 .656 .625
# Without the guard no threshold helps: the reversed pairs score 1.000, as high as the best paraphrases. The
# guard's misses are lexical paraphrases (행사하다/쓰다, 가지다/있다): it requires the same content words.
DEFAULT_THRESHOLD = 0.90
THRESHOLD_RANGE = (0.80, 0.99)  # the page's slider
SWEEP_THRESHOLDS = (0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98, 0.99)
CACHE_PAIRS = asset("rag", "cache_pairs.yaml")
MAX_CANDIDATES = 16  # semantic candidates above the threshold the guard looks at (best first)
_BUSY_TIMEOUT_MS = 5_000


# -- typed results ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GuardVerdict:
    """Whether two questions have the same argument structure, polarity and numbers; `reason` says which differs."""

    passed: bool
    reason: str  # "same", "roles", "arguments", "negation", "numbers"
    detail: str  # short English, e.g. "A: subj vs cmp"; the page translates by `reason`


@dataclass(frozen=True)
class CacheHit:
    kind: str  # "exact" or "semantic"
    question: str  # the cached question that matched
    answer: str
    sources: list[str]  # doc ids
    similarity: float  # 1.0 for exact
    lookup_s: float
    guard: GuardVerdict | None = None  # semantic hits: the guard's verdict (None when the guard was off)


@dataclass(frozen=True)
class CacheVerdict:
    """One lookup, hit or miss, with why: what the page shows next to the answer ("similar enough but the roles
    differ")."""

    kind: str  # "exact", "semantic" or "miss"
    hit: CacheHit | None
    similarity: float | None  # best cosine in the scope (None: nothing cached there, or semantic off)
    nearest: str | None  # the cached question with that cosine
    guard: GuardVerdict | None  # the guard's verdict on `nearest` when it was above the threshold
    reason: str  # "exact", "semantic", "empty_scope", "below_threshold", "guard", "semantic_off", "error"
    threshold: float
    lookup_s: float
    warning: str | None = None  # an error code when the cache could not be read (the lookup is then a miss)


@dataclass(frozen=True)
class CacheStats:
    path: str
    entries: int
    scopes: int
    exact_hits: int  # since this LLMCache was made
    semantic_hits: int
    misses: int
    guard_blocks: int  # misses where a candidate was similar enough but the guard said no
    stores: int
    file_bytes: int
    warning: str | None


# -- normalization and scope ------------------------------------------------------------------------------------
_TRAILING = re.compile(r"[\s?!.,~…。？！．、]+$")
_SPACES = re.compile(r"\s+")


def normalize_question(text: str) -> str:
    """The exact-match key: NFC (a decomposed 한 from macOS equals the composed one), whitespace collapsed, case
    folded (Latin letters only change), trailing punctuation dropped ("임기는?" = "임기는")."""
    text = unicodedata.normalize("NFC", text or "")
    text = _SPACES.sub(" ", text).strip()
    return _TRAILING.sub("", text).casefold()


def cache_scope(model: str, template: str, settings: dict) -> str:
    """A 16-hex hash over the model name, the prompt template text and the retrieval settings (sorted JSON): any
    change gives a new scope, so an answer made under other settings is never served."""
    payload = json.dumps(
        {"model": model, "template": template, "settings": settings},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# -- the guard: argument structure from Kiwi morphemes ------------------------------------------------------------
# Case particles → the role they mark. 의 (JKG) is not here: it joins two nouns into one phrase.
_CASE_ROLES = {
    "JKS": "subj",
    "JKO": "obj",
    "JKC": "compl",  # 이/가 before 되다/아니다
    "JKV": "voc",
    "JKQ": "quote",
}
_ADVERBIAL_ROLES = {  # JKB (and a few JX that Kiwi tags as delimiters) by form
    "보다": "cmp",
    "에게": "dat",
    "께": "dat",
    "한테": "dat",
    "더러": "dat",
    "에": "at",
    "에서": "from",
    "에게서": "from",
    "한테서": "from",
    "부터": "since",
    "까지": "until",
    "으로": "by",
    "로": "by",
    "으로서": "as",
    "로서": "as",
    "으로써": "by",
    "로써": "by",
    "와": "with",
    "과": "with",
    "하고": "with",
    "랑": "with",
    "이랑": "with",
    "처럼": "like",
    "같이": "like",
    "마다": "every",
    "대로": "per",
    "만큼": "cmp",
}
_TOPIC_FORMS = frozenset({"은", "는", "도", "만", "ᆫ", "이나", "나"})  # JX that replace 이/가/을/를 without marking case
_NOMINAL_TAGS = frozenset({"NNG", "NNP", "NNB", "NP", "NR", "SN", "SL", "SH", "XPN", "XSN"})
# Question words are the question's gap, not an argument ("누가" has no filler to compare); a unit noun right after
# 몇 goes with it (몇 년, 몇 명, 몇 살).
_WH_FORMS = frozenset({"누구", "무엇", "뭐", "언제", "어디", "몇", "얼마", "얼마나", "무슨", "어떤", "어느", "왜"})
# Bound nouns of modality and generic frame nouns: part of how a question is asked, not of what it asks.
_FILLER_FORMS = frozenset({"수", "것", "거", "헌법", "조항", "규정", "내용", "때", "경우", "중", "등"})
# Negators: 않다/못하다 (auxiliary), 못/안 (adverbs), 없다, 아니다, 말다 (-지 마).
_NEGATORS = {
    ("않", "VX"),
    ("못하", "VX"),
    ("못", "MAG"),
    ("안", "MAG"),
    ("없", "VA"),
    ("없", "VV"),
    ("아니", "VCN"),
    ("말", "VX"),
}
# Light verbs carry no content of their own (되다 in "얼마나 되나요", 있다/없다: polarity is counted separately).
_LIGHT_VERBS = frozenset({"하", "되", "있", "없", "이", "같", "않", "말"})
# Roles a topic phrase (은/는) can stand for when the sentence already has a subject: the object ("계엄은 누가
# 선포하나") or a possessor ("대통령은 임기가 …", merged below).
_TOPIC_COMPATIBLE = frozenset({"obj", "top"})


@dataclass(frozen=True)
class QuestionFrame:
    """What the guard compares: argument phrases with their roles, polarity and numbers."""

    args: tuple[tuple[str, str | None], ...]  # (noun phrase, role); role None = no particle (matches any role)
    negated: bool
    numbers: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"args": self.args, "negated": self.negated, "numbers": self.numbers}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> QuestionFrame:
        d = json.loads(text)
        return cls(tuple((k, r) for k, r in d["args"]), bool(d["negated"]), tuple(d["numbers"]))


def _tokens(text: str):
    from engine.retrieval.tokenizers import _kiwi_lock, kiwi

    with _kiwi_lock:  # one Kiwi instance is shared by every Streamlit session (not documented as thread-safe)
        return kiwi().tokenize(text)


@lru_cache(maxsize=4096)
def question_frame(text: str) -> QuestionFrame:
    """Kiwi morphemes → noun phrases with the role of the particle after them, polarity, numbers."""
    toks = [(t.form, t.tag.split("-")[0]) for t in _tokens(normalize_question(text))]
    negations = sum((f, tag) in _NEGATORS for f, tag in toks)
    numbers = tuple(sorted(f for f, tag in toks if tag == "SN"))
    phrases: list[list] = []  # [key, role, wh] per noun phrase, in order
    i, n = 0, len(toks)
    has_subject = any(tag == "JKS" for _, tag in toks)
    while i < n:
        form, tag = toks[i]
        if not _nominal(form, tag):
            if tag in ("VV", "VA") and form not in _LIGHT_VERBS:
                phrases.append([[form], "pred", False])  # the predicate is part of the structure: 크다 ≠ 작다
            i += 1
            continue
        parts, wh = [], False
        while i < n:  # one phrase: nouns, numbers, prefixes/suffixes, joined by 의
            form, tag = toks[i]
            if _nominal(form, tag):
                if form in _WH_FORMS:
                    wh = True
                elif not (wh and tag == "NNB"):  # the unit after 몇 belongs to the question word
                    parts.append(form)
                i += 1
            elif tag == "JKG" and i + 1 < n and _nominal(*toks[i + 1]):
                i += 1
            else:
                break
        role = _role_after(toks, i)
        phrases.append([parts, role, wh])
    # A conjunct (A와 B가) shares the role of the phrase it joins.
    for j in range(len(phrases) - 2, -1, -1):
        if phrases[j][1] == "and":
            phrases[j][1] = phrases[j + 1][1]
    # 은/는: the subject when the sentence has no 이/가; else the object or a possessor.
    for p in phrases:
        if p[1] == "topic":
            p[1] = "top" if has_subject else "subj"
    # Double subject: "대통령은 임기가 몇 년인가" (possessor topic + subject) is "대통령의 임기가 …". Korean builds
    # it with descriptive predicates only (이다, adjectives); with an action verb the topic is the fronted object
    # ("국군은 대통령이 통수하나" = "대통령이 국군을 통수하나").
    descriptive = not any(tag in ("VV", "XSV") for _, tag in toks)
    merged: list[list] = []
    for p in phrases:
        if descriptive and merged and merged[-1][1] == "top" and p[1] == "subj" and not p[2] and not merged[-1][2]:
            merged[-1] = [merged[-1][0] + p[0], "subj", False]
        else:
            merged.append(p)
    args = []
    for parts, role, _ in merged:
        key = "".join(x for x in parts if x not in _FILLER_FORMS) if len(parts) == 1 else "".join(parts)
        if key and role != "and":
            args.append((key, role))
    return QuestionFrame(tuple(sorted(args, key=lambda a: (a[0], a[1] or ""))), negations % 2 == 1, numbers)


def _nominal(form: str, tag: str) -> bool:
    """Part of a noun phrase; a determiner question word (몇 명, 무슨 내용) counts, so its unit goes with it."""
    return tag in _NOMINAL_TAGS or (tag == "MM" and form in _WH_FORMS)


def _role_after(toks: list[tuple[str, str]], i: int) -> str | None:
    """The role marked right after a noun phrase ending before token i."""
    if i >= len(toks):
        return None
    form, tag = toks[i]
    if tag in _CASE_ROLES:
        return _CASE_ROLES[tag]
    if tag == "JKB":
        return _ADVERBIAL_ROLES.get(form, form)
    if tag == "JC":
        return "and"
    if tag == "JX":
        return "topic" if form in _TOPIC_FORMS else _ADVERBIAL_ROLES.get(form, form)
    if tag == "VCP":
        return "compl"  # "…은 대통령인가요": the copula's complement is an argument too
    if tag in ("XSV", "XSA"):
        return "pred"  # 탄핵하다: the noun is the predicate
    return None


def _compatible(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return True
    return (a == "top" and b in _TOPIC_COMPATIBLE) or (b == "top" and a in _TOPIC_COMPATIBLE)


def compare_frames(a: QuestionFrame, b: QuestionFrame) -> GuardVerdict:
    """Same arguments in compatible roles (a perfect matching of the two multisets), same polarity, same numbers."""
    if a.negated != b.negated:
        return GuardVerdict(False, "negation", f"negated: {a.negated} vs {b.negated}")
    if a.numbers != b.numbers:
        return GuardVerdict(False, "numbers", f"{list(a.numbers)} vs {list(b.numbers)}")
    left, right = Counter(k for k, _ in a.args), Counter(k for k, _ in b.args)
    if left != right:
        only = sorted((left - right) + (right - left))
        return GuardVerdict(False, "arguments", "only in one: " + ", ".join(only))
    for key in left:
        ra = sorted((r for k, r in a.args if k == key), key=lambda r: r is None)
        rb = [r for k, r in b.args if k == key]
        if not _match_roles(ra, rb):
            return GuardVerdict(False, "roles", f"{key}: {'/'.join(map(str, ra))} vs {'/'.join(map(str, rb))}")
    return GuardVerdict(True, "same", "")


def _match_roles(ra: list, rb: list) -> bool:
    """Can each role in `ra` be paired with a distinct compatible role in `rb`? (Lists are tiny: backtracking.)"""
    if not ra:
        return not rb
    first, rest = ra[0], ra[1:]
    return any(_compatible(first, r) and _match_roles(rest, rb[:j] + rb[j + 1 :]) for j, r in enumerate(rb))


def guard_check(question_a: str, question_b: str) -> GuardVerdict:
    """The guard on two questions (what the page shows for a pair the learner types)."""
    return compare_frames(question_frame(question_a), question_frame(question_b))


# -- the default embedder ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The Korean morpheme encoder of the Constitution index (≈ 0.3 ms per question; trained once, ~1 min, if
    the index was never built on this machine). Only the encoder is loaded, not the whole search index."""
    from engine.core.corpus import load_constitution
    from engine.retrieval.korean_dense import load_or_train

    encoder = load_or_train(load_constitution())
    return encoder.encode


def unit_embeddings(embed: Embedder, texts: list[str]) -> np.ndarray:
    """float32 rows of unit length (an embedder that forgets to normalize still gives cosines)."""
    out = np.asarray(embed(texts), dtype=np.float32).reshape(len(texts), -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


# -- the cache --------------------------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    norm TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    sources TEXT NOT NULL,
    embedding BLOB NOT NULL,
    frame TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (scope, norm)
);
CREATE INDEX IF NOT EXISTS entries_scope ON entries (scope, id);
"""


def default_path() -> Path:
    return get_settings().cache_dir / "rag" / "llm_cache.sqlite"


@dataclass
class _ScopeVectors:
    """A scope's cached question embeddings, kept in memory until the table changes."""

    version: tuple[int, int]  # (count, max id) when loaded
    ids: list[int] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


class LLMCache:
    """Exact + semantic answer cache in one SQLite file (see the module docstring).

    Thread-safe (one connection per instance behind a lock; several instances or processes on the same file are
    serialized by SQLite's WAL locking with a 5 s busy timeout).
    """

    def __init__(
        self,
        path: Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        embed: Embedder | None = None,
        guard: bool = True,
    ):
        self.path = Path(path) if path is not None else default_path()
        self.threshold = _check_threshold(threshold)
        self.guard = guard
        self._embed = embed
        self._lock = threading.RLock()
        self._vectors: dict[str, _ScopeVectors] = {}
        self._counts = Counter()
        self.warning: str | None = None  # the last problem's code (corrupt file reset, unwritable, busy)
        self._conn = self._open()

    # -- connection and recovery --------------------------------------------------------------------------------
    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        if target != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses at most the last commit
        conn.executescript(_SCHEMA)
        if target != ":memory:" and conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            conn.close()
            raise sqlite3.DatabaseError("quick_check failed")
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            self.warning = "rag.cache.unwritable"
            return self._connect(":memory:")
        try:
            return self._connect(str(self.path))
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise  # another writer holds the file for > 5 s: not corruption, do not move it aside
            self.warning = "rag.cache.unwritable"
            return self._connect(":memory:")
        except sqlite3.DatabaseError:
            return self._reset()

    def _reset(self) -> sqlite3.Connection:
        """Move a corrupted file (and its -wal/-shm) aside and start a fresh one."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                try:
                    src.replace(Path(f"{self.path}.corrupt-{stamp}{suffix}"))
                except OSError:
                    src.unlink(missing_ok=True)
        self.warning = "rag.cache.corrupt_reset"
        self._vectors.clear()
        try:
            return self._connect(str(self.path))
        except sqlite3.DatabaseError:
            self.warning = "rag.cache.unwritable"
            return self._connect(":memory:")

    def _run(self, work: Callable[[sqlite3.Connection], object], default):
        """Run `work` on the connection; a corrupted file is reset (and `work` retried once), a busy one skipped."""
        with self._lock:
            for attempt in range(2):
                try:
                    return work(self._conn)
                except sqlite3.OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        self.warning = "rag.cache.busy"
                        return default
                    if attempt or "readonly" in str(exc):
                        self.warning = "rag.cache.unwritable"
                        return default
                    self._conn = self._reset_connection()
                except sqlite3.DatabaseError:
                    if attempt:
                        return default
                    self._conn = self._reset_connection()
            return default

    def _reset_connection(self) -> sqlite3.Connection:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()  # a broken file may fail to close cleanly; it is moved aside next
        return self._reset()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- embedding ----------------------------------------------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embed is None:
            self._embed = default_embedder()
        return unit_embeddings(self._embed, texts)

    # -- the public operations ----------------------------------------------------------------------------------
    def lookup(self, question: str, scope: str, semantic: bool = True) -> CacheHit | None:
        return self.inspect(question, scope, semantic).hit

    def inspect(
        self,
        question: str,
        scope: str,
        semantic: bool = True,
        threshold: float | None = None,
        guard: bool | None = None,
    ) -> CacheVerdict:
        """A lookup that also says why it missed (best similarity, the guard's verdict on the nearest question)."""
        start = time.perf_counter()
        threshold = self.threshold if threshold is None else _check_threshold(threshold)
        guard = self.guard if guard is None else guard
        norm = normalize_question(question)
        warning_before = self.warning

        def miss(reason, sim=None, nearest=None, verdict=None) -> CacheVerdict:
            self._counts["misses"] += 1
            self._counts["guard_blocks"] += reason == "guard"
            warn = self.warning if self.warning != warning_before else None
            return CacheVerdict(
                "miss", None, sim, nearest, verdict, reason, threshold, time.perf_counter() - start, warn
            )

        if not norm:
            return miss("empty_scope")
        row = self._run(
            lambda c: c.execute(
                "SELECT question, answer, sources FROM entries WHERE scope = ? AND norm = ?", (scope, norm)
            ).fetchone(),
            None,
        )
        if row is not None:
            elapsed = time.perf_counter() - start
            hit = CacheHit("exact", row[0], row[1], json.loads(row[2]), 1.0, elapsed)
            self._counts["exact_hits"] += 1
            return CacheVerdict("exact", hit, 1.0, row[0], None, "exact", threshold, elapsed)
        if not semantic:
            return miss("semantic_off")
        vectors = self._scope_vectors(scope)
        if vectors is None or not vectors.ids:
            return miss("error" if self.warning != warning_before else "empty_scope")
        query = self.embed([question])[0]
        if query.shape[0] != vectors.matrix.shape[1]:
            return miss("empty_scope")  # cached under another embedder: not comparable
        sims = vectors.matrix @ query
        order = np.argsort(-sims)[:MAX_CANDIDATES]
        best_id, best_sim = vectors.ids[order[0]], float(sims[order[0]])
        above = [(vectors.ids[j], float(sims[j])) for j in order if sims[j] >= threshold]
        if not above:
            nearest = self._question(best_id)
            return miss("below_threshold", best_sim, nearest)
        frame = question_frame(question) if guard else None
        first_verdict = None
        rows = self._rows([i for i, _ in above])
        for entry_id, sim in above:
            r = rows.get(entry_id)
            if r is None:
                continue
            verdict = compare_frames(frame, QuestionFrame.from_json(r[3])) if guard else None
            if verdict is None or verdict.passed:
                elapsed = time.perf_counter() - start
                hit = CacheHit("semantic", r[0], r[1], json.loads(r[2]), sim, elapsed, verdict)
                self._counts["semantic_hits"] += 1
                return CacheVerdict("semantic", hit, sim, r[0], verdict, "semantic", threshold, elapsed)
            first_verdict = first_verdict or (r[0], sim, verdict)
        if first_verdict is None:
            return miss("below_threshold", best_sim, None)
        return miss("guard", first_verdict[1], first_verdict[0], first_verdict[2])

    def store(self, question: str, scope: str, answer: str, sources: list[str]) -> None:
        """Insert or replace the answer for this question in this scope (one transaction)."""
        norm = normalize_question(question)
        if not norm:
            return
        vector = self.embed([question])[0].astype(np.float32)
        frame = question_frame(question).to_json()
        payload = (scope, norm, question, answer, json.dumps(list(sources), ensure_ascii=False))

        def work(c: sqlite3.Connection):
            with c:  # one transaction: the row lands whole or not at all
                c.execute(
                    "INSERT INTO entries (scope, norm, question, answer, sources, embedding, frame, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (scope, norm) DO UPDATE SET question = excluded.question,"
                    " answer = excluded.answer, sources = excluded.sources, embedding = excluded.embedding,"
                    " frame = excluded.frame, created = excluded.created",
                    (*payload, vector.tobytes(), frame, time.time()),
                )
            return True

        if self._run(work, False):
            self._counts["stores"] += 1
            self._vectors.pop(scope, None)

    def clear(self, scope: str | None = None) -> int:
        """Delete one scope's entries (or all); returns how many."""

        def work(c: sqlite3.Connection) -> int:
            with c:
                if scope is None:
                    return c.execute("DELETE FROM entries").rowcount
                return c.execute("DELETE FROM entries WHERE scope = ?", (scope,)).rowcount

        removed = self._run(work, 0)
        with self._lock:
            self._vectors.clear()
        return int(removed)

    def stats(self) -> CacheStats:
        entries, scopes = self._run(
            lambda c: c.execute("SELECT count(*), count(DISTINCT scope) FROM entries").fetchone(), (0, 0)
        )
        try:
            size = sum(Path(f"{self.path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{self.path}{s}").exists())
        except OSError:
            size = 0
        return CacheStats(
            str(self.path),
            int(entries),
            int(scopes),
            self._counts["exact_hits"],
            self._counts["semantic_hits"],
            self._counts["misses"],
            self._counts["guard_blocks"],
            self._counts["stores"],
            size,
            self.warning,
        )

    # -- helpers ------------------------------------------------------------------------------------------------
    def _scope_vectors(self, scope: str) -> _ScopeVectors | None:
        """The scope's embeddings, reloaded only when its row count or newest id changed (another instance or
        process may have written)."""
        version = self._run(
            lambda c: c.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM entries WHERE scope = ?", (scope,)
            ).fetchone(),
            None,
        )
        if version is None:
            return None
        version = (int(version[0]), int(version[1]))
        with self._lock:
            cached = self._vectors.get(scope)
            if cached is not None and cached.version == version:
                return cached
        rows = self._run(
            lambda c: c.execute("SELECT id, embedding FROM entries WHERE scope = ? ORDER BY id", (scope,)).fetchall(),
            None,
        )
        if rows is None:
            return None
        vectors = [np.frombuffer(blob, dtype=np.float32) for _, blob in rows]
        dims = Counter(v.shape[0] for v in vectors)
        dim = dims.most_common(1)[0][0] if dims else 0
        keep = [(i, v) for (i, _), v in zip(rows, vectors, strict=True) if v.shape[0] == dim]
        loaded = _ScopeVectors(
            version, [i for i, _ in keep], np.stack([v for _, v in keep]) if keep else np.zeros((0, dim), np.float32)
        )
        with self._lock:
            self._vectors[scope] = loaded
        return loaded

    def _rows(self, ids: Sequence[int]) -> dict[int, tuple]:
        marks = ",".join("?" * len(ids))
        rows = self._run(
            lambda c: c.execute(
                f"SELECT id, question, answer, sources, frame FROM entries WHERE id IN ({marks})", list(ids)
            ).fetchall(),
            [],
        )
        return {r[0]: r[1:] for r in rows}

    def _question(self, entry_id: int) -> str | None:
        row = self._run(lambda c: c.execute("SELECT question FROM entries WHERE id = ?", (entry_id,)).fetchone(), None)
        return row[0] if row else None


def _check_threshold(threshold: float) -> float:
    low, high = 0.5, 1.0
    if not isinstance(threshold, (int, float)) or not low <= float(threshold) <= high:
        raise InputError("rag.cache.bad_threshold", value=threshold, low=low, high=high)
    return float(threshold)


# -- the labelled pairs and the false-hit study -------------------------------------------------------------------
@dataclass(frozen=True)
class CachePair:
    a: str  # the cached question
    b: str  # the new question
    label: str  # "paraphrase" (should hit) or "different" (a hit is a false hit)
    kind: str  # what changed (see the YAML's header)


@dataclass(frozen=True)
class PairResult:
    pair: CachePair
    similarity: float  # cosine of the two embeddings
    guard: GuardVerdict


@dataclass(frozen=True)
class CacheMetrics:
    threshold: float
    guard: bool
    paraphrase_hit_rate: float  # paraphrases served from the cache (higher is better)
    false_hit_rate: float  # changed-meaning pairs served from the cache (lower is better)
    n_paraphrase: int
    n_different: int
    false_hits: list[str] = field(default_factory=list)  # "a | b" of each false hit


def load_cache_pairs(path: Path | str | None = None) -> list[CachePair]:
    raw = yaml.safe_load(Path(path or CACHE_PAIRS).read_text(encoding="utf-8")) or {}
    return [CachePair(str(p["a"]), str(p["b"]), str(p["label"]), str(p.get("kind", ""))) for p in raw["pairs"]]


def score_pairs(pairs: Iterable[CachePair] | None = None, embed: Embedder | None = None) -> list[PairResult]:
    """Cosine and guard verdict per pair (what the cache computes on a lookup of b after a store of a)."""
    pairs = list(pairs) if pairs is not None else load_cache_pairs()
    embed = embed or default_embedder()
    a = unit_embeddings(embed, [p.a for p in pairs])
    b = unit_embeddings(embed, [p.b for p in pairs])
    sims = np.sum(a * b, axis=1)
    return [PairResult(p, float(s), guard_check(p.a, p.b)) for p, s in zip(pairs, sims, strict=True)]


def _metrics(results: list[PairResult], threshold: float, guard: bool) -> CacheMetrics:
    def hit(r: PairResult) -> bool:
        return r.similarity >= threshold and (not guard or r.guard.passed)

    para = [r for r in results if r.pair.label == "paraphrase"]
    diff = [r for r in results if r.pair.label != "paraphrase"]
    false = [f"{r.pair.a} | {r.pair.b}" for r in diff if hit(r)]
    return CacheMetrics(
        threshold,
        guard,
        sum(map(hit, para)) / max(len(para), 1),
        len(false) / max(len(diff), 1),
        len(para),
        len(diff),
        false,
    )


def evaluate_cache(
    pairs: Iterable[CachePair] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    guard: bool = True,
    embed: Embedder | None = None,
) -> CacheMetrics:
    """Paraphrase hit rate and false-hit rate at one threshold, with or without the guard."""
    return _metrics(score_pairs(pairs, embed), _check_threshold(threshold), guard)


def threshold_sweep(
    pairs: Iterable[CachePair] | None = None,
    thresholds: Sequence[float] = SWEEP_THRESHOLDS,
    embed: Embedder | None = None,
) -> list[CacheMetrics]:
    """`evaluate_cache` at every threshold, guard on and off (the page's curve); embeddings computed once."""
    results = score_pairs(pairs, embed)
    return [_metrics(results, _check_threshold(t), g) for g in (True, False) for t in thresholds]
