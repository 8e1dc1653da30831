"""engine/agents/tools.py and charts.py: exact calculator values, refusals with reasons, read-only SQL through
chapter 6's executor, Constitution search through chapter 9's retriever, the observation cap, and call_tool's
promise never to raise."""

from __future__ import annotations

import pytest

from engine.agents.charts import chart_tool, make_chart
from engine.agents.tool import Tool, ToolOutput
from engine.agents.tools import (
    MAX_OBSERVATION_CHARS,
    CalcError,
    calculator,
    call_tool,
    cap,
    default_tools,
    evaluate_expression,
    make_search_tool,
    sql_query_tool,
)
from engine.core.textinput import InputError


# -- calculator --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("2 + 3 * 4", "14"),
        ("(1234 * 5678) / 2", "3503326"),
        ("2^10", "1024"),
        ("2**100", "1267650600228229401496703205376"),
        ("1,000 * 3", "3000"),
        ("7 // 2 + 7 % 2", "4"),
        ("-(2**3)", "-8"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(pi, 4)", "3.1416"),
        ("max(3, 9, 4) - min(3, 9, 4)", "6"),
        ("10 / 4", "2.5"),
        ("3 × 4 ÷ 2", "6"),
    ],
)
def test_calculator_values(expression, text):
    out = calculator(expression=expression)
    assert out.error is None and out.text == text


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('ls')", "is not allowed"),
        ("open('/etc/passwd').read()", "is not allowed"),
        ("(1).__class__", "is not arithmetic"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "only numbers"),
        ("1 / 0", "division by zero"),
        ("9**9**9", "too large"),
        ("10**5000", "bits"),
        ("2**4000 * 2**4000", "bits"),
        ("1e308 * 10", "too large"),
        ("exp(1000)", "too large"),
        ("log(0)", "math error"),
        ("2 +", "cannot parse"),
        ("", "empty"),
        ("1+" * 400 + "1", "characters long"),
        ("[1, 2]", "is not arithmetic"),
        ("lambda: 1", "is not arithmetic"),
    ],
)
def test_calculator_refuses_with_a_reason(expression, reason):
    out = calculator(expression=expression)
    assert out.error == "calculator.bad_expression"
    assert out.text.startswith("Error:") and reason in out.text


def test_evaluate_raises_calc_error():
    assert evaluate_expression("6*7") == 42
    with pytest.raises(CalcError):
        evaluate_expression("import os")


# -- call_tool and the cap ---------------------------------------------------------------------------------------
def test_call_tool_reports_bad_arguments_by_name():
    out = call_tool(calculator, {"expr": "1+1"})
    assert out.error == "tool.bad_arguments"
    assert "missing expression" in out.text and "unknown expr" in out.text
    assert call_tool(calculator, '{"expression": "1+1"}').text == "2"  # a JSON string, as some servers send
    assert call_tool(calculator, "{not json").error == "tool.bad_arguments"
    assert call_tool(calculator, ["1+1"]).error == "tool.bad_arguments"


def test_call_tool_turns_exceptions_and_megabytes_into_observations():
    def boom(x: str) -> ToolOutput:
        raise RuntimeError("disk on fire")

    def flood(x: str) -> str:
        return "y" * 3_000_000

    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    out = call_tool(Tool("boom", "raises", schema, boom), {"x": "1"})
    assert out.error == "tool.failed" and "RuntimeError: disk on fire" in out.text
    out = call_tool(Tool("flood", "3 MB", schema, flood), {"x": "1"})
    assert out.truncated and len(out.text) == MAX_OBSERVATION_CHARS
    assert out.text.endswith("[... cut: showing 2,000 of 3,000,000 characters]")


def test_cap():
    assert cap("short") == ("short", False)
    text, cut = cap("z" * 5000, 100)
    assert cut and len(text) == 100 and "of 5,000 characters" in text


def test_default_tools():
    assert [t.name for t in default_tools()] == ["calculator", "constitution_search", "sql_query"]
    names = [t.name for t in default_tools(["python_sandbox", "chart"])]
    assert names == ["python_sandbox", "chart"]
    with pytest.raises(InputError):
        default_tools(["rm_rf"])
    for t in default_tools():
        s = t.schema()
        assert s["type"] == "function" and s["function"]["parameters"]["type"] == "object"
        assert t.labels["ko"] and t.labels["en"]


# -- SQL ---------------------------------------------------------------------------------------------------------
def test_sql_rows_and_schema_in_the_description():
    tool = sql_query_tool()
    assert "Track(TrackId, Name, AlbumId" in tool.description
    out = call_tool(tool, {"sql": "SELECT Name FROM Genre ORDER BY GenreId LIMIT 2"})
    assert out.error is None and out.text == "Name\nRock\nJazz"
    assert out.artifact.rows == [("Rock",), ("Jazz",)]


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("DELETE FROM Track", "text2sql.exec.denied"),
        ("DROP TABLE Track", "text2sql.exec.denied"),
        ("SELECT 1; DROP TABLE Track", "text2sql.exec.not_one_statement"),
        ("SELECT nope FROM Track", "text2sql.exec.sql_error"),
        ("", "text2sql.exec.empty"),
    ],
)
def test_sql_refusals_are_observations(sql, code):
    out = call_tool(sql_query_tool(), {"sql": sql})
    assert out.error == code and out.text.startswith("Error:")


def test_sql_big_results_are_cut_for_the_model():
    out = call_tool(sql_query_tool(), {"sql": "SELECT * FROM Track"})
    assert out.truncated and len(out.text) <= MAX_OBSERVATION_CHARS
    assert len(out.artifact.rows) == 200  # the page still gets the fetched rows


# -- Constitution search -----------------------------------------------------------------------------------------
@pytest.mark.slow  # an upload corpus builds its own Korean encoder index (minutes on a loaded 2-core machine)
def test_search_over_a_small_corpus_returns_article_ids():
    from engine.rag.documents import constitution_passages
    from engine.rag.pipeline import upload_corpus

    wanted = {"제1조", "제67조", "제70조", "제41조"}
    corpus = upload_corpus([p for p in constitution_passages() if p.doc_id in wanted])
    tool = make_search_tool(kind="best", top_k=2, corpus=corpus, name="document_search")
    out = call_tool(tool, {"query": "대통령의 임기는 5년"})
    assert out.error is None
    assert out.text.startswith("[제") and len(out.artifact) == 2
    assert {p.doc_id for p in out.artifact} <= wanted
    assert call_tool(tool, {"query": "  "}).error == "search.empty_query"


# -- chart -------------------------------------------------------------------------------------------------------
def test_chart_from_lists_and_from_sql():
    out = make_chart("bar", x=["a", "b", "c"], y=[3, 9, 1], title="t")
    assert out.error is None and out.artifact.data[0].type == "bar"
    assert "Largest: 9 at b; smallest: 1 at c" in out.text
    out = call_tool(chart_tool(), {"chart_type": "pie", "sql": "SELECT Name, GenreId FROM Genre LIMIT 3"})
    assert out.error is None and list(out.artifact.data[0].labels) == ["Rock", "Jazz", "Metal"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"chart_type": "radar", "x": [1], "y": [1]}, "chart.bad_type"),
        ({"chart_type": "bar", "x": [1, 2], "y": [1]}, "chart.bad_data"),
        ({"chart_type": "bar", "x": ["a"], "y": ["many"]}, "chart.bad_data"),
        ({"chart_type": "bar"}, "chart.bad_data"),
        ({"chart_type": "pie", "x": ["a", "b"], "y": [1, -1]}, "chart.bad_data"),
        ({"chart_type": "line", "sql": "DELETE FROM Track"}, "chart.bad_sql"),
        ({"chart_type": "line", "sql": "SELECT Name FROM Genre"}, "chart.bad_sql"),
    ],
)
def test_chart_bad_input_is_an_observation(kwargs, code):
    out = call_tool(chart_tool(), kwargs)
    assert out.error == code and out.text.startswith("Error:")
