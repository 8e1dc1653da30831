"""Prompt strategies for Text2SQL with a small model, each a lever the book names (6.2–6.4), measured on held-out
Korean Chinook questions (tests/bench/bench_text2sql.py; figures in the module constants' comments and the README).

A strategy is a set of switches, so the page can turn one on at a time and the benchmark can measure each:

    examples  k solved questions retrieved from the train split (BM25 over Kiwi morphemes of the question): the
              model sees how *this* database's Korean words map to its names ("미국" → Country = 'USA').
    linking   schema linking: only the tables the question needs go into the prompt — the tables of the retrieved
              examples plus the tables a Korean/English glossary finds in the question, closed over the foreign
              keys that join them. A shorter prompt is faster and leaves the model fewer columns to invent.
    samples   self-consistency: n answers sampled at T=0.7 besides the greedy one, executed, and the result that
              most answers agree on wins (a vote on what the SQL *returns*, not on its text).
    repair    execution-guided repair: when the SQL fails (or returns nothing), SQLite's own error goes back to the
              model with its SQL, up to `repair` times.

Nothing here needs the model to be good at following instructions: every switch changes the *input* (examples,
schema) or checks the *output* by running it. The executor is read-only (executor.py), so a generated
`DROP TABLE` is refused, not run.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.text2sql.databases import Database
from engine.text2sql.executor import ExecResult, run_sql
from engine.text2sql.prompts import Example, extract_sql, make_messages

MAX_QUESTION_CHARS = 500  # a question, not a document
MAX_SAMPLES = 8
MAX_REPAIRS = 3
MAX_EXAMPLES = 8


@dataclass(frozen=True)
class Strategy:
    name: str
    examples: int = 0  # k retrieved few-shot examples (0 = zero-shot)
    linking: bool = False  # schema linking: only the needed tables' DDL
    samples: int = 0  # self-consistency: extra samples at T=0.7, voted by execution result
    repair: int = 0  # execution-guided repair rounds
    pool: str = "train"  # where few-shot examples come from: POOLS
    values: bool = False  # value hints: the few values a short text column holds, as comments under the DDL
    plain_names: bool = False  # examples written with table names (Track.Name), not Spider's aliases (T1.Name)
    fix: bool = False  # a failing SQL first goes through the parser's fixes (missing joins, YEAR()): sqlfix.py

    def validate(self) -> None:
        if not 0 <= self.examples <= MAX_EXAMPLES:
            raise InputError("text2sql.bad_setting", name="examples", value=self.examples, low=0, high=MAX_EXAMPLES)
        if not 0 <= self.samples <= MAX_SAMPLES:
            raise InputError("text2sql.bad_setting", name="samples", value=self.samples, low=0, high=MAX_SAMPLES)
        if self.pool not in POOLS:
            raise InputError("input.unknown_choice", name="pool", value=self.pool, choices=", ".join(POOLS))
        if not 0 <= self.repair <= MAX_REPAIRS:
            raise InputError("text2sql.bad_setting", name="repair", value=self.repair, low=0, high=MAX_REPAIRS)


# The named strategies, in the order the page and the benchmark show them (each adds one lever).
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("zero-shot"),
        Strategy("few-shot", examples=4),
        Strategy("schema-linking", linking=True),
        Strategy("few-shot+linking", examples=4, linking=True),
        Strategy("few-shot+linking+repair", examples=4, linking=True, repair=2),
        # + the data's own values (category lists, the names the question spells out), examples with table names
        # instead of T1/T2, and the parser's join fixes before the model's repair. Dev (30): .433 -> .567, but on
        # the 60 test questions .45 vs .483 (5 won, 6 lost): within noise, and twice the prompt, so not the default
        Strategy(
            "few-shot+linking+values+fix+repair",
            examples=4,
            linking=True,
            values=True,
            plain_names=True,
            fix=True,
            repair=2,
        ),
        Strategy("self-consistency", examples=4, linking=True, samples=4, repair=1),
    )
}
DEFAULT_STRATEGY = "few-shot+linking+repair"


def default_role() -> str:
    """The model the pipeline runs unless told otherwise: Qwen2.5-Coder-1.5B (`instruct-large`) where installed, else
    the 0.5B `instruct`. Same default strategy, 60 held-out questions: 1.5B EX .717 at a 7.3 s median, 0.5B .483 at
    6.6 s (assets/precomputed/ch06_strategies.json)."""
    from engine.models.registry import application_role

    return application_role()


@dataclass(frozen=True)
class Attempt:
    """One SQL the model wrote and what running it gave."""

    kind: str  # "greedy", "sample", "fix", "repair"
    sql: str
    error: str | None  # an executor code, or None
    detail: str
    n_rows: int


@dataclass
class Prediction:
    sql: str  # the chosen SQL ("" when the model wrote none)
    seconds: float
    strategy: str
    attempts: list[Attempt] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # the tables in the prompt
    messages: list[dict] = field(default_factory=list)  # the prompt as sent (the page's "show the prompt")
    votes: dict[str, int] = field(default_factory=dict)  # self-consistency: result signature -> votes
    result: ExecResult | None = None  # the chosen SQL's execution


# --- few-shot examples -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolItem:
    """One solved example the few-shot retriever can pick."""

    id: str
    question: str
    sql: str
    tables: tuple[str, ...]
    source: str  # "train" (hand-written) or "synthetic" (synthetic.py, filtered by execution)


POOLS = ("train", "train+synthetic")


def example_pool(db_name: str, pool: str = "train") -> list[PoolItem]:
    """The solved examples for a database: Chinook's hand-written train split, optionally with the synthetic pairs
    (never the dev or test questions; synthetic pairs whose result equals a held-out answer were dropped when the
    set was made, synthetic.filter_pairs)."""
    if db_name != "chinook":
        return []
    from engine.text2sql.questions import chinook_questions

    items = [PoolItem(q.id, q.question, q.sql, tuple(q.tables), "train") for q in chinook_questions("train")]
    if pool == "train+synthetic":
        from engine.text2sql.synthetic import shipped_synthetic

        for i, pair in enumerate(shipped_synthetic()):
            used = tuple(sorted(set(re.findall(r"\b(?:FROM|JOIN)\s+([A-Za-z_]+)", pair.sql, re.I))))
            items.append(PoolItem(f"synthetic-{i:04d}", pair.question, pair.sql, used, "synthetic"))
    return items


@lru_cache(maxsize=8)
def _example_index(db_name: str, pool: str = "train"):
    """BM25 over Kiwi content morphemes (+ Latin words) of the pool's questions: the tokenizer ch.10 measured best
    for Korean questions."""
    from engine.retrieval.bm25 import BM25Index
    from engine.retrieval.tokenizers import kiwi_content

    items = example_pool(db_name, pool)
    if not items:
        return None, []
    tokens = [kiwi_content(q.question) + _latin_words(q.question) for q in items]
    return BM25Index.build(tokens), items


def _latin_words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z/&'.-]*", text)]


def retrieve_examples(db: Database, question: str, k: int, pool: str = "train") -> list[PoolItem]:
    """The k solved examples most like `question` (empty for a database without a train split)."""
    if k <= 0:
        return []
    from engine.retrieval.tokenizers import kiwi_content

    index, items = _example_index(db.name, pool)
    if index is None:
        return []
    scores = index.scores(kiwi_content(question) + _latin_words(question))
    order = sorted(range(len(items)), key=lambda i: (-scores[i], i))[:k]
    # most similar last: the example nearest the question is the one the model copies from most
    return [items[i] for i in reversed(order) if scores[i] > 0]


# --- schema linking ----------------------------------------------------------------------------------------------

# Korean (and common English) words for Chinook's tables: what a learner says → where it lives. Only used for the
# Chinook database; for any other database linking falls back to the names that appear in the question.
CHINOOK_GLOSSARY: dict[str, tuple[str, ...]] = {
    "Track": ("트랙", "곡", "노래", "음악", "작곡", "재생 시간", "길이", "용량", "바이트", "track", "song"),
    "Album": ("앨범", "album"),
    "Artist": ("아티스트", "가수", "밴드", "음악가", "artist"),
    "Genre": ("장르", "genre", "록", "재즈", "메탈", "블루스", "팝", "라틴", "클래식"),
    "MediaType": ("미디어", "형식", "포맷", "파일 형식", "media"),
    "Playlist": ("재생목록", "재생 목록", "플레이리스트", "playlist"),
    "Customer": ("고객", "손님", "회원", "customer"),
    "Employee": ("직원", "사원", "담당", "상사", "매니저", "관리자", "employee", "입사", "고용"),
    "Invoice": ("송장", "인보이스", "주문", "구매", "매출", "결제", "청구", "invoice", "판매", "금액", "총액"),
    "InvoiceLine": ("판매량", "판매된", "팔린", "수량", "구매한 트랙", "invoice line"),
}


def _fk_edges(db: Database) -> list[tuple[str, str]]:
    """(table, referenced table) pairs from the DDL's REFERENCES clauses."""
    edges = []
    for table in db.tables:
        block = db.table_ddl([table])
        for ref in re.findall(r"REFERENCES\s+\"?(\w+)\"?", block, re.I):
            match = next((t for t in db.tables if t.lower() == ref.lower()), None)
            if match and match != table:
                edges.append((table, match))
    return edges


def _connect(db: Database, tables: set[str]) -> set[str]:
    """Add the bridge tables that join the chosen ones (InvoiceLine between Invoice and Track, ...): breadth-first
    over foreign keys, shortest paths between each pair of chosen tables."""
    if len(tables) < 2:
        return tables
    graph: dict[str, set[str]] = {t: set() for t in db.tables}
    for a, b in _fk_edges(db):
        graph[a].add(b)
        graph[b].add(a)
    out = set(tables)
    chosen = sorted(tables)
    for i, start in enumerate(chosen):
        for goal in chosen[i + 1 :]:
            prev: dict[str, str | None] = {start: None}
            queue = [start]
            while queue and goal not in prev:
                node = queue.pop(0)
                for nxt in sorted(graph.get(node, ())):
                    if nxt not in prev:
                        prev[nxt] = node
                        queue.append(nxt)
            node = goal if goal in prev else None
            while node is not None:
                out.add(node)
                node = prev[node]
    return out


def link_tables(db: Database, question: str, examples: Sequence = ()) -> list[str]:
    """The tables the question needs: glossary and name matches in the question, the examples' tables, joined."""
    text = question.lower()
    found: set[str] = set()
    glossary = CHINOOK_GLOSSARY if db.name == "chinook" else {}
    for table in db.tables:
        words = (table.lower(), *glossary.get(table, ()))
        if any(w.lower() in text for w in words):
            found.add(table)
    for ex in examples:
        found.update(t for t in getattr(ex, "tables", ()) if t in db.tables)
    if not found:
        return list(db.tables)  # nothing recognised: the whole schema, rather than a guess
    return [t for t in db.tables if t in _connect(db, found)]


_ALIAS = re.compile(r"\b([A-Za-z_]\w*)\s+AS\s+(T\d+)\b", re.I)
_ALIAS_USE = re.compile(r"\b(T\d+)\.")


def plain_names(sql: str) -> str:
    """`SELECT T2.Name FROM Track AS T1 JOIN Genre AS T2 ON ...` -> `SELECT Genre.Name FROM Track JOIN Genre ON ...`.

    Spider's gold SQL (and so the train split's) names every table T1, T2, ...; a 0.5B model copying such an
    example mixes up which alias is which (measured on dev: `Genre AS T1 JOIN Track AS T2 ... T2.Name` for the
    genre's name). Written with the tables' own names there is nothing to mix up. Only rewritten when each alias
    stands for one table and each table has one alias (a self-join such as Employee AS T1 JOIN Employee AS T2
    keeps its aliases); the rewritten query returns exactly what the original does (tested on every split)."""
    pairs = _ALIAS.findall(sql)
    if not pairs or re.search(r"'[^']*\bT\d+\.", sql):  # an alias-like text inside a literal: leave it
        return sql
    by_alias: dict[str, set[str]] = {}
    by_table: dict[str, set[str]] = {}
    for table, alias in pairs:
        by_alias.setdefault(alias.upper(), set()).add(table)
        by_table.setdefault(table.lower(), set()).add(alias.upper())
    if any(len(v) > 1 for v in (*by_alias.values(), *by_table.values())):
        return sql
    used = {m.upper() for m in _ALIAS_USE.findall(sql)}
    if not used <= set(by_alias):
        return sql  # an alias used but never defined: leave the query as written
    out = _ALIAS.sub(lambda m: m.group(1), sql)
    return _ALIAS_USE.sub(lambda m: next(iter(by_alias[m.group(1).upper()])) + ".", out)


# --- value hints ------------------------------------------------------------------------------------------------

MAX_HINT_VALUES = 30  # a column with more distinct values is a name, not a category: no hint
MAX_HINT_CHARS = 40  # long texts (titles, addresses) are never categories either


_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=16)
def _column_values(db: Database) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, column) -> its distinct values, for the category-like text columns: at most MAX_HINT_VALUES short
    values, not dates, and repeated (at most 0.8 values per filled row) unless the table is a lookup table
    of an id and a name or two (Genre, MediaType, Playlist), where every name is its own category. This keeps
    Genre.Name, Customer.Country and Employee.Title, and drops what is unique per row (names, phones, addresses)."""
    import contextlib

    from engine.text2sql.databases import connect_readonly

    out: dict[tuple[str, str], tuple[str, ...]] = {}
    with contextlib.closing(connect_readonly(db.path)) as conn:
        for table, columns in db.tables.items():
            for col in columns:
                try:
                    filled = conn.execute(f'SELECT COUNT("{col}") FROM "{table}"').fetchone()[0]
                    rows = conn.execute(
                        f'SELECT DISTINCT "{col}" FROM "{table}" WHERE typeof("{col}") = \'text\' LIMIT ?',
                        (MAX_HINT_VALUES + 1,),
                    ).fetchall()
                except Exception:  # an odd upload (a view that fails, a virtual table): no hint for it
                    continue
                values = sorted(str(r[0]) for r in rows)
                if not 0 < len(values) <= MAX_HINT_VALUES or any(len(v) > MAX_HINT_CHARS for v in values):
                    continue
                if any(_DATE_LIKE.match(v) for v in values):
                    continue
                if len(values) > 0.8 * filled and len(columns) > 3:
                    continue
                out[(table, col)] = tuple(values)
    return out


MAX_VALUE_CHARS = 60  # longer texts are never typed into a question word for word
MAX_VALUES_PER_COLUMN = 20_000  # an uploaded database's huge text column is only partly indexed
_LATIN_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'&.\-/]*(?:\s+[A-Za-z0-9][A-Za-z0-9'&.\-/]*)*")


@lru_cache(maxsize=16)
def _value_index(db: Database) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """lower(value) -> ((table, column, value), ...) for every short text value in the database, categories (the
    columns with fewest distinct values) first."""
    import contextlib

    from engine.text2sql.databases import connect_readonly

    found: dict[str, list[tuple[int, str, str, str]]] = {}
    with contextlib.closing(connect_readonly(db.path)) as conn:
        for table, columns in db.tables.items():
            for col in columns:
                try:
                    rows = conn.execute(
                        f'SELECT DISTINCT "{col}" FROM "{table}" WHERE typeof("{col}") = \'text\' '
                        f'AND length("{col}") <= ? LIMIT ?',
                        (MAX_VALUE_CHARS, MAX_VALUES_PER_COLUMN),
                    ).fetchall()
                except Exception:  # an odd upload (a view that fails, a virtual table): not indexed
                    continue
                for (value,) in rows:
                    if not _DATE_LIKE.match(value):
                        found.setdefault(value.strip().lower(), []).append((len(rows), table, col, value))
    return {k: tuple((t, c, v) for _, t, c, v in sorted(hits)) for k, hits in found.items()}


def match_values(db: Database, question: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The database values the question spells out word for word, longest first: [(value, [(table, column)])].

    Korean questions name artists, albums, playlists and countries in Latin script ("Metallica 곡들의 평균 재생
    시간", "Brazilian Music 플레이리스트"); a 0.5B model then guesses where that name lives (measured on dev:
    `Genre.Name = 'Metallica'`, `Album.Name = 'Brazilian Music'`). Looking the words up in the data says it:
    'Metallica' is an Artist.Name. Runs of Latin words are tried longest first, so "Brazilian Music" wins over
    "Music"; single words under 3 letters and numbers are skipped (too many accidental hits)."""
    index = _value_index(db)
    out: list[tuple[str, list[tuple[str, str]]]] = []
    taken: list[tuple[int, int]] = []
    for run in _LATIN_RUN.finditer(question):
        words = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\S+", run.group())]
        spans = [(i, j) for i in range(len(words)) for j in range(len(words), i, -1)]
        for i, j in sorted(spans, key=lambda ij: ij[0] - ij[1]):  # longest first
            a, b = words[i][0], words[j - 1][1]
            if any(a < y and x < b for x, y in taken):
                continue
            text = question[a:b].strip(".,?!'\"")
            if j - i == 1 and (len(text) < 3 or text.isdigit()):
                continue
            hits = index.get(text.lower())
            if hits:
                taken.append((a, b))
                out.append((hits[0][2] if len(hits) == 1 else text, [(t, c) for t, c, _ in hits[:3]]))
    return out


def value_hints(db: Database, tables: Sequence[str], question: str = "") -> str:
    """SQL comments under the DDL: where the question's own words live in the data, then the values of the
    category-like text columns of `tables`:

        -- 'Metallica' = Artist.Name
        -- Genre.Name: 'Alternative', 'Blues', ..., 'Rock', ...

    A small model cannot know that this database spells the United States 'USA' or rock music 'Rock' (the Korean
    question says "미국", "록"); shown the few values a column holds, it copies the right literal. Columns with many
    or long values (track names, addresses) are left out of the lists: they would cost hundreds of tokens and teach
    nothing — for those only the values the question itself names are shown (match_values)."""
    lines = []
    for value, where in match_values(db, question) if question else []:
        quoted = "'" + value.replace("'", "''") + "'"
        lines.append(f"-- {quoted} = " + ", ".join(f"{t}.{c}" for t, c in where))
    for (table, col), values in _column_values(db).items():
        if table in tables:
            lines.append(f"-- {table}.{col}: " + ", ".join("'" + v.replace("'", "''") + "'" for v in values))
    return "\n".join(lines)


# --- the model call ----------------------------------------------------------------------------------------------


def is_served(model: str) -> bool:
    """A serving role (llama.cpp / vLLM / OpenAI through engine.serving), as opposed to a tuned model's folder."""
    from engine.serving.client import ROLES

    return model in ROLES


@lru_cache(maxsize=2)
def _local_model(path: str):
    """A fine-tuned model folder, in-process: a LoRA adapter (finetune.save_adapter; its base role read from
    adapter_config.json) or a whole saved model. Cached: loading is seconds, a question is one call."""
    import json
    from pathlib import Path

    folder = Path(path)
    config = folder / "adapter_config.json"
    if config.is_file():
        from engine.models.registry import ROLES
        from engine.text2sql.finetune import load_tuned

        base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
        # the hub id (what finetune.save_adapter writes) or a converted folder <cache>/models/<role>-<sha>
        role = next((r for r, spec in ROLES.items() if base in (spec.hub_id, r) or f"/{r}-" in base), None)
        if role is None:
            raise InputError("text2sql.unknown_model", model=path)
        return load_tuned(role, folder)
    if (folder / "config.json").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    raise InputError("text2sql.unknown_model", model=path)


def _ask_local(messages: list[dict], path: str, temperature: float, seed: int) -> str:
    import torch

    model, tokenizer = _local_model(path)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=200,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=0.95 if temperature > 0 else None,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    return extract_sql(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))


def _ask(messages: list[dict], role: str, temperature: float, seed: int, progress: ProgressFn) -> str:
    from engine.serving.client import RESTART_MARK, stream_chat

    if not is_served(role):
        return _ask_local(messages, role, temperature, seed)

    text = "".join(
        p
        for p in stream_chat(
            messages, max_tokens=200, temperature=temperature, top_p=0.95, seed=seed, role=role, progress=progress
        )
        if p != RESTART_MARK
    )
    return extract_sql(text)


def _signature(result: ExecResult) -> str:
    """What a vote compares: the result as a multiset of rows (order-free), so equal answers written differently
    count together."""
    return repr(sorted(Counter(map(repr, result.rows)).items()))


def _repair_messages(messages: list[dict], sql: str, result: ExecResult) -> list[dict]:
    problem = f"실행 오류: {result.detail}" if result.error else "실행 결과가 비어 있습니다 (0행)."
    return [
        *messages,
        {"role": "assistant", "content": sql or "(SQL 없음)"},
        {"role": "user", "content": f"{problem}\n위 DDL의 테이블과 컬럼 이름만 사용해서 고친 SQL 쿼리 하나만 쓰세요."},
    ]


def check_question(question: str) -> str:
    question = " ".join((question or "").split())
    if not question:
        raise InputError("text2sql.empty_question")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError("text2sql.question_too_long", chars=len(question), limit=MAX_QUESTION_CHARS)
    return question


def predict(
    db: Database,
    question: str,
    strategy: Strategy | str = DEFAULT_STRATEGY,
    *,
    role: str | None = None,
    progress: ProgressFn = null_progress,
    exclude_ids: frozenset[str] = frozenset(),
) -> Prediction:
    """Write SQL for `question` over `db` with `strategy`; every candidate is executed (read-only) and kept."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise InputError("input.unknown_choice", name="strategy", value=strategy, choices=", ".join(STRATEGIES))
        strategy = STRATEGIES[strategy]
    strategy.validate()
    question = check_question(question)
    role = role or default_role()
    if role.startswith("models:/"):  # a registered model (chapter 13): the folder its alias or version names now
        from engine.llmops.registry import model_path

        role = str(model_path(role))
    start = time.perf_counter()
    found = [
        q for q in retrieve_examples(db, question, strategy.examples + len(exclude_ids)) if q.id not in exclude_ids
    ]
    found = found[-strategy.examples :] if strategy.examples else []
    tables = link_tables(db, question, found) if strategy.linking else list(db.tables)
    if strategy.values and strategy.linking:  # the tables holding the question's named values belong in the prompt
        named = {t for _, where in match_values(db, question) for t, _ in where[:1]}
        if named - set(tables):
            tables = [t for t in db.tables if t in _connect(db, set(tables) | named)]
    ddl = db.table_ddl(tables) if strategy.linking else db.ddl
    if strategy.values and (hints := value_hints(db, tables, question)):
        ddl = f"{ddl}\n\n{hints}"
    examples = [Example(q.question, plain_names(q.sql) if strategy.plain_names else q.sql) for q in found]
    messages = make_messages(ddl, question, examples)
    pred = Prediction("", 0.0, strategy.name, examples=examples, tables=tables, messages=messages)

    def attempt(kind: str, sql: str) -> ExecResult:
        result = (
            run_sql(db, sql) if sql else ExecResult([], [], "text2sql.exec.empty", "no SQL in the answer", 0.0, False)
        )
        pred.attempts.append(Attempt(kind, sql, result.error, result.detail, len(result.rows)))
        return result

    progress(0.1, "writing SQL")
    sql = _ask(messages, role, 0.0, 0, progress)
    result = attempt("greedy", sql)
    candidates = [(sql, result)]
    for i in range(strategy.samples):
        progress(0.2 + 0.5 * i / max(strategy.samples, 1), f"sample {i + 1}/{strategy.samples}")
        s = _ask(messages, role, 0.7, i + 1, progress)
        candidates.append((s, attempt("sample", s)))
    if strategy.samples:
        good = [(s, r) for s, r in candidates if r.ok and r.rows]
        if good:
            pred.votes = dict(Counter(_signature(r) for _, r in good).most_common())
            winner = next(iter(pred.votes))
            sql, result = next((s, r) for s, r in good if _signature(r) == winner)  # greedy first among equals

    def parser_fix(bad_sql: str, bad: ExecResult) -> tuple[str, ExecResult] | None:
        # joins the query forgot and YEAR(): fixed by the parser from the foreign keys, no model call (sqlfix.py)
        if not strategy.fix or bad.ok or not bad_sql:
            return None
        from engine.text2sql.sqlfix import fix_sql

        fixed_sql = fix_sql(db, bad_sql)
        if not fixed_sql or fixed_sql in {a.sql for a in pred.attempts}:
            return None
        fixed_run = attempt("fix", fixed_sql)
        return (fixed_sql, fixed_run) if fixed_run.ok else None

    if found_fix := parser_fix(sql, result):
        sql, result = found_fix
    for i in range(strategy.repair):
        if result.ok and result.rows:
            break
        progress(0.75 + 0.2 * i / strategy.repair, f"repair {i + 1}/{strategy.repair}")
        repair_messages = _repair_messages(messages, sql, result)
        fixed = _ask(repair_messages, role, 0.0, 0, progress)
        if fixed in {a.sql for a in pred.attempts}:
            # Greedy decoding given the same error often writes the same SQL again (measured: the page's default
            # question repeated `T2.TrackId` twice); a sampled answer at least tries something else.
            fixed = _ask(repair_messages, role, 0.7, 100 + i, progress)
        fixed_result = attempt("repair", fixed)
        if found_fix := parser_fix(fixed, fixed_result):
            fixed, fixed_result = found_fix
        if fixed_result.ok and (fixed_result.rows or not result.ok):
            sql, result = fixed, fixed_result
    pred.sql, pred.result = sql, result
    pred.seconds = time.perf_counter() - start
    progress(1.0, "done")
    return pred
