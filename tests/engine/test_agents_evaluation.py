"""Agent evaluation: the shipped task suite, answer checks, trajectory matching (ours, cross-checked with agentevals'
trajectory match evaluators on the same cases), the metrics, and one task through the real server."""

from __future__ import annotations

import pytest

from engine.agents.evaluation import (
    MATCH_MODES,
    SPLITS,
    answer_matches,
    as_messages,
    evaluate,
    load_tasks,
    numbers_in,
    read_tasks_file,
    trajectory_match,
)
from engine.agents.loop import Turn
from engine.agents.tool import Tool, ToolOutput
from engine.core.errors import UserError

# (actual, reference): the verdicts of strict / unordered / subset / superset
CASES = [
    ([], []),
    (["calculator"], ["calculator"]),
    ([], ["calculator"]),
    (["calculator"], []),
    (["sql_query", "calculator"], ["sql_query", "calculator"]),
    (["calculator", "sql_query"], ["sql_query", "calculator"]),
    (["sql_query"], ["sql_query", "calculator"]),
    (["sql_query", "sql_query", "calculator"], ["sql_query", "calculator"]),
    (["sql_query", "calculator"], ["sql_query", "sql_query", "calculator"]),
    (["constitution_search", "calculator"], ["sql_query", "calculator"]),
    (["calculator", "calculator"], ["calculator"]),
    (["constitution_search", "constitution_search", "calculator"], ["constitution_search", "calculator"]),
]
EXPECTED = {  # hand-derived verdicts for the cases above, in MATCH_MODES order
    0: (True, True, True, True),
    1: (True, True, True, True),
    2: (False, False, True, False),
    3: (False, False, False, True),
    4: (True, True, True, True),
    5: (False, True, True, True),
    6: (False, False, True, False),
    7: (False, False, False, True),
    8: (False, False, True, False),
    9: (False, False, False, False),
    10: (False, False, False, True),
    11: (False, False, False, True),
}


@pytest.mark.parametrize("i", range(len(CASES)))
def test_trajectory_match_verdicts(i):
    actual, ref = CASES[i]
    assert tuple(trajectory_match(actual, ref, m) for m in MATCH_MODES) == EXPECTED[i]


@pytest.mark.parametrize("mode", MATCH_MODES)
def test_agentevals_gives_the_same_verdicts(mode):
    from agentevals.trajectory.match import create_trajectory_match_evaluator

    evaluator = create_trajectory_match_evaluator(trajectory_match_mode=mode, tool_args_match_mode="ignore")
    for actual, ref in CASES:
        theirs = evaluator(outputs=as_messages("q", actual, "a"), reference_outputs=as_messages("q", ref, "a"))
        assert bool(theirs["score"]) == trajectory_match(actual, ref, mode), (mode, actual, ref)


def test_unknown_match_mode():
    with pytest.raises(UserError) as exc:
        trajectory_match([], [], "fuzzy")
    assert exc.value.code == "agents.eval.unknown_mode"


@pytest.mark.parametrize(
    "answer, expected, check, ok",
    [
        ("대통령의 임기는 5년입니다.", "5", "number", True),
        ("헌법 제70조에 따르면 임기는 5년이다", "70", "number", False),  # an article number is not the answer
        ("제70조: 5년", "5", "number", True),
        ("결과는 6,912입니다", "6912", "number", True),
        ("약 1.99달러", "1.99", "number", True),
        ("답: 391", "392", "number", False),
        ("대한민국은 민주 공화국이다", "민주공화국", "text", True),
        ("대한민국은 공화국", "민주공화국", "text", False),
        (None, "5", "number", False),
        ("", "5", "number", False),
    ],
)
def test_answer_matches(answer, expected, check, ok):
    assert answer_matches(answer, expected, check) is ok


def test_a_number_the_task_mentions_must_be_the_answers_last():
    task = "9801을 99로 나누면 얼마인가요?"
    assert not answer_matches("9801을 99로 나누면 100.", "99", "number", task)
    assert answer_matches("9801을 99로 나누면 99입니다.", "99", "number", task)
    assert answer_matches("48 곱하기 52는 2496입니다.", "2496", "number", "48 곱하기 52는 얼마인가요?")


def test_numbers_in():
    assert numbers_in("제1조 제2항에 따라 1,024와 -3.5") == [1024.0, -3.5]


def test_the_shipped_suite():
    dev, held = load_tasks("dev"), load_tasks("heldout")
    assert len(dev) >= 12 and len(held) == 30 and SPLITS == ("dev", "heldout")
    assert not {t.task for t in dev} & {t.task for t in held}  # no task in both
    assert len({t.id for t in dev + held}) == len(dev + held)
    tools = {"calculator", "constitution_search", "sql_query"}
    for t in dev + held:
        assert 1 <= t.calls <= 3 and set(t.trajectory) <= tools, t.id
        assert t.check in ("number", "text") and any("\uac00" <= c <= "\ud7a3" for c in t.task), t.id
        if t.check == "number":
            float(t.answer)
    assert {t.calls for t in held} == {1, 2, 3}
    with pytest.raises(UserError) as exc:
        load_tasks("test")
    assert exc.value.code == "agents.eval.unknown_split"


def test_tasks_file(tmp_path):
    f = tmp_path / "tasks.txt"
    f.write_text("# comment\n17 곱하기 23은?\n\n헌법상 대통령 임기는?\n", encoding="utf-8")
    assert read_tasks_file(f) == ["17 곱하기 23은?", "헌법상 대통령 임기는?"]
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError) as exc:
        read_tasks_file(tmp_path / "empty.txt")
    assert exc.value.code == "agents.eval.no_tasks"
    with pytest.raises(UserError):
        read_tasks_file(tmp_path / "missing.txt")


def fake_tools():
    """Tiny stand-ins with the suite's tool names (the loop and scoring are under test here, not the tools)."""
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    return [Tool(n, n, schema, lambda q: ToolOutput("42")) for n in ("calculator", "sql_query", "constitution_search")]


def test_evaluate_scores_runs_and_stops_with_partial_rows():
    # a scripted model: call calculator once, then answer with the task's expected number for d01 only
    def model(messages, tools, stop):
        if messages[-1]["role"] == "user":
            return Turn('<tool_call>{"name": "calculator", "arguments": {"q": "x"}}</tool_call>', [], 100, 10)
        return Turn("391입니다" if "17 곱하기 23" in messages[1]["content"] else "모름", [], 120, 5)

    rows = []
    report = evaluate("dev", tools=fake_tools(), model=model, limit=3, on_row=rows.append)
    s = report.summary()
    assert [r.id for r in rows] == ["d01", "d02", "d03"] and s["tasks"] == 3
    assert [r.success for r in rows] == [True, False, False] and s["success_rate"] == pytest.approx(1 / 3)
    assert all(r.calls == ["calculator"] and r.match["strict"] and r.steps == 2 and r.tokens == 235 for r in rows)
    assert s["match_rates"] == {m: 1.0 for m in MATCH_MODES} and s["mean_steps"] == 2
    assert set(report.as_dict()) >= {"split", "mode", "summary", "results"}
    from engine.core.progress import Cancelled

    stops = iter([False, True])
    with pytest.raises(Cancelled) as exc:
        evaluate("dev", tools=fake_tools(), model=model, should_stop=lambda: next(stops))
    assert [r.id for r in exc.value.partial] == ["d01"]


@pytest.mark.server
def test_one_task_through_the_real_server(tmp_path_factory):
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path_factory.mktemp("eval-server")):
        report = evaluate("dev", ids=["d01"], max_steps=3)
    (row,) = report.results
    assert row.id == "d01" and row.steps >= 1 and row.tokens > 0 and row.seconds > 0
    assert set(row.match) == set(MATCH_MODES) and isinstance(row.success, bool)


def test_cli_contract_line_for_a_task_the_loop_refuses(tmp_path, capsys):
    """`agent --json --tasks-file F`: one JSON object per line with the contract's keys; a task the loop refuses
    (too long) is a line with its error code, and the other lines still come (no model call is needed here)."""
    import json

    from engine.__main__ import main

    f = tmp_path / "tasks.txt"
    f.write_text("x" * 2500 + "\n" + "y" * 2600 + "\n", encoding="utf-8")
    code = main(["agent", "--json", "--tasks-file", str(f)])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(lines) == 2
    for line in lines:
        assert set(line) >= {"task", "answer", "steps", "seconds", "error"}
        assert line["error"] == "agents.task_too_long" and line["steps"] == [] and line["answer"] is None
