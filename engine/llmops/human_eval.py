"""Human evaluation: pairwise (A / B / tie) and Likert (1-5) labels stored per learner, and how far raters agree.

The items — `assets/llmops/pairs.jsonl`, read with `load_pairs()`:

    # comment lines start with '#': the header says how the answers were made and who wrote the labels
    {"pair_id": "p001", "question": "...", "answer_a": "...", "answer_b": "...", "reference": "A",
     "design": "correct_vs_wrong", "gold": ["제68조"], "phrases": ["60일"],
     "source_a": "instruct+article", "source_b": "instruct closed-book", "correct_a": true, "correct_b": false,
     "chars_a": 41, "chars_b": 118, "note": "why the reference label"}

One JSON object per line (UTF-8). `reference` is "A", "B" or "tie": a label written by the developers (not by a
learner, not by a model) after reading both answers against the gold article. `design` says what the pair
isolates (the judge's length bias is measured on these; see DESIGNS). Answers come from the held-out Constitution
questions of chapter 9 (engine/rag/heldout.py): the local `instruct` model with the gold article in its prompt,
the same model without it (closed-book), and short or padded variants; each one's `source_*` says which.
`correct_*` is the developers' verdict on that one answer. Likert items are the answers themselves:
`"<pair_id>/A"` and `"<pair_id>/B"` (`likert_items()`).

The labels: `<LLMLAB_CACHE>/llmops/labels.sqlite` (`LabelStore`), a real SQLite file shared by every learner on
the machine:

    learners(learner TEXT PRIMARY KEY, created TEXT)
    labels(id INTEGER PRIMARY KEY AUTOINCREMENT, learner TEXT, item_id TEXT, kind TEXT, label TEXT, created TEXT)

`kind` is "pairwise" (label "A", "B" or "tie") or "likert" (label "1" … "5"); `created` is ISO-8601 UTC. Nothing
is overwritten: a learner who changes their mind adds a row, and the latest row per (learner, item, kind) is their
label. Many learners may write at once: the file is in WAL mode (readers never block the writer), each label is
one `BEGIN IMMEDIATE … COMMIT` transaction, and a writer waits up to `BUSY_TIMEOUT_S` for the lock before giving
up with `llmops.labels.busy` (nothing half-written). A file that is not an SQLite database, or fails SQLite's
`quick_check`, raises `llmops.labels.corrupt` and is never touched (not moved, not rewritten): the labels in it
may still be recoverable by hand (`sqlite3 labels.sqlite .recover`).

Agreement (book 13.3): Cohen's kappa for two raters and Fleiss' kappa for many, both `(p_o − p_e) / (1 − p_e)`:
observed agreement corrected for the agreement expected by chance from each rater's label frequencies (Cohen) or
from the pooled frequencies (Fleiss). Cohen's kappa here is the same computation as scikit-learn's
`cohen_kappa_score` (weights None, "linear" or "quadratic" for the ordered Likert scale, with all five
categories given so a distance of 1→3 is 2 even if nobody chose 2); Fleiss' kappa the same as statsmodels'
`fleiss_kappa(table, method="fleiss")` (tests/engine/test_llmops_human_eval.py checks both). When every label is
the same single class, chance agreement is 1 and kappa is 0/0: the result then has `value = None` and the code
`llmops.kappa.one_class` (a page says so; never NaN).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.assets import asset
from engine.core.config import get_settings
from engine.core.errors import UserError
from engine.core.textinput import InputError

PAIRS_FILE = asset("llmops", "pairs.jsonl")
KINDS = ("pairwise", "likert")
PAIRWISE_LABELS = ("A", "B", "tie")
LIKERT_LABELS = ("1", "2", "3", "4", "5")
WEIGHTS = (None, "linear", "quadratic")
# What each pair isolates. correct_vs_wrong: one answer states the gold fact, the other does not, at similar
# lengths. short_right_long_wrong / long_right_short_wrong: correctness against length. padded: the same correct
# answer, once plain and once with filler that adds nothing (reference "tie"): a judge that prefers the padded one
# is rewarding length alone. both_wrong: neither states the fact (reference "tie" unless one is less wrong).
DESIGNS = ("correct_vs_wrong", "short_right_long_wrong", "long_right_short_wrong", "padded", "both_right", "both_wrong")
BUSY_TIMEOUT_S = 10.0
MAX_LEARNER_CHARS = 40
_LEARNER = re.compile(r"^[^\x00-\x1f\x7f]{1,40}$")


# ---------------------------------------------------------------------------------------------------------------
# the items


@dataclass(frozen=True)
class PairItem:
    pair_id: str
    question: str
    answer_a: str
    answer_b: str
    reference: str  # "A", "B" or "tie": written by the developers
    design: str  # one of DESIGNS
    gold: tuple[str, ...] = ()  # gold article ids
    phrases: tuple[str, ...] = ()  # accepted gold phrases
    source_a: str = ""
    source_b: str = ""
    correct_a: bool | None = None
    correct_b: bool | None = None
    note: str = ""

    @property
    def chars_a(self) -> int:
        return len(self.answer_a)

    @property
    def chars_b(self) -> int:
        return len(self.answer_b)

    @property
    def longer(self) -> str:
        """The longer answer by characters: "A", "B" or "same"."""
        return "A" if self.chars_a > self.chars_b else "B" if self.chars_b > self.chars_a else "same"

    def to_json(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "question": self.question,
            "answer_a": self.answer_a,
            "answer_b": self.answer_b,
            "reference": self.reference,
            "design": self.design,
            "gold": list(self.gold),
            "phrases": list(self.phrases),
            "source_a": self.source_a,
            "source_b": self.source_b,
            "correct_a": self.correct_a,
            "correct_b": self.correct_b,
            "chars_a": self.chars_a,
            "chars_b": self.chars_b,
            "note": self.note,
        }


@dataclass(frozen=True)
class LikertItem:
    item_id: str  # "<pair_id>/A"
    pair_id: str
    side: str  # "A" or "B"
    question: str
    answer: str
    source: str
    correct: bool | None


def _pair(obj: Any, line_no: int, path: Path) -> PairItem:
    try:
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        item = PairItem(
            pair_id=str(obj["pair_id"]),
            question=str(obj["question"]),
            answer_a=str(obj["answer_a"]),
            answer_b=str(obj["answer_b"]),
            reference=str(obj["reference"]),
            design=str(obj.get("design", "")),
            gold=tuple(str(g) for g in obj.get("gold") or ()),
            phrases=tuple(str(p) for p in obj.get("phrases") or ()),
            source_a=str(obj.get("source_a", "")),
            source_b=str(obj.get("source_b", "")),
            correct_a=obj.get("correct_a"),
            correct_b=obj.get("correct_b"),
            note=str(obj.get("note", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("llmops.pairs.bad_line", path=str(path), line=line_no, reason=str(exc)[:200]) from exc
    if item.reference not in PAIRWISE_LABELS or not item.question.strip() or "/" in item.pair_id:
        raise InputError("llmops.pairs.bad_line", path=str(path), line=line_no, reason="reference/question/pair_id")
    return item


def load_pairs(path: Path | str | None = None) -> list[PairItem]:
    """The pairwise items (`assets/llmops/pairs.jsonl` by default): '#' lines are comments."""
    path = Path(path or PAIRS_FILE)
    return list(_load_pairs(str(path), path.stat().st_mtime_ns if path.exists() else 0))


@lru_cache(maxsize=4)
def _load_pairs(path_text: str, _mtime: int) -> tuple[PairItem, ...]:
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("llmops.pairs.bad_line", path=path_text, line=0, reason=str(exc)[:200]) from exc
    items: list[PairItem] = []
    seen: set[str] = set()
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InputError("llmops.pairs.bad_line", path=path_text, line=no, reason=str(exc)[:200]) from exc
        item = _pair(obj, no, path)
        if item.pair_id in seen:
            raise InputError("llmops.pairs.bad_line", path=path_text, line=no, reason=f"duplicate {item.pair_id}")
        seen.add(item.pair_id)
        items.append(item)
    return tuple(items)


def likert_items(pairs: Sequence[PairItem] | None = None) -> list[LikertItem]:
    """Each answer of each pair, to rate on its own (1 = wrong or useless … 5 = correct, complete and concise)."""
    out = []
    for p in pairs if pairs is not None else load_pairs():
        out.append(LikertItem(f"{p.pair_id}/A", p.pair_id, "A", p.question, p.answer_a, p.source_a, p.correct_a))
        out.append(LikertItem(f"{p.pair_id}/B", p.pair_id, "B", p.question, p.answer_b, p.source_b, p.correct_b))
    return out


def item_ids(kind: str, pairs: Sequence[PairItem] | None = None) -> list[str]:
    _check_kind(kind)
    pairs = pairs if pairs is not None else load_pairs()
    if kind == "pairwise":
        return [p.pair_id for p in pairs]
    return [i.item_id for i in likert_items(pairs)]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError("input.unknown_choice", name="kind", value=kind, choices=", ".join(KINDS))
    return kind


def check_label(kind: str, label: Any) -> str:
    """The stored form of a label: "A"/"B"/"tie" (pairwise; "a", "b", "TIE" accepted), "1".."5" (likert)."""
    _check_kind(kind)
    if kind == "pairwise":
        text = str(label).strip() if isinstance(label, str) else None
        norm = {"a": "A", "b": "B", "tie": "tie"}.get((text or "").lower())
        if norm is None:
            raise InputError(
                "llmops.labels.bad_label", kind=kind, value=str(label)[:40], choices=", ".join(PAIRWISE_LABELS)
            )
        return norm
    value: int | None = None
    if isinstance(label, bool):
        value = None
    elif isinstance(label, int):
        value = label
    elif isinstance(label, float) and label.is_integer():
        value = int(label)
    elif isinstance(label, str) and label.strip().isdigit():
        value = int(label.strip())
    if value is None or not 1 <= value <= 5:
        raise InputError("llmops.labels.bad_label", kind=kind, value=str(label)[:40], choices="1, 2, 3, 4, 5")
    return str(value)


def check_learner(learner: Any) -> str:
    text = learner.strip() if isinstance(learner, str) else ""
    if not _LEARNER.match(text):
        raise InputError("llmops.labels.bad_learner", value=str(learner)[:60], limit=MAX_LEARNER_CHARS)
    return text


# How the shipped answers were drafted (run once; the pairs and their reference labels were then put together and
# written by hand): the chapter 9 prompt with the gold article(s), the same asking for a fuller answer, and no
# article at all (closed-book), each a greedy call of the local `instruct` model.
DRAFT_STYLES = {
    "rag": "한 문장으로 답하고 문장 끝에 근거 문서의 대괄호 표시를 붙이세요.",
    "rag-long": "서너 문장으로 자세히 설명하고, 근거 문서의 대괄호 표시를 붙이세요.",
    "closed": "",
}


def draft_answers(questions: Sequence[Any] | None = None, role: str = "instruct", max_tokens: int = 200) -> list[dict]:
    """Candidate answers per held-out question (engine.rag.heldout) from the local model: styles DRAFT_STYLES.
    Starts the model server of `role` (use your own LLMLAB_CACHE) and stops it at the end."""
    from engine.core.corpus import load_constitution
    from engine.rag.heldout import load_heldout
    from engine.rag.prompts import EXAMPLE, REFUSAL, SYSTEM
    from engine.serving.client import chat
    from engine.serving.llama_server import stop_server

    rows = list(questions) if questions is not None else load_heldout()
    articles = {d.doc_id: d.text for d in load_constitution()}
    system = SYSTEM["ko"].format(refusal=REFUSAL["ko"])
    out = []
    try:
        for row in rows:
            context = "\n\n".join(f"[{g}] {' '.join(articles[g].split())}" for g in row.gold)
            answers = {}
            for style, ask in DRAFT_STYLES.items():
                if style == "closed":
                    messages = [{"role": "user", "content": f"질문: {row.question}\n한국어로 답하세요."}]
                else:
                    ex_docs, ex_q, ex_a = EXAMPLE["ko"]
                    messages = [
                        {"role": "system", "content": f"{system} {ask}"},
                        {"role": "user", "content": f"문서:\n{ex_docs}\n\n질문: {ex_q}"},
                        {"role": "assistant", "content": ex_a},
                        {"role": "user", "content": f"문서:\n{context}\n\n질문: {row.question}"},
                    ]
                text = chat(messages, max_tokens=max_tokens, temperature=0.0, seed=0, role=role)
                answers[style] = " ".join(text.split())
            out.append({"question": row.question, "gold": list(row.gold), "phrases": list(row.phrases), **answers})
    finally:
        stop_server(role)
    return out


# ---------------------------------------------------------------------------------------------------------------
# the store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS learners (
    learner TEXT PRIMARY KEY,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    learner TEXT NOT NULL REFERENCES learners (learner),
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pairwise', 'likert')),
    label TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_by_item ON labels (kind, item_id, learner);
"""


def default_path() -> Path:
    return get_settings().cache_dir / "llmops" / "labels.sqlite"


def labels_exist(path: Path | str | None = None) -> bool:
    """Whether the labels file is there (checking creates nothing; opening a LabelStore creates the file)."""
    return Path(path).is_file() if path is not None else default_path().is_file()


@dataclass(frozen=True)
class LabelRow:
    learner: str
    item_id: str
    kind: str
    label: str
    created: datetime  # UTC
    row_id: int = 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class LabelStore:
    """Labels per learner in one SQLite file (safe for many writers: WAL, one transaction per label)."""

    def __init__(self, path: Path | str | None = None, pairs: Sequence[PairItem] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._pairs = list(pairs) if pairs is not None else None
        self._lock = threading.Lock()
        self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------------------------
    def _corrupt(self, reason: str) -> UserError:
        return UserError("llmops.labels.corrupt", path=str(self.path), reason=reason[:200])

    def _open(self) -> sqlite3.Connection:
        # The file is never opened here other than by SQLite: closing any other descriptor of it would drop this
        # process's POSIX locks on it (SQLite's "howtocorrupt" §2.2) while another LabelStore in the process holds
        # them, and a writer in another process could then overwrite committed labels. A file that is not a
        # database fails SQLite's own header check at the first statement, before anything is written.
        if self.path.exists():
            if self.path.is_dir():
                raise self._corrupt("a folder, not a file")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError("llmops.labels.unwritable", path=str(self.path), reason=str(exc)[:200]) from exc
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise UserError("llmops.labels.unwritable", path=str(self.path), reason=str(exc)[:200]) from exc
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise self._corrupt(str(check[0] if check else "quick_check gave nothing"))
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                raise UserError("llmops.labels.unwritable", path=str(self.path), reason=f"journal mode {mode}")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a committed label survives a crash of the app
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(_SCHEMA)
        except UserError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            text = str(exc)
            if isinstance(exc, sqlite3.OperationalError) and ("readonly" in text or "unable to open" in text):
                raise UserError("llmops.labels.unwritable", path=str(self.path), reason=text[:200]) from exc
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
                raise UserError("llmops.labels.busy", path=str(self.path)) from exc
            raise self._corrupt(text) from exc
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (one transaction each) ------------------------------------------------------------------------
    def _write(self, sql: str, params: tuple) -> int:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._conn.execute(sql, params)
                    self._conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
                return int(cur.lastrowid or 0)
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if "locked" in text or "busy" in text:
                    raise UserError("llmops.labels.busy", path=str(self.path)) from exc
                if "readonly" in text:
                    raise UserError("llmops.labels.unwritable", path=str(self.path), reason=text[:200]) from exc
                raise self._corrupt(text) from exc
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(str(exc)) from exc

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise UserError("llmops.labels.busy", path=str(self.path)) from exc
                raise self._corrupt(str(exc)) from exc
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(str(exc)) from exc

    def add_learner(self, learner: str) -> str:
        """Register a learner (idempotent); returns the id as stored."""
        learner = check_learner(learner)
        self._write("INSERT OR IGNORE INTO learners (learner, created) VALUES (?, ?)", (learner, _now()))
        return learner

    def learners(self) -> list[str]:
        return [r[0] for r in self._read("SELECT learner FROM learners ORDER BY created, learner")]

    def _items(self, kind: str) -> set[str]:
        return set(item_ids(kind, self._pairs))

    def label(self, learner: str, item_id: str, kind: str, label: Any) -> LabelRow:
        """Store one label (its own transaction). Unknown learner or item, or a label out of range: a clear code,
        nothing written."""
        _check_kind(kind)
        value = check_label(kind, label)
        learner = check_learner(learner)
        if not self._read("SELECT 1 FROM learners WHERE learner = ?", (learner,)):
            raise InputError("llmops.labels.unknown_learner", learner=learner)
        item = str(item_id).strip() if isinstance(item_id, str) else ""
        if item not in self._items(kind):
            raise InputError("llmops.labels.unknown_item", item_id=str(item_id)[:60], kind=kind)
        created = _now()
        row_id = self._write(
            "INSERT INTO labels (learner, item_id, kind, label, created) VALUES (?, ?, ?, ?, ?)",
            (learner, item, kind, value, created),
        )
        return LabelRow(learner, item, kind, value, datetime.fromisoformat(created), row_id)

    # -- reading ---------------------------------------------------------------------------------------------
    def labels(self, kind: str | None = None, learner: str | None = None, history: bool = False) -> list[LabelRow]:
        """The labels (each learner's latest per item and kind; `history=True`: every row), oldest first."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(_check_kind(kind))
        if learner is not None:
            where.append("learner = ?")
            params.append(check_learner(learner))
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        if history:
            sql = f"SELECT id, learner, item_id, kind, label, created FROM labels {cond} ORDER BY id"
        else:
            sql = (
                "SELECT id, learner, item_id, kind, label, created FROM labels WHERE id IN "
                f"(SELECT MAX(id) FROM labels {cond} GROUP BY learner, item_id, kind) ORDER BY id"
            )
        rows = self._read(sql, tuple(params))
        return [LabelRow(r[1], r[2], r[3], r[4], datetime.fromisoformat(r[5]), int(r[0])) for r in rows]

    def unlabelled(self, learner: str, kind: str) -> list[str]:
        """The item ids of `kind` that `learner` has not labelled yet, in file order (what the page shows next)."""
        done = {r.item_id for r in self.labels(kind=kind, learner=learner)}
        return [i for i in item_ids(kind, self._pairs) if i not in done]

    def progress(self, learner: str) -> dict[str, int]:
        """Items labelled by `learner` per kind (latest labels), and how many there are."""
        mine = Counter(r.kind for r in self.labels(learner=learner))
        return {
            **{f"{k}_done": mine.get(k, 0) for k in KINDS},
            **{f"{k}_total": len(self._items(k)) for k in KINDS},
        }


# ---------------------------------------------------------------------------------------------------------------
# agreement


@dataclass(frozen=True)
class Kappa:
    """A kappa, or why there is none (`value` None and `code` set: never NaN)."""

    method: str  # "cohen", "cohen-linear", "cohen-quadratic", "fleiss"
    value: float | None
    observed: float | None  # raw agreement p_o (Cohen: share of items with the same label; Fleiss: P̄)
    expected: float | None  # chance agreement p_e
    n_items: int
    n_raters: int
    code: str | None = None  # llmops.kappa.one_class / llmops.kappa.too_few
    fmt: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def r(x):
            return None if x is None else round(x, 6)

        return {
            "method": self.method,
            "kappa": r(self.value),
            "observed": r(self.observed),
            "expected": r(self.expected),
            "items": self.n_items,
            "raters": self.n_raters,
            "code": self.code,
        }


def _categories(labels: Iterable[str], categories: Sequence[str] | None) -> list[str]:
    if categories is not None:
        return [str(c) for c in categories]
    return sorted({str(x) for x in labels})


def cohen_kappa(
    a: Sequence[Any], b: Sequence[Any], categories: Sequence[Any] | None = None, weights: str | None = None
) -> Kappa:
    """Cohen's kappa of two raters' labels of the same items (scikit-learn's `cohen_kappa_score` computation;
    `categories` fixes the order and the distance for weighted kappa)."""
    if weights not in WEIGHTS:
        raise InputError("input.unknown_choice", name="weights", value=weights, choices="none, linear, quadratic")
    method = "cohen" if weights is None else f"cohen-{weights}"
    if len(a) != len(b):
        raise InputError("llmops.kappa.unequal", left=len(a), right=len(b))
    a, b = [str(x) for x in a], [str(x) for x in b]
    if len(a) < 2:
        return Kappa(method, None, None, None, len(a), 2, "llmops.kappa.too_few", {"items": len(a), "need": 2})
    cats = _categories(a + b, categories)
    index = {c: i for i, c in enumerate(cats)}
    unknown = sorted({x for x in a + b if x not in index})
    if unknown:
        raise InputError("llmops.labels.bad_label", kind="kappa", value=unknown[0], choices=", ".join(cats))
    k = len(cats)
    confusion = np.zeros((k, k), dtype=np.float64)
    for x, y in zip(a, b, strict=True):
        confusion[index[x], index[y]] += 1
    n = confusion.sum()
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n
    if weights is None:
        w = np.ones((k, k)) - np.eye(k)
    else:
        grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(np.float64)
        w = grid if weights == "linear" else grid**2
    observed_disagreement = float((w * confusion).sum() / n)
    expected_disagreement = float((w * expected).sum() / n)
    p_o = float(np.trace(confusion) / n)
    p_e = float(np.trace(expected) / n)
    if expected_disagreement <= 1e-15:
        only = sorted(set(a + b))
        return Kappa(
            method, None, p_o, p_e, len(a), 2, "llmops.kappa.one_class", {"label": ", ".join(only), "agreement": p_o}
        )
    value = 1.0 - observed_disagreement / expected_disagreement
    return Kappa(method, float(value), p_o, p_e, len(a), 2)


def fleiss_table(ratings: Sequence[Sequence[Any]], categories: Sequence[Any] | None = None) -> tuple[np.ndarray, list]:
    """items × categories counts from each item's list of labels (one per rater)."""
    cats = _categories((str(x) for row in ratings for x in row), categories)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(ratings), len(cats)), dtype=np.int64)
    for i, row in enumerate(ratings):
        for x in row:
            if str(x) not in index:
                raise InputError("llmops.labels.bad_label", kind="kappa", value=str(x), choices=", ".join(cats))
            table[i, index[str(x)]] += 1
    return table, cats


def fleiss_kappa_table(table: np.ndarray) -> Kappa:
    """Fleiss' kappa from an items × categories count table with the same number of raters per item
    (statsmodels' `fleiss_kappa(table, method="fleiss")` computation)."""
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0:
        return Kappa("fleiss", None, None, None, 0, 0, "llmops.kappa.too_few", {"items": 0, "need": 1})
    per_item = table.sum(axis=1)
    n = float(per_item[0])
    if not np.allclose(per_item, n):
        raise InputError("llmops.kappa.unequal", left=int(per_item.min()), right=int(per_item.max()))
    items = table.shape[0]
    if n < 2:
        return Kappa("fleiss", None, None, None, items, int(n), "llmops.kappa.too_few", {"items": items, "need": 2})
    p_j = table.sum(axis=0) / (items * n)
    p_i = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = float(p_i.mean())
    p_e = float((p_j**2).sum())
    if p_e >= 1 - 1e-15:
        only = [str(j) for j in np.flatnonzero(p_j)]
        return Kappa(
            "fleiss",
            None,
            p_bar,
            p_e,
            items,
            int(n),
            "llmops.kappa.one_class",
            {"label": ", ".join(only), "agreement": p_bar},
        )
    return Kappa("fleiss", (p_bar - p_e) / (1 - p_e), p_bar, p_e, items, int(n))


def fleiss_kappa(ratings: Sequence[Sequence[Any]], categories: Sequence[Any] | None = None) -> Kappa:
    """Fleiss' kappa from each item's labels (every item rated by the same number of raters)."""
    table, cats = fleiss_table(ratings, categories)
    result = fleiss_kappa_table(table)
    if result.code == "llmops.kappa.one_class":
        used = [c for c, count in zip(cats, table.sum(axis=0), strict=True) if count]
        return Kappa(**{**result.__dict__, "fmt": {**result.fmt, "label": ", ".join(used)}})
    return result


@dataclass(frozen=True)
class RaterPair:
    rater_a: str
    rater_b: str
    kappa: Kappa


@dataclass(frozen=True)
class ReferenceAgreement:
    """A learner's pairwise labels against the developers' reference labels."""

    learner: str
    n_items: int
    accuracy: float | None  # share of items where the learner chose the reference label
    kappa: Kappa


@dataclass(frozen=True)
class AgreementReport:
    kind: str
    learners: list[str]  # raters with at least one label of this kind
    labels: int  # latest labels of this kind
    pairs: list[RaterPair]  # Cohen's kappa for every two raters, on the items both labelled
    fleiss: Kappa  # on the items every rater labelled
    vs_reference: list[ReferenceAgreement]  # pairwise only
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "learners": self.learners,
            "labels": self.labels,
            "cohen": [{"a": p.rater_a, "b": p.rater_b, **p.kappa.to_json()} for p in self.pairs],
            "fleiss": self.fleiss.to_json(),
            "vs_reference": [
                {
                    "learner": r.learner,
                    "items": r.n_items,
                    "accuracy": None if r.accuracy is None else round(r.accuracy, 6),
                    "kappa": r.kappa.to_json()["kappa"],
                    "kappa_code": r.kappa.code,
                }
                for r in self.vs_reference
            ],
            "notes": self.notes,
        }


def agreement(
    store: LabelStore | None = None, kind: str = "pairwise", learners: Sequence[str] | None = None
) -> AgreementReport:
    """How far the learners agree on `kind` labels: Cohen's kappa per pair of raters (quadratic-weighted for
    Likert), Fleiss' kappa over the items every chosen rater labelled, and (pairwise) each learner against the
    developers' reference labels."""
    _check_kind(kind)
    if store is None and not labels_exist():  # nobody has labelled yet: report that, create no file
        none = Kappa("fleiss", None, None, None, 0, 0, "llmops.kappa.too_few", {"items": 0, "need": 2})
        return AgreementReport(kind, [], 0, [], none, [], ["llmops.labels.none_yet"])
    own = store is None
    store = store or LabelStore()
    try:
        rows = store.labels(kind=kind)
        pairs_by_id = {p.pair_id: p for p in (store._pairs if store._pairs is not None else load_pairs())}
    finally:
        if own:
            store.close()
    by_rater: dict[str, dict[str, str]] = {}
    for r in rows:
        by_rater.setdefault(r.learner, {})[r.item_id] = r.label
    chosen = [check_learner(x) for x in learners] if learners else sorted(by_rater)
    cats = PAIRWISE_LABELS if kind == "pairwise" else LIKERT_LABELS
    weights = None if kind == "pairwise" else "quadratic"
    notes: list[str] = []
    pairs = []
    for x, y in itertools.combinations(chosen, 2):
        shared = sorted(set(by_rater.get(x, {})) & set(by_rater.get(y, {})))
        k = cohen_kappa([by_rater[x][i] for i in shared], [by_rater[y][i] for i in shared], cats, weights)
        pairs.append(RaterPair(x, y, k))
    everyone = set.intersection(*(set(by_rater.get(x, {})) for x in chosen)) if chosen else set()
    if len(chosen) >= 2 and everyone:
        ordered = sorted(everyone)
        fleiss = fleiss_kappa([[by_rater[x][i] for x in chosen] for i in ordered], cats)
    else:
        fleiss = Kappa(
            "fleiss",
            None,
            None,
            None,
            len(everyone),
            len(chosen),
            "llmops.kappa.too_few",
            {"items": len(everyone), "need": 2},
        )
    vs_ref = []
    if kind == "pairwise":
        for x in chosen:
            mine = {i: v for i, v in by_rater.get(x, {}).items() if i in pairs_by_id}
            ids = sorted(mine)
            ref = [pairs_by_id[i].reference for i in ids]
            got = [mine[i] for i in ids]
            acc = sum(g == r for g, r in zip(got, ref, strict=True)) / len(ids) if ids else None
            vs_ref.append(ReferenceAgreement(x, len(ids), acc, cohen_kappa(got, ref, cats)))
    if not rows:
        notes.append("llmops.labels.none_yet")  # each Kappa carries its own code and values (one_class, too_few)
    return AgreementReport(kind, sorted(by_rater), len(rows), pairs, fleiss, vs_ref, notes)


__all__ = [
    "DESIGNS",
    "KINDS",
    "LIKERT_LABELS",
    "PAIRS_FILE",
    "PAIRWISE_LABELS",
    "AgreementReport",
    "Kappa",
    "LabelRow",
    "LabelStore",
    "LikertItem",
    "PairItem",
    "RaterPair",
    "ReferenceAgreement",
    "agreement",
    "check_label",
    "check_learner",
    "cohen_kappa",
    "default_path",
    "fleiss_kappa",
    "fleiss_kappa_table",
    "item_ids",
    "labels_exist",
    "likert_items",
    "load_pairs",
]
