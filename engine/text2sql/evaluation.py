"""Scoring predicted SQL (book 6.2): execution match, Spider's exact set match and hardness, and the LLM judge.

Three ways to say "this SQL is right", and why the page shows all three:

- **Execution match (EX)** runs both queries on the same database and compares what comes back. Rows are a bag
  (multiset: duplicates count, order does not) unless the gold query has a top-level ORDER BY, then order counts;
  the predicted columns may come in any order (some permutation of them has to equal the gold columns, the
  test-suite evaluation's rule); floats are compared rounded to 6 decimals (1e-6), so `AVG()` and `SUM()/COUNT()`
  agree. A differently written but equivalent query passes; a query that happens to return the same rows on this
  data passes too (EX is an upper bound of "correct" — the test-suite evaluation distils several databases for
  that reason; the Spider databases of spider.py follow it). Ties under the gold's ORDER BY may come back in
  another order from an equivalent query and then count as a miss (the test-suite evaluation has the same limit).
- **Exact set match (EM)** is Spider's official metric: both queries are parsed into Spider's structure and
  compared clause by clause as sets (SELECT, WHERE, GROUP BY, HAVING, ORDER BY, AND/OR, IUEN, keywords), values
  ignored, foreign-key columns identified. It rejects correct queries written differently (a JOIN instead of an
  `IN (SELECT ...)`), so it is lower than EX. The code is Spider's own, vendored in `spider_eval/`.
- **The judge** is the book's prompt (`prompts.JUDGE_PROMPT`) asked of a model with the answer constrained to
  `{"resolve_yn": "yes"|"no"}`. It needs no database, which is its appeal; `evaluate` measures how often it agrees
  with EX and lists its false accepts (says yes, execution says no).

Measured (`tests/bench/bench_text2sql_judge.py`: 40 hand-made Chinook pairs, 20 wrong-but-plausible and 20
right-but-differently-written, execution deciding which is which; the local `instruct` model Qwen2.5-Coder-0.5B,
greedy, full Chinook DDL): the 0.5B judge says "no" to almost everything — 1 false accept of 20 wrong pairs
(5 %), but 17 false rejects of 20 right pairs (85 %; even `COUNT(TrackId)` for `COUNT(*)`), agreement with EX
0.55, ~27 s per call on 2 busy cores (~1,000 prompt tokens). A judge that rejects what is right makes a model look
worse than it is; its "yes" is rare and then mostly right. Spider's EM on the same pairs: True for 4 of the 20
*wrong* ones (it compares neither JOIN ... ON conditions nor DISTINCT, nor values) and 1 of the 20 right ones;
None for golds with `strftime(...)` (Spider's parser knows no function calls but the aggregates).

Deviations from the interface sketch, on purpose: `exact_set_match` returns None only when Spider's parser cannot
read the *gold* query; a prediction it cannot read scores False, exactly as Spider's official script scores it
(it substitutes an empty query). Spider's parser does not know CTEs (`WITH`), `CASE`, column aliases used later
(`ORDER BY cnt`), `||` or window functions, so model output using them is False under EM while EX may pass.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.config import get_settings
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.text2sql.databases import connect_readonly, quote_name
from engine.text2sql.prompts import JUDGE_PROMPT

if TYPE_CHECKING:
    from engine.text2sql.databases import Database
    from engine.text2sql.executor import ExecResult

FLOAT_DIGITS = 6  # floats compare rounded to 1e-6
MAX_PERMUTATIONS = 5000  # column permutations tried before giving up (only ties between equal columns get here)
EVAL_MAX_ROWS = 20_000  # rows fetched per query when scoring; Chinook's largest table has 8,715 (PlaylistTrack)
HARDNESS_LEVELS = ("easy", "medium", "hard", "extra")


# --- execution match ------------------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0 (equal anyway, but prints the same)
    return value


def execution_match(pred: ExecResult, gold: ExecResult, ordered: bool) -> bool:
    """Whether `pred` returned the same result as `gold`: a bag of rows (a list when `ordered`), columns in any
    order (same count), floats to 1e-6. Either query failing, or only one of them cut at the row limit, is False."""
    if not (pred.ok and gold.ok) or pred.truncated != gold.truncated:
        return False
    width = len(gold.columns)
    if len(pred.columns) != width or len(pred.rows) != len(gold.rows):
        return False
    if not gold.rows:
        return True  # both empty with the same column count: nothing to tell them apart
    p_rows = [tuple(_norm(v) for v in row) for row in pred.rows]
    g_rows = [tuple(_norm(v) for v in row) for row in gold.rows]
    p_cols = list(zip(*p_rows, strict=True))  # width tuples of len(rows) values
    g_cols = list(zip(*g_rows, strict=True))
    # A pred column can stand for gold column j only if it holds the same values: the same sequence when order
    # counts, the same bag otherwise. This cuts the permutations to ties between equal columns (usually none).
    key = (lambda col: col) if ordered else (lambda col: frozenset(Counter(col).items()))
    p_keys = [key(c) for c in p_cols]
    candidates = [[i for i in range(width) if p_keys[i] == key(g_cols[j])] for j in range(width)]
    if any(not c for c in candidates):
        return False
    g_bag = None if ordered else Counter(g_rows)
    tried = 0

    def assign(j: int, used: tuple[int, ...]) -> bool:
        nonlocal tried
        if j == width:
            tried += 1
            rows = [tuple(row[i] for i in used) for row in p_rows]
            return rows == g_rows if ordered else Counter(rows) == g_bag
        return any(i not in used and tried < MAX_PERMUTATIONS and assign(j + 1, (*used, i)) for i in candidates[j])

    return assign(0, ())


_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/", re.S)
_ORDER_BY = re.compile(r"\border\s+by\b", re.I)


def gold_is_ordered(sql: str) -> bool:
    """Whether the query's own result is ordered: an ORDER BY outside any parentheses (string literals, quoted
    names and comments ignored). An ORDER BY inside a subquery (`... = (SELECT ... ORDER BY x LIMIT 1)`) only picks
    rows; the test-suite evaluation's plain `"order by" in sql` would call that query ordered too."""
    text = _STRINGS.sub(" ", sql)
    depth, top = 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        top.append(ch if depth == 0 else " ")
        if ch == ")":
            depth = max(0, depth - 1)
    return bool(_ORDER_BY.search("".join(top)))


# --- Spider: exact set match and hardness ---------------------------------------------------------------------


def _db_path(db: Database | Path | str) -> Path:
    return Path(getattr(db, "path", db))


def _spider_tables(path: Path) -> tuple[dict[str, list[str]], dict]:
    """The database as Spider sees it, read over a read-only connection: the lowercased {table: [columns]} dict
    that Spider's get_schema() builds (it would open the file writable), and the database as one entry of Spider's
    tables.json (names, columns, foreign keys as column indexes) for Spider's own build_foreign_key_map."""
    conn = connect_readonly(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        schema: dict[str, list[str]] = {}
        columns: list[list] = [[-1, "*"]]
        index: dict[tuple[str, str], int] = {}  # (table, column) lowercased -> index in columns
        pk: dict[str, list[str]] = {}
        for t, table in enumerate(tables):
            info = conn.execute(f"PRAGMA table_info({quote_name(table)})").fetchall()
            schema[table.lower()] = [str(r[1]).lower() for r in info]
            for r in info:
                index[(table.lower(), str(r[1]).lower())] = len(columns)
                columns.append([t, r[1]])
            pk[table.lower()] = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        foreign_keys = []
        for table in tables:
            for _id, seq, parent, child_col, parent_col, *_ in conn.execute(
                f"PRAGMA foreign_key_list({quote_name(table)})"
            ):
                if parent_col is None:  # REFERENCES Parent without a column: the parent's primary key
                    keys = pk.get(parent.lower(), [])
                    parent_col = keys[seq] if seq < len(keys) else None
                a = index.get((table.lower(), str(child_col).lower()))
                b = index.get((parent.lower(), str(parent_col).lower()))
                if a is not None and b is not None:
                    foreign_keys.append([a, b])
    finally:
        conn.close()
    return schema, {"table_names_original": tables, "column_names_original": columns, "foreign_keys": foreign_keys}


@functools.lru_cache(maxsize=64)
def _spider_schema_cached(path: str, _mtime_ns: int, _size: int):
    from engine.text2sql.spider_eval.evaluation import build_foreign_key_map
    from engine.text2sql.spider_eval.process_sql import Schema

    schema, entry = _spider_tables(Path(path))
    return Schema(schema), build_foreign_key_map(entry)


def _spider_schema(db: Database | Path | str):
    """(Spider Schema, foreign-key map) of the database; cached per file version (path, mtime, size)."""
    path = _db_path(db)
    if not path.is_file():
        raise InputError("text2sql.db.not_found", path=str(path))
    stat = path.stat()
    return _spider_schema_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _parse(sql: str, schema) -> dict | None:
    from engine.text2sql.spider_eval.process_sql import get_sql

    try:
        return get_sql(schema, sql)
    except Exception:  # Spider's parser signals everything it cannot read with assert/KeyError/IndexError/...
        return None


def spider_parses(sql: str, db: Database | Path | str) -> bool:
    """Whether Spider's parser can read `sql` over this schema (the page says so when it cannot)."""
    schema, _ = _spider_schema(db)
    return _parse(sql, schema) is not None


def exact_set_match(gold_sql: str, pred_sql: str, db: Database | Path | str) -> bool | None:
    """Spider's exact set match, as its official evaluate() does it: parse both, drop values (DISABLE_VALUE),
    identify foreign-key columns, compare component by component. None when the gold cannot be parsed; an
    unparsable prediction is False (Spider scores it against an empty query)."""
    from engine.text2sql.spider_eval.evaluation import (
        Evaluator,
        build_valid_col_units,
        rebuild_sql_col,
        rebuild_sql_val,
    )

    schema, kmap = _spider_schema(db)
    gold = _parse(gold_sql, schema)
    if gold is None:
        return None
    pred = _parse(pred_sql, schema)
    if pred is None:
        return False
    gold = rebuild_sql_col(build_valid_col_units(gold["from"]["table_units"], schema), rebuild_sql_val(gold), kmap)
    pred = rebuild_sql_col(build_valid_col_units(pred["from"]["table_units"], schema), rebuild_sql_val(pred), kmap)
    return bool(Evaluator().eval_exact_match(pred, gold))


def hardness(sql: str, db: Database | Path | str) -> str:
    """Spider's hardness of a query: "easy", "medium", "hard" or "extra" (counts of components, Spider's rule)."""
    from engine.text2sql.spider_eval.evaluation import Evaluator

    schema, _ = _spider_schema(db)
    parsed = _parse(sql, schema)
    if parsed is None:
        raise InputError("text2sql.eval.spider_unparsable", sql=" ".join(sql.split())[:120])
    return Evaluator().eval_hardness(parsed)


# --- the LLM judge --------------------------------------------------------------------------------------------

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"resolve_yn": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["resolve_yn"],
    "additionalProperties": False,
}
JUDGE_ROLES = ("instruct", "instruct-large", "chat", "openai")


@dataclass(frozen=True)
class JudgeVerdict:
    yes: bool | None  # None: the judge's answer was unusable (cut off, not JSON, not yes/no)
    raw: str  # the judge's answer as it came back (JSON text)
    seconds: float


def judge(question: str, ddl: str, gold_sql: str, pred_sql: str, role: str = "instruct") -> JudgeVerdict:
    """The book's judge: does `pred_sql` do the job of `gold_sql` for `question`? One greedy, schema-constrained
    call. role "openai" needs OPENAI_API_KEY (the hosted tier; LLMLAB_LLM_MODEL names the model, e.g. gpt-4o-mini)."""
    from engine.serving.client import ModelServerError, structured_chat

    if role not in JUDGE_ROLES:
        raise InputError("input.unknown_choice", name="role", value=role, choices=", ".join(JUDGE_ROLES))
    server_role = role
    if role == "openai":
        if get_settings().tier != "hosted":
            raise InputError("text2sql.judge.no_openai_key")
        server_role = "instruct"  # with the key set, every role's requests go to OpenAI (engine.core.config)
    prompt = JUDGE_PROMPT.format(ddl=ddl, question=question, gold_sql=gold_sql, pred_sql=pred_sql)
    start = time.perf_counter()
    try:
        answer = structured_chat(
            [{"role": "user", "content": prompt}], JUDGE_SCHEMA, name="judge", max_tokens=32, role=server_role
        )
    except ModelServerError as exc:
        if exc.code != "server.bad_json":
            raise
        return JudgeVerdict(None, "", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    value = str(answer.get("resolve_yn", "")).strip().lower() if isinstance(answer, dict) else ""
    yes = {"yes": True, "no": False}.get(value)
    return JudgeVerdict(yes, json.dumps(answer, ensure_ascii=False), seconds)


# --- evaluating a prediction function over a question set -----------------------------------------------------


@dataclass(frozen=True)
class EvalRow:
    id: str
    question: str
    gold_sql: str
    pred_sql: str
    ex: bool  # execution match
    em: bool | None  # Spider's exact set match; None when Spider cannot parse the gold
    judge: bool | None  # the judge's yes/no; None when not asked or unusable
    error: str | None  # the prediction's execution error code (executor.ExecResult.error), None when it ran
    detail: str  # SQLite's own message for that error
    seconds: float  # the prediction's own time (Prediction.seconds)
    difficulty: str
    gold_error: str | None = None  # the gold query failed (a data bug, counted as a miss and listed)
    judge_raw: str = ""
    judge_seconds: float = 0.0


def _fraction(values: Sequence[bool]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class EvalReport:
    rows: list[EvalRow]
    planned: int = 0  # items asked for; more than len(rows) when the run was stopped
    stopped: bool = False
    judge_role: str | None = None

    @property
    def ex(self) -> float:
        return _fraction([r.ex for r in self.rows]) or 0.0

    @property
    def em(self) -> float | None:
        """Exact set match over the rows whose gold Spider can parse (None when there are none)."""
        return _fraction([r.em for r in self.rows if r.em is not None])

    @property
    def judged(self) -> list[EvalRow]:
        return [r for r in self.rows if r.judge is not None]

    @property
    def judge_agreement(self) -> float | None:
        """Fraction of judged rows where the judge's yes/no equals EX (unusable answers left out and counted in
        `judge_unusable`); None without a judge."""
        return _fraction([r.judge == r.ex for r in self.judged])

    @property
    def judge_unusable(self) -> int:
        return sum(r.judge is None for r in self.rows) if self.judge_role else 0

    @property
    def false_accepts(self) -> list[EvalRow]:
        """The judge said yes, execution says no: what a judge-only evaluation would wrongly count as solved."""
        return [r for r in self.rows if r.judge is True and not r.ex]

    @property
    def false_rejects(self) -> list[EvalRow]:
        return [r for r in self.rows if r.judge is False and r.ex]

    @property
    def median_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.rows) if self.rows else 0.0

    def by_difficulty(self) -> dict[str, tuple[int, float]]:
        """difficulty -> (questions, EX), Spider's levels first."""
        groups: dict[str, list[bool]] = {}
        for r in self.rows:
            groups.setdefault(r.difficulty, []).append(r.ex)
        order = [d for d in HARDNESS_LEVELS if d in groups] + sorted(set(groups) - set(HARDNESS_LEVELS))
        return {d: (len(groups[d]), sum(groups[d]) / len(groups[d])) for d in order}

    def errors(self) -> Counter:
        """Execution error codes of the predictions (text2sql.exec.sql_error, ...timeout, ...)."""
        return Counter(r.error for r in self.rows if r.error)

    def to_json(self) -> dict:
        return {
            "n": len(self.rows),
            "planned": self.planned,
            "stopped": self.stopped,
            "ex": self.ex,
            "em": self.em,
            "judge_role": self.judge_role,
            "judge_agreement": self.judge_agreement,
            "judge_unusable": self.judge_unusable,
            "false_accepts": len(self.false_accepts),
            "false_rejects": len(self.false_rejects),
            "median_seconds": self.median_seconds,
            "by_difficulty": {d: {"n": n, "ex": ex} for d, (n, ex) in self.by_difficulty().items()},
            "errors": dict(self.errors()),
            "rows": [asdict(r) for r in self.rows],
        }

    @classmethod
    def from_json(cls, data: dict) -> EvalReport:
        """The inverse of to_json (a shipped precomputed report)."""
        return cls(
            [EvalRow(**r) for r in data["rows"]],
            planned=data.get("planned", len(data["rows"])),
            stopped=data.get("stopped", False),
            judge_role=data.get("judge_role"),
        )


def evaluate(
    predict: Callable[[str], Any],
    items: Sequence[tuple[str, str, str, str]],
    db: Database,
    *,
    with_judge: bool = False,
    judge_role: str = "instruct",
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[EvalRow], None] | None = None,
    timeout_s: float = 5.0,
) -> EvalReport:
    """Run `predict(question)` (anything with `.sql` and `.seconds`, the lead's Prediction) for each
    (id, question, gold_sql, difficulty), execute prediction and gold read-only, and score EX, EM and, with
    `with_judge`, the judge. Stopping (`should_stop()` true, or `progress` raising Cancelled) keeps the rows so far."""
    from engine.text2sql.executor import run_sql

    report = EvalReport([], planned=len(items), judge_role=judge_role if with_judge else None)
    gold_results: dict[str, ExecResult] = {}  # gold SQL -> its result, run once even when items share it
    n = len(items)
    for k, (item_id, question, gold_sql, difficulty) in enumerate(items):
        try:
            progress(k / max(1, n), f"{k}/{n} {item_id}")
        except Cancelled:
            report.stopped = True
            break
        if should_stop is not None and should_stop():
            report.stopped = True
            break
        prediction = predict(question)
        pred_sql = prediction.sql or ""
        if gold_sql not in gold_results:
            gold_results[gold_sql] = run_sql(db, gold_sql, timeout_s=timeout_s, max_rows=EVAL_MAX_ROWS)
        gold = gold_results[gold_sql]
        pred = run_sql(db, pred_sql, timeout_s=timeout_s, max_rows=EVAL_MAX_ROWS)
        verdict = judge(question, db.ddl, gold_sql, pred_sql, judge_role) if with_judge else None
        row = EvalRow(
            id=item_id,
            question=question,
            gold_sql=gold_sql,
            pred_sql=pred_sql,
            ex=execution_match(pred, gold, gold_is_ordered(gold_sql)),
            em=exact_set_match(gold_sql, pred_sql, db),
            judge=verdict.yes if verdict else None,
            error=pred.error,
            detail=pred.detail,
            seconds=float(prediction.seconds),
            difficulty=difficulty,
            gold_error=gold.error,
            judge_raw=verdict.raw if verdict else "",
            judge_seconds=verdict.seconds if verdict else 0.0,
        )
        report.rows.append(row)
        if on_row is not None:
            on_row(row)
    else:
        with contextlib.suppress(Cancelled):  # every row is done already
            progress(1.0, f"{n}/{n}")
    return report
