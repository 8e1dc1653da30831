"""The agent's tools: a calculator, Constitution search (chapter 9), read-only SQL over Chinook (chapter 6).

Contract with the loop (engine/agents/loop.py): a tool never raises for anything the model can cause. Bad
arguments, a bad expression, SQL that fails, a search that finds nothing: each comes back as a `ToolOutput` whose
`text` starts with "Error:" and says what to fix (the model reads it as the observation and may retry), and whose
`error` holds a short code ("calculator.bad_expression", "tool.bad_arguments", ...). `call_tool(tool, arguments)`
adds the same guarantee around any `Tool`: wrong or missing argument names, an exception inside the function, or a
megabyte of output all become a capped observation, never an exception. Observations are capped at
`MAX_OBSERVATION_CHARS` with a note saying how much was cut, so one tool cannot fill the context window.

Why AST evaluation and not `eval`: the model's "expression" is untrusted text; `eval("__import__('os')...")` runs
anything. The calculator walks the parsed tree and allows only numbers, arithmetic and a short list of math
functions, and refuses results that would take seconds or gigabytes (`9**9**9` is ~370 million digits).
"""

from __future__ import annotations

import ast
import math
import operator
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.agents.observations import MAX_OBSERVATION_CHARS, cap, error_output
from engine.agents.tool import Tool, ToolOutput

MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 4_096  # ~1,233 decimal digits: any bigger intermediate is refused, not computed
MAX_DEPTH = 40  # nesting of the expression tree ((((...)))) — deeper is refused before recursion gets deep
MAX_SQL_ROWS = 20  # rows shown to the model; the page gets all fetched rows as the artifact
SEARCH_TOP_K = 3


def call_tool(tool: Tool, arguments: Any, limit: int = MAX_OBSERVATION_CHARS) -> ToolOutput:
    """Run `tool` with the model's `arguments` and never raise: every failure is an error observation.

    `arguments` is what the model sent (a dict, or a JSON string some servers return); unknown names and missing
    required ones are reported by name, so a small model can correct its call. The text is capped at `limit`."""
    import json

    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return error_output("tool.bad_arguments", f"the arguments of {tool.name} are not valid JSON")
    if not isinstance(arguments, dict):
        return error_output("tool.bad_arguments", f"the arguments of {tool.name} must be a JSON object")
    props = tool.parameters.get("properties", {})
    unknown = sorted(set(arguments) - set(props))
    missing = [n for n in tool.parameters.get("required", []) if n not in arguments]
    if unknown or missing:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unknown:
            parts.append("unknown " + ", ".join(unknown))
        expected = ", ".join(props) or "none"
        return error_output("tool.bad_arguments", f"{tool.name}: {'; '.join(parts)} (arguments: {expected})")
    try:
        out = tool(**arguments)
    except Exception as exc:  # a tool's bug must not end the run; the model sees what happened
        from engine.core.errors import UserError

        code = getattr(exc, "code", "tool.failed") if isinstance(exc, UserError) else "tool.failed"
        return error_output(code, f"{tool.name} failed: {type(exc).__name__}: {exc}")
    text, cut = cap(out.text, limit)
    return replace(out, text=text, truncated=out.truncated or cut) if cut else out


# -- calculator --------------------------------------------------------------------------------------------------
class CalcError(ValueError):
    """An expression the calculator will not evaluate; the message says why, for the model."""


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
# What models write that Python spells otherwise: 2^10, 3×4, 8÷2, 1,000 (thousands separators).
_REWRITES = (("^", "**"), ("×", "*"), ("÷", "/"), ("−", "-"))
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def evaluate_expression(expression: str) -> int | float:
    """The value of an arithmetic expression, by walking its AST; raises `CalcError` with a readable reason."""
    if not isinstance(expression, str):
        raise CalcError(f"the expression must be text (got {type(expression).__name__})")
    text = expression.strip()
    if not text:
        raise CalcError("the expression is empty; give arithmetic such as 12*(3+4)")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalcError(f"the expression is {len(text):,} characters long; at most {MAX_EXPRESSION_CHARS}")
    for old, new in _REWRITES:
        text = text.replace(old, new)
    text = _THOUSANDS.sub("", text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalcError(f"cannot parse {expression!r} as arithmetic ({exc.msg})") from None
    try:
        return _eval(tree.body, 0)
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except OverflowError:
        raise CalcError("the result is too large for a floating-point number") from None
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CalcError):
            raise
        raise CalcError(f"math error: {exc}") from None


def _eval(node: ast.AST, depth: int) -> int | float:
    if depth > MAX_DEPTH:
        raise CalcError(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalcError(f"only numbers are allowed, not {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        both_int = isinstance(left, int) and isinstance(right, int)
        if isinstance(node.op, ast.Mult) and both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise CalcError(f"the result would have more than {MAX_INT_BITS} bits; refused")
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalcError(f"unknown name {node.id!r}; constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            allowed = ", ".join(_FUNCTIONS)
            raise CalcError(f"function {ast.unparse(node.func)!r} is not allowed; allowed: {allowed}")
        if not 1 <= len(node.args) <= 8:
            raise CalcError(f"{name} takes 1 to 8 arguments")
        args = [_eval(a, depth + 1) for a in node.args]
        return _checked(_FUNCTIONS[name](*args))
    raise CalcError(f"{type(node).__name__} is not arithmetic: use numbers, + - * / // % ** and math functions")


def _check_power(base: int | float, exponent: int | float) -> None:
    """Refuse a power whose result would be huge before computing it (9**9**9 would take minutes and gigabytes)."""
    if abs(exponent) > 10_000 and abs(base) not in (0, 1):
        raise CalcError(f"the exponent {exponent!r} is too large; refused")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))
        if bits > MAX_INT_BITS:
            raise CalcError(f"{base}**{exponent} would have about {bits:,.0f} bits (limit {MAX_INT_BITS}); refused")


def _checked(value: Any) -> int | float:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalcError(f"the result has more than {MAX_INT_BITS} bits; refused")
    if isinstance(value, complex):
        raise CalcError("the result is a complex number; only real arithmetic is supported")
    if isinstance(value, float) and math.isinf(value):
        raise CalcError("the result is too large for a floating-point number")
    return value


def _format_number(value: int | float) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    return str(value)


def _calculator(expression: str) -> ToolOutput:
    try:
        value = evaluate_expression(expression)
    except CalcError as exc:
        return error_output("calculator.bad_expression", str(exc))
    return ToolOutput(_format_number(value), artifact=value)


calculator = Tool(
    name="calculator",
    description=(
        "Evaluate an arithmetic expression exactly. Use it for any arithmetic instead of computing in your head. "
        "Supports + - * / // % ** (or ^), parentheses, sqrt, log, exp, sin, cos, tan, abs, round, min, max, pi, e."
    ),
    parameters={
        "type": "object",
        # no example expression here: the 0.5B model copied one verbatim into unrelated tasks (session 9 traces)
        "properties": {
            "expression": {
                "type": "string",
                "description": "the arithmetic with the numbers of the question, in Python syntax (** for a power)",
            }
        },
        "required": ["expression"],
    },
    fn=_calculator,
    labels={"ko": "계산기", "en": "Calculator"},
    grounded=("expression",),
)


# -- Constitution search (chapter 9's retrieval) -----------------------------------------------------------------
_SEARCH_LOCK = threading.Lock()
_SEARCH_LABELS = {True: {"ko": "헌법 검색", "en": "Constitution search"}, False: {"ko": "문서 검색", "en": "Search"}}


def search_passages(query: str, *, kind: str = "best", top_k: int = SEARCH_TOP_K, corpus=None) -> list:
    """Chapter 9's retriever over `corpus` (default: the Constitution): [Passage] with scores, best first."""
    from engine.rag.pipeline import _passage, constitution, retriever_for

    corpus = corpus or constitution()
    with _SEARCH_LOCK:  # one retrieval at a time: the reranker is a shared torch model
        retriever = retriever_for(corpus, kind, int(top_k))
        nodes = retriever.retrieve(query)
    return [_passage(n) for n in nodes]


def format_passages(passages, per_passage: int = 500) -> str:
    """Passages as the model reads them: "[제70조] 제70조 · ...\n<text>"; each cut at `per_passage` characters."""
    blocks = []
    for p in passages:
        text = p.text if len(p.text) <= per_passage else p.text[:per_passage] + " [...]"
        blocks.append(f"[{p.doc_id}] {text}")
    return "\n\n".join(blocks)


def make_search_tool(
    *, kind: str = "best", top_k: int = SEARCH_TOP_K, corpus=None, name: str = "constitution_search"
) -> Tool:
    """A search tool over `corpus` (default: the Constitution) with chapter 9's retriever `kind` ("best": BM25 +
    the Korean encoder + the LM reranker, hit@1 .80; "chroma": dense only, .625, but 2 ms and no reranker load)."""

    def search(query: str) -> ToolOutput:
        from engine.core.errors import UserError

        if not isinstance(query, str) or not query.strip():
            return error_output("search.empty_query", "the query is empty; give Korean keywords, e.g. 대통령 임기")
        started = time.perf_counter()
        try:
            passages = search_passages(query.strip()[:1_000], kind=kind, top_k=top_k, corpus=corpus)
        except UserError as exc:  # a query with no letters, too long, ...
            return error_output(getattr(exc, "code", "search.failed"), str(exc))
        if not passages:
            return ToolOutput("No passage found. Try other Korean keywords.", artifact=[], seconds=_since(started))
        text, cut = cap(format_passages(passages))
        return ToolOutput(text, artifact=passages, truncated=cut, seconds=_since(started))

    where = "the Korean Constitution (대한민국헌법)" if corpus is None else "the uploaded documents"
    return Tool(
        name=name,
        description=(
            f"Search {where} and return the most relevant passages with their article numbers (e.g. [제70조]). "
            "Use it for any question about the Constitution; write the query in Korean."
        ),
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string", "description": "Korean keywords, e.g. 대통령 임기"}},
            "required": ["query"],
        },
        fn=search,
        labels=_SEARCH_LABELS[corpus is None],
    )


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


# -- read-only SQL over Chinook (chapter 6's executor) -----------------------------------------------------------
def schema_summary(db=None) -> str:
    """One line a table, "Album(AlbumId, Title, ArtistId)": the schema compactly, for the tool's description."""
    from engine.text2sql.databases import chinook

    db = db or chinook()
    return "; ".join(f"{t}({', '.join(cols)})" for t, cols in db.tables.items())


def format_rows(columns: list[str], rows: list[tuple], limit: int = MAX_SQL_ROWS) -> str:
    """Rows as a small pipe table the model can read; at most `limit` rows, then a count of the rest."""
    lines = [" | ".join(columns)]
    for row in rows[:limit]:
        lines.append(" | ".join("NULL" if v is None else str(v)[:80] for v in row))
    if len(rows) > limit:
        lines.append(f"[... {len(rows) - limit} more rows not shown]")
    return "\n".join(lines)


def make_sql_tool(db=None, *, timeout_s: float = 5.0, max_rows: int = 200) -> Tool:
    """Read-only SQL over `db` (default: Chinook) through chapter 6's executor: one SELECT, writes/ATTACH/PRAGMA
    denied by SQLite's authorizer, time- and row-limited. The schema is in the description."""
    from engine.text2sql.databases import chinook

    database = db or chinook()

    def sql_query(sql: str) -> ToolOutput:
        from engine.text2sql.executor import run_sql

        if not isinstance(sql, str):
            return error_output("tool.bad_arguments", "sql must be a string holding one SELECT statement")
        result = run_sql(database, sql, timeout_s=timeout_s, max_rows=max_rows)
        if not result.ok:
            return error_output(result.error, f"{result.detail} ({result.error})")
        if not result.rows:
            return ToolOutput("(no rows)", artifact=result, seconds=round(result.seconds, 4))
        text = format_rows(result.columns, result.rows)
        if result.truncated:
            text += f"\n[result cut at {max_rows} rows]"
        text, cut = cap(text)
        return ToolOutput(text, artifact=result, truncated=cut or result.truncated, seconds=round(result.seconds, 4))

    return Tool(
        name="sql_query",
        description=(
            f"Run one read-only SQLite SELECT on the {database.name} database and return the rows. "
            f"Use it only for questions about the {database.name} database. Tables: {schema_summary(database)}."
        ),
        parameters={
            "type": "object",
            "properties": {"sql": {"type": "string", "description": "one SELECT statement"}},
            "required": ["sql"],
        },
        fn=sql_query,
        labels={"ko": "SQL 조회", "en": "SQL query"},
    )


# -- the default set ---------------------------------------------------------------------------------------------
_DEFAULTS: dict[str, Tool] = {}


def constitution_search_tool() -> Tool:
    """The Constitution search tool with the project's best retriever (built once per process)."""
    if "constitution_search" not in _DEFAULTS:
        _DEFAULTS["constitution_search"] = make_search_tool()
    return _DEFAULTS["constitution_search"]


def sql_query_tool() -> Tool:
    """The read-only Chinook SQL tool (built once per process; building it reads the schema)."""
    if "sql_query" not in _DEFAULTS:
        _DEFAULTS["sql_query"] = make_sql_tool()
    return _DEFAULTS["sql_query"]


TOOL_NAMES = ("calculator", "constitution_search", "sql_query", "python_sandbox", "chart")


def default_tools(names: tuple[str, ...] | list[str] | None = None) -> list[Tool]:
    """The agent's tools by name (default: calculator, constitution_search, sql_query). Nothing heavy is loaded
    here: the search tool loads its retriever on the first call."""
    from engine.core.textinput import InputError

    chosen = list(names) if names is not None else ["calculator", "constitution_search", "sql_query"]
    out = []
    for name in chosen:
        if name == "calculator":
            out.append(calculator)
        elif name == "constitution_search":
            out.append(constitution_search_tool())
        elif name == "sql_query":
            out.append(sql_query_tool())
        elif name == "python_sandbox":
            from engine.agents.sandbox import python_sandbox_tool

            out.append(python_sandbox_tool())
        elif name == "chart":
            from engine.agents.charts import chart_tool

            out.append(chart_tool())
        else:
            raise InputError("input.unknown_choice", name="tool", value=name, choices=", ".join(TOOL_NAMES))
    return out
