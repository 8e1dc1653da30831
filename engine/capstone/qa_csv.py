"""The capstone's input: a CSV of Korean question/answer pairs, read defensively, split into train and held-out.

A learner uploads whatever a spreadsheet saved: UTF-8 with a BOM, or CP949 (what Korean Excel writes), headers in
Korean or English, empty rows, duplicated rows, and cells that a spreadsheet would run as a formula when the file is
opened again (`=cmd|' /C calc'!A0`, "CSV injection"). Every row we cannot use is dropped *with its reason*, so
nothing disappears silently; a file we cannot use at all is an `InputError` with a code the page translates.

The held-out split is by *fact*, not by row: rows that share an answer are phrasings of one fact. One phrasing of
each fact that has at least two is held out, so the held-out questions are new wordings of facts the model was
trained on — what an FAQ bot meets in practice. (A fact the model never saw cannot be learned by any fine-tune; when
no answer repeats, a random fifth of the rows is held out and the result says so.)
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.assets import ASSETS
from engine.core.corpus import decode_korean, looks_like_text
from engine.core.textinput import InputError

SAMPLE = ASSETS / "capstone" / "library_faq.csv"
MAX_BYTES = 2_000_000  # 2 MB: thousands of pairs, far more than a 10-minute CPU fine-tune can use
MAX_ROWS = 5_000
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 600
MIN_PAIRS = 8

# header names we accept for each column, compared case-insensitively after stripping spaces
QUESTION_NAMES = ("question", "q", "질문", "문의", "prompt", "instruction", "input")
ANSWER_NAMES = ("answer", "a", "답", "답변", "응답", "response", "output")
# a spreadsheet evaluates a cell starting with one of these (OWASP "CSV injection")
FORMULA_STARTS = ("=", "+", "@", "\t", "\r")


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    row: int  # 1-based line in the file (the header is line 1), so a learner can find it


@dataclass
class QASet:
    """The usable pairs, the split, and every dropped row with its reason."""

    pairs: list[QAPair]
    train: list[QAPair]
    heldout: list[QAPair]
    encoding: str
    columns: tuple[str, str]
    dropped: list[dict] = field(default_factory=list)  # {"row", "reason"} with reason a short code
    split: str = "by_fact"  # "by_fact": held-out = new phrasings of trained facts; "random": unseen facts

    def summary(self) -> dict:
        reasons: dict[str, int] = defaultdict(int)
        for d in self.dropped:
            reasons[d["reason"]] += 1
        return {
            "pairs": len(self.pairs),
            "train": len(self.train),
            "heldout": len(self.heldout),
            "facts": len({p.answer for p in self.pairs}),
            "encoding": self.encoding,
            "columns": list(self.columns),
            "dropped": dict(reasons),
            "split": self.split,
        }


def looks_like_formula(cell: str) -> bool:
    """True for what a spreadsheet would execute. A leading '-' counts unless a number follows (-5도 is text)."""
    if cell.startswith(FORMULA_STARTS):
        return True
    return cell.startswith("-") and len(cell) > 1 and not (cell[1].isdigit() or cell[1] in " .")


def escape_cell(cell: str) -> str:
    """For CSVs we write back: a leading apostrophe makes a spreadsheet show a formula-like cell as text."""
    return "'" + cell if looks_like_formula(cell) else cell


def _clean(cell: str | None) -> str:
    text = unicodedata.normalize("NFC", cell or "")
    return " ".join(text.split())  # newlines and runs of spaces inside a cell become one space


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [h.strip().lower().lstrip("\ufeff") for h in header]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def _decode(data: bytes) -> tuple[str, str]:
    if not data or not data.strip():
        raise InputError("capstone.csv_empty")
    if len(data) > MAX_BYTES:
        raise InputError("capstone.csv_too_big", size=len(data), limit=MAX_BYTES)
    if b"\x00" in data[:8192]:
        raise InputError("capstone.csv_binary")
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text, encoding = decode_korean(data) or "", "unknown"
    if not text or not looks_like_text(text):
        raise InputError("capstone.csv_encoding")
    return text, "utf-8" if encoding == "utf-8-sig" else encoding


def read_qa_csv(source: bytes | str | Path, *, seed: int = 0, max_heldout: int = 40, name: str = "the CSV") -> QASet:
    """Bytes of an upload, a path, or "sample" -> a QASet. Raises InputError for a file that cannot be used."""
    if isinstance(source, bytes):
        data = source
    else:
        path = SAMPLE if str(source) == "sample" else Path(source)
        if not path.is_file():
            raise InputError("capstone.csv_missing", path=str(path))
        if path.stat().st_size > MAX_BYTES:
            raise InputError("capstone.csv_too_big", size=path.stat().st_size, limit=MAX_BYTES)
        data = path.read_bytes()
    text, encoding = _decode(data)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputError("capstone.csv_unreadable", detail=str(exc)) from exc
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InputError("capstone.csv_empty")
    header = rows[0]
    qi, ai = _find_column(header, QUESTION_NAMES), _find_column(header, ANSWER_NAMES)
    if qi is None or ai is None or qi == ai:
        raise InputError("capstone.csv_columns", found=", ".join(h.strip() for h in header)[:200] or "-")
    if len(rows) - 1 > MAX_ROWS:
        raise InputError("capstone.csv_too_many_rows", rows=len(rows) - 1, limit=MAX_ROWS)

    pairs: list[QAPair] = []
    dropped: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(rows[1:], start=2):
        raw_q = row[qi] if qi < len(row) else ""
        raw_a = row[ai] if ai < len(row) else ""
        q, a = _clean(raw_q), _clean(raw_a)
        reason = None
        if not q or not a:
            reason = "empty_cell"
        elif looks_like_formula(raw_q.strip()) or looks_like_formula(raw_a.strip()):
            reason = "formula"
        elif len(q) > MAX_QUESTION_CHARS or len(a) > MAX_ANSWER_CHARS:
            reason = "too_long"
        elif (q, a) in seen:
            reason = "duplicate"
        if reason:
            dropped.append({"row": line, "reason": reason})
            continue
        seen.add((q, a))
        pairs.append(QAPair(q, a, line))
    if len(pairs) < MIN_PAIRS:
        raise InputError("capstone.csv_too_few", usable=len(pairs), limit=MIN_PAIRS, dropped=len(dropped))
    train, heldout, split = split_heldout(pairs, seed=seed, max_heldout=max_heldout)
    return QASet(pairs, train, heldout, encoding, (header[qi].strip(), header[ai].strip()), dropped, split)


def split_heldout(pairs: list[QAPair], *, seed: int = 0, max_heldout: int = 40) -> tuple[list, list, str]:
    """One phrasing per repeated fact goes to held-out (seeded); see the module docstring for why by fact."""
    rng = random.Random(seed)
    by_answer: dict[str, list[QAPair]] = defaultdict(list)
    for p in pairs:
        by_answer[p.answer].append(p)
    repeated = [group for group in by_answer.values() if len(group) >= 2]
    if repeated:
        rng.shuffle(repeated)
        held = {id(rng.choice(group)) for group in repeated[:max_heldout]}
        split = "by_fact"
    else:  # every answer is unique: held-out questions ask about facts the model never saw
        order = list(range(len(pairs)))
        rng.shuffle(order)
        n = min(max_heldout, max(1, len(pairs) // 5))
        held = {id(pairs[i]) for i in order[:n]}
        split = "random"
    train = [p for p in pairs if id(p) not in held]
    heldout = [p for p in pairs if id(p) in held]
    return train, heldout, split
