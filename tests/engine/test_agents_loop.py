"""The agent loop: parsing native and ReAct turns, schema checks with repair, and every way a run can go wrong
(malformed calls, unknown tools, a loop, tools that raise / time out / return megabytes, max steps, a Stop, a task
in another language) — first with scripted model turns (the parser and the guards, deterministic), then against
the real llama.cpp server with Qwen2.5-Coder-0.5B (behaviour only, never facts the model may not know)."""

from __future__ import annotations

import json
import time

import pytest

from engine.agents.loop import (
    AgentError,
    Parsed,
    Turn,
    cap_observation,
    parse_native,
    parse_react,
    repair_arguments,
    run_agent,
    task_language,
    validate_arguments,
)
from engine.agents.tool import Tool, ToolOutput
from engine.agents.tools import evaluate_expression

ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
    "additionalProperties": False,
}
ADD = Tool("add", "Add two numbers a and b.", ADD_SCHEMA, lambda a, b: ToolOutput(str(a + b), a + b))
ECHO = Tool(
    "echo",
    "Echo a text.",
    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    lambda text: text,
)


def _boom(text: str):
    raise RuntimeError("disk on fire")


def _slow(text: str):
    time.sleep(1.0)
    return "late"


BOOM = Tool("boom", "Always fails.", ECHO.parameters, _boom)
SLOW = Tool("slow", "Takes a second.", ECHO.parameters, _slow)
HUGE = Tool("huge", "Returns 5 MB.", ECHO.parameters, lambda text: "x" * 5_000_000)


def scripted(*texts: str):
    """A model that says the given texts in turn (and records what it was shown)."""
    seen: list[list[dict]] = []
    it = iter(texts)

    def model(messages, tools, stop):
        seen.append([dict(m) for m in messages])
        return Turn(next(it), [], 10, 5)

    model.seen = seen
    return model


def call(name: str, **args) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


# --- parsing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, tool, args",
    [
        ('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>', "add", {"a": 1, "b": 2}),
        ('```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```', "add", {"a": 1, "b": 2}),
        ('{"name": "add", "parameters": {"a": 1, "b": 2}}', "add", {"a": 1, "b": 2}),
        ("<tool_call>{'name': 'add', 'arguments': {'a': 1, 'b': 2,}}</tool_call>", "add", {"a": 1, "b": 2}),
        ('Let me add.\n<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}', "add", {"a": 1, "b": 2}),
    ],
)
def test_native_calls_are_read(text, tool, args):
    p = parse_native(text)
    assert (p.tool, p.arguments, p.problem) == (tool, args, None)


def test_native_text_is_an_answer_and_garbage_is_malformed():
    assert parse_native("답은 3입니다.").answer == "답은 3입니다."
    assert parse_native('<tool_call>{"name": "add", "arguments": {"a": 1,</tool_call>').problem == (
        "agents.step.malformed_call"
    )
    assert parse_native("<tool_call>[1, 2]</tool_call>").problem == "agents.step.malformed_call"
    # seen on the real server: an unclosed bare call is a malformed call, not the final answer
    unclosed = '{"name": "calculator", "arguments": {"expression": "(45 + 55) * 12"}'
    assert parse_native(unclosed).problem == "agents.step.malformed_call"


@pytest.mark.parametrize(
    "text, tool, args",
    [
        ('Thought: add them\nAction: add\nAction Input: {"a": 1, "b": 2}', "add", {"a": 1, "b": 2}),
        ('Thought: x\nAction: add\nAction Input: {"a": 1, "b": 2}\nObservation: 3\nFinal Answer: 3', "add", None),
        ("Thought: say it\nAction: echo\nAction Input: 안녕", "echo", {"text": "안녕"}),
        ('Action: echo("hi")', "echo", {"text": "hi"}),
        ('Thought: x\nAction: `add`\nAction Input: ```json\n{"a": 1, "b": 2}\n```', "add", {"a": 1, "b": 2}),
    ],
)
def test_react_calls_are_read(text, tool, args):
    p = parse_react(text, {"add": ADD, "echo": ECHO})
    assert p.tool == tool and p.problem is None
    assert p.arguments == (args if args is not None else {"a": 1, "b": 2})


def test_react_final_answer_and_format_problems():
    tools = {"add": ADD, "echo": ECHO}
    p = parse_react("Thought: I know it\nFinal Answer: 3입니다", tools)
    assert p.answer == "3입니다" and p.thought == "I know it"
    assert parse_react("Action: add\nAction Input: not json", tools).problem == "agents.step.malformed_call"
    assert parse_react("그냥 답합니다", tools).problem == "agents.step.no_format"


# --- arguments -------------------------------------------------------------------------------------------------


def test_repair_renames_one_misnamed_argument_and_reads_numbers():
    args, note = repair_arguments({"a": "3", "second": 4}, ADD_SCHEMA)
    assert args == {"a": 3.0, "b": 4} and "second -> b" in note and "'3' -> 3" in note
    args, note = repair_arguments('{"a": 1, "b": 2}', ADD_SCHEMA)
    assert args == {"a": 1, "b": 2} and note == "string -> object"
    assert repair_arguments({"a": 1, "b": 2}, ADD_SCHEMA) == ({"a": 1, "b": 2}, "")


def test_validation_says_what_is_wrong():
    assert validate_arguments({"a": 1, "b": 2}, ADD_SCHEMA) is None
    assert "'b' is a required property" in validate_arguments({"a": 1}, ADD_SCHEMA)
    assert "'x' is not of type 'number'" in validate_arguments({"a": "x", "b": 2}, ADD_SCHEMA)
    assert "Additional properties" in validate_arguments({"a": 1, "b": 2, "c": 3}, ADD_SCHEMA)


def test_cap_and_language():
    assert cap_observation("abc", 10) == "abc"
    assert cap_observation("x" * 50, 10).startswith("x" * 10 + "\n… [cut: 50 characters")
    assert task_language("대통령 임기는 몇 년인가요?") == "ko"
    assert task_language("What is 17 times 23?") == "en"
    assert task_language("大統領の任期は何年ですか") == "other"


# --- the loop, scripted ----------------------------------------------------------------------------------------


def test_a_call_then_an_answer():
    model = scripted(call("add", a=17, b=23), "17 더하기 23은 40입니다.")
    run = run_agent("17 더하기 23은?", [ADD], model=model)
    assert run.error is None and run.answer == "17 더하기 23은 40입니다."
    trace = [(s.tool, s.arguments, s.observation) for s in run.steps]
    assert trace == [("add", {"a": 17, "b": 23}, "40"), (None, {}, "")]
    assert run.steps[0].artifact == 40 and run.tokens_in == 20 and run.tokens_out == 10
    assert run.tool_calls == [{"name": "add", "arguments": {"a": 17, "b": 23}}]
    c = run.contract()
    assert set(c) >= {"task", "answer", "steps", "seconds", "error"}
    assert c["steps"] == [{"tool": "add", "arguments": {"a": 17, "b": 23}, "observation_chars": 2}]
    # the model saw the observation as a tool message after its own call
    assert model.seen[1][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "40"}


def test_bad_arguments_are_fed_back_and_the_model_can_fix_them():
    model = scripted(call("add", a=1), call("add", a=1, b=2), "3")
    run = run_agent("1+2?", [ADD], model=model)
    assert run.answer == "3" and run.steps[0].error == "agents.step.bad_arguments"
    assert "'b' is a required property" in model.seen[1][-1]["content"]
    assert run.tool_calls == [{"name": "add", "arguments": {"a": 1, "b": 2}}]


def test_unknown_tool_and_malformed_call_are_steps_with_codes():
    model = scripted(call("multiply", a=1, b=2), "<tool_call>{oops</tool_call>", "모르겠습니다")
    run = run_agent("1*2?", [ADD], model=model)
    assert [s.error for s in run.steps] == ["agents.step.unknown_tool", "agents.step.malformed_call", None]
    assert "there is no tool 'multiply'; use one of: add" in run.steps[0].observation
    assert run.answer == "모르겠습니다" and run.tool_calls == []


def test_a_repeated_call_ends_the_run_after_one_last_question_without_tools():
    model = scripted(*[call("add", a=1, b=2)] * 5)
    run = run_agent("1+2?", [ADD], model=model, max_steps=6)
    assert run.error == "agents.run.loop" and run.answer is None and len(run.steps) == 3
    assert [s.error for s in run.steps] == [None, "agents.step.repeated_call", "agents.step.forced_answer"]
    assert "you already called add" in run.steps[1].observation and "3" in run.steps[1].observation
    assert "repeated the same call to add" in run.message
    assert model.seen[2][-1]["content"].startswith("Stop calling tools")  # the last turn: no tools offered
    # a model that answers when asked: the answer is kept, and so is the code that says how the run ended
    run = run_agent("1+2?", [ADD], model=scripted(call("add", a=1, b=2), call("add", a=1, b=2), "3입니다"))
    assert run.answer == "3입니다" and run.error == "agents.run.loop"
    run = run_agent("1+2?", [ADD], model=scripted(call("add", a=1, b=2), call("add", a=1, b=2)), finalize=False)
    assert run.answer is None and len(run.steps) == 2


def test_tools_that_raise_time_out_or_return_megabytes():
    model = scripted(call("boom", text="a"), call("slow", text="b"), call("huge", text="c"), "끝")
    run = run_agent("try them", [BOOM, SLOW, HUGE], model=model, tool_timeout_s=0.2)
    boom, slow, huge, _end = run.steps
    assert boom.error == "agents.step.tool_failed" and "RuntimeError: disk on fire" in boom.observation
    assert slow.error == "agents.step.tool_timeout" and "did not finish within 0.2 s" in slow.observation
    assert huge.error is None and huge.observation_chars == 5_000_000 and len(huge.observation) < 2_000
    assert "cut: 5,000,000 characters" in huge.observation
    assert run.answer == "끝" and run.error is None


def test_max_steps_and_a_stop_keep_the_trace():
    run = run_agent("count", [ECHO], model=scripted(*[call("echo", text=str(i)) for i in range(9)]), max_steps=3)
    assert run.error == "agents.run.max_steps" and len(run.steps) == 4 and run.answer is None  # 3 + the last ask
    stops = iter([False, False, True])
    run = run_agent(
        "count", [ECHO], model=scripted(*[call("echo", text=str(i)) for i in range(9)]), should_stop=lambda: next(stops)
    )
    assert run.stopped and run.error == "agents.run.cancelled" and len(run.steps) == 2
    assert [s.observation for s in run.steps] == ["0", "1"]


def test_react_mode_writes_the_observation_itself():
    model = scripted('Thought: add\nAction: add\nAction Input: {"a": 2, "b": 3}', "Thought: done\nFinal Answer: 5")
    run = run_agent("2+3?", [ADD], mode="react", model=model)
    assert run.answer == "5" and run.plan == "add"
    assert "- add: Add two numbers a and b." in model.seen[0][0]["content"]
    assert model.seen[1][-1] == {"role": "user", "content": "Observation: 5"}


def test_requests_the_loop_refuses():
    for task, kwargs, code in [
        ("", {}, "agents.empty_task"),
        ("x" * 3000, {}, "agents.task_too_long"),
        ("hi", {"mode": "magic"}, "input.unknown_choice"),
        ("hi", {"max_steps": 0}, "input.out_of_range"),
    ]:
        with pytest.raises(AgentError) as exc:
            run_agent(task, [ADD], model=scripted("x"), **kwargs)
        assert exc.value.code == code
    with pytest.raises(AgentError) as exc:
        run_agent("hi", [], model=scripted("x"))
    assert exc.value.code == "agents.no_tools"
    with pytest.raises(AgentError) as exc:
        run_agent("hi", [ADD, ADD], model=scripted("x"))
    assert exc.value.code == "agents.duplicate_tool"


def test_memory_goes_before_the_task_and_gets_the_answer():
    from engine.agents.memory import WindowMemory

    mem = WindowMemory(k=2)
    mem.add("내 이름은 민수야", "반가워요, 민수님")
    model = scripted("민수님이에요")
    run = run_agent("내 이름이 뭐지?", [ECHO], model=model, memory=mem)
    assert [m["content"] for m in model.seen[0][1:]] == ["내 이름은 민수야", "반가워요, 민수님", "내 이름이 뭐지?"]
    assert run.answer == "민수님이에요" and mem.turns[-1].assistant == "민수님이에요"


# --- the router: a fallback for a first turn that is not a usable call -------------------------------------------


@pytest.mark.parametrize(
    "text, tool, args",
    [
        # Qwen2.5-Coder-1.5B copying the template's <tools> block (dev traces, session 10)
        ('<tools>\n  <function name="add" arguments=\'{"a": 1, "b": 2}\'/>\n</tools>', "add", {"a": 1, "b": 2}),
        ('<tools></tools>\n\n{{"name": "add", "arguments": {"a": 1, "b": 2}}}', "add", {"a": 1, "b": 2}),
    ],
)
def test_parse_native_reads_the_larger_models_slips(text, tool, args):
    parsed = parse_native(text)
    assert (parsed.tool, parsed.arguments, parsed.problem) == (tool, args, None)


def test_an_empty_tools_block_is_a_malformed_call_not_an_answer():
    assert parse_native("<tools></tools>") == Parsed(problem="agents.step.malformed_call")


class RoutedModel:
    """A scripted model with a router, as the server model has: turns in order, one routing answer, and a forced
    call's arguments (what the server's grammar would return)."""

    def __init__(self, texts, route_to="add", forced_args=None):
        self.texts, self.route_to, self.forced_args = iter(texts), route_to, forced_args or {"a": 2, "b": 3}
        self.routes, self.forced = [], []

    def __call__(self, messages, tools, stop, force=None):
        if force:
            self.forced.append(force)
            return Turn("", [(force, self.forced_args)], 7, 3)
        return Turn(next(self.texts), [], 10, 5)

    def route(self, messages, tools):
        self.routes.append([t.name for t in tools])
        return self.route_to, Turn(json.dumps({"step": self.route_to}), [], 4, 2)


def test_the_router_steps_in_when_the_first_turn_is_not_a_call():
    model = RoutedModel(["<tools></tools>", "5입니다"])
    run = run_agent("2 더하기 3은?", [ADD, ECHO], model=model)
    first = run.steps[0]
    assert model.routes == [["add", "echo"]] and model.forced == ["add"]
    assert (first.routed, first.tool, first.arguments, first.observation) == ("add", "add", {"a": 2, "b": 3}, "5")
    assert (first.tokens_in, first.tokens_out) == (10 + 4 + 7, 5 + 2 + 3)  # the router's and forced turn's count
    assert "[router: add]" in first.raw and run.answer == "5입니다" and run.error is None


def test_the_router_is_not_asked_when_the_first_turn_is_a_clean_call():
    model = RoutedModel([call("add", a=1, b=1), "2"])
    run = run_agent("1 더하기 1은?", [ADD], model=model)
    assert model.routes == [] and run.steps[0].routed == "" and run.answer == "2"


def test_route_off_and_a_router_that_says_answer():
    model = RoutedModel(["<tools></tools>", "안녕하세요"])
    run = run_agent("안녕", [ADD], model=model, route=False)
    assert model.routes == [] and run.steps[0].error == "agents.step.malformed_call" and run.answer == "안녕하세요"
    model = RoutedModel(["<tools></tools>", "안녕하세요"], route_to="answer")
    run = run_agent("안녕", [ADD], model=model)
    assert model.forced == [] and run.steps[0].routed == "answer" and run.answer == "안녕하세요"


def test_route_messages_hold_the_question_and_results_not_the_schemas():
    from engine.agents.loop import route_messages, route_schema

    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "2 더하기 3은?"},
        {"role": "assistant", "content": call("add", a=2, b=3)},
        {"role": "tool", "content": "5"},
    ]
    routed = route_messages(messages, [ADD, ECHO])
    assert routed[0]["content"].count("\n- ") == 3 and "additionalProperties" not in routed[0]["content"]
    assert (
        "Question: 2 더하기 3은?" in routed[1]["content"]
        and 'add({"a": 2, "b": 3}) returned: 5' in routed[1]["content"]
    )
    assert route_schema(["add", "echo"])["properties"]["step"]["enum"] == ["add", "echo", "answer"]


# --- the loop against the real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path_factory.mktemp("agent-server")) as cache:
        yield cache


@pytest.mark.server
@pytest.mark.parametrize("mode", ["native", "react"])
def test_real_server_runs_the_loop_to_an_end(server, mode):
    """Whatever the 0.5B model does, the run ends with an answer or a coded error, every step is accounted for
    (tokens from the server, seconds), and any executed call passed the schema."""
    seen = []
    run = run_agent(
        "17 더하기 23은 얼마인가요? 계산에는 add 도구를 쓰세요.",
        [ADD],
        mode=mode,
        role="instruct",
        max_steps=2,
        on_step=seen.append,
    )
    assert run.steps and len(run.steps) <= 3 and seen == run.steps  # 2 steps + maybe the last ask
    assert run.answer is not None or run.error is not None  # an answer, a code, or both (a forced answer)
    assert all(s.tokens_in > 0 and s.seconds > 0 for s in run.steps)
    for s in run.steps:
        if s.tool == "add" and s.error is None:
            assert validate_arguments(s.arguments, ADD_SCHEMA) is None
            assert s.observation == str(s.arguments["a"] + s.arguments["b"])


@pytest.mark.server
def test_real_server_cancel_and_a_task_in_another_language(server):
    stops = iter([False, True, True])
    run = run_agent(
        "What is 12 plus 30? Use the add tool.", [ADD], role="instruct", should_stop=lambda: next(stops), max_steps=4
    )
    assert run.language == "en"
    assert len(run.steps) == 1  # the first turn happened, then the Stop (or the answer); its trace is kept
    if run.answer is None:
        assert run.stopped and run.error == "agents.run.cancelled"
    run = run_agent("大統領の任期は何年ですか", [ECHO], role="instruct", max_steps=2)
    assert run.language == "other" and run.steps and (run.answer or run.error)


# --- grounded arguments ------------------------------------------------------------------------------------------

CALC = Tool(
    "calc",
    "Evaluate an expression.",
    {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    lambda expression: ToolOutput(str(evaluate_expression(expression))),
    grounded=("expression",),
)
LOOKUP = Tool("lookup", "Look up a fact.", ECHO.parameters, lambda text: "임기는 5년")


def test_a_call_with_made_up_numbers_is_not_run_and_the_model_is_told():
    model = scripted(
        call("calc", expression="2019 - 1975"), call("lookup", text="임기"), call("calc", expression="5+4")
    )
    run = run_agent("임기에 4를 더하면?", [CALC, LOOKUP], model=model, finalize=False, max_steps=3)
    first = run.steps[0]
    assert (first.tool, first.error, first.error_args) == (
        "calc",
        "agents.step.ungrounded",
        {"name": "calc", "numbers": "2019, 1975"},
    )
    assert "2019, 1975" in first.observation and first.observation_chars == 0
    assert [s.error for s in run.steps[1:]] == [None, None] and run.steps[2].observation == "9"  # 5 came from lookup


def test_the_router_steps_in_for_a_later_ungrounded_call():
    model = RoutedModel([call("add", a=2, b=3), call("calc", expression="77 * 2")], route_to="lookup")
    model.forced_args = {"text": "임기"}
    run = run_agent("2 더하기 3은?", [ADD, CALC, LOOKUP], model=model, finalize=False, max_steps=2)
    assert model.routes == [["add", "calc", "lookup"]] and run.steps[1].routed == "lookup"
    assert (run.steps[1].tool, run.steps[1].observation) == ("lookup", "임기는 5년")


def test_a_later_answer_is_not_routed():
    # asked "is anything missing?" after an answer, the 1.5B router picked another tool nearly every time (dev)
    model = RoutedModel([call("add", a=2, b=3), "5입니다"], route_to="add")
    run = run_agent("2 더하기 3은?", [ADD], model=model)
    assert model.routes == [] and run.answer == "5입니다"


class PlannedModel(RoutedModel):
    """A routed model that also plans (as the server model does)."""

    def __init__(self, texts, plan, **kw):
        super().__init__(texts, **kw)
        self.made, self.asked = plan, []

    def plan(self, task, system=None, tools=None):
        return self.made, Turn("{}", [], 20, 8)

    def __call__(self, messages, tools, stop, force=None):
        self.asked.append((messages[-1]["content"], force))
        if force == "calc":
            return Turn("", [("calc", {"expression": "5 + 4"})], 7, 3)
        return super().__call__(messages, tools, stop, force)


def test_a_plan_of_two_lookups_and_arithmetic_is_carried_out_in_order():
    from engine.agents.planning import Plan

    plan = Plan(["대통령 임기", "국회의원 임기"], "대통령 임기 + 국회의원 임기")
    model = PlannedModel([call("lookup", text="대통령"), call("lookup", text="국회의원"), "9년입니다"], plan)
    run = run_agent("대통령 임기와 국회의원 임기를 더하면?", [CALC, LOOKUP], model=model)
    assert run.parts == ["대통령 임기", "국회의원 임기", "대통령 임기 + 국회의원 임기"]
    assert [s.planned for s in run.steps] == [*run.parts, ""]
    assert [s.tool for s in run.steps] == ["lookup", "lookup", "calc", None] and run.answer == "9년입니다"
    # each lookup is asked on its own; the arithmetic is forced on the calculator (its numbers come from results)
    assert [a for a, _ in model.asked[:2]] == ["대통령 임기", "국회의원 임기"]
    assert model.asked[2][1] == "calc" and run.steps[2].observation == "9"
    assert run.steps[0].tokens_in == 10 + 20  # the plan's tokens count for the first step


def test_a_one_part_plan_changes_nothing_and_a_lookup_without_a_call_is_skipped():
    from engine.agents.planning import Plan

    model = PlannedModel([call("add", a=2, b=3), "5"], Plan([], "2 + 3"))
    run = run_agent("2 더하기 3은?", [ADD], model=model)
    assert [s.planned for s in run.steps] == ["", ""] and run.answer == "5"
    model = PlannedModel(["모르겠어요", "<tools></tools>", "답"], Plan(["a", "b"], ""), route_to="answer")
    run = run_agent("a와 b는?", [ADD, LOOKUP], model=model, max_steps=3, finalize=False)
    assert run.steps[0].error == "agents.step.no_call" and run.steps[0].error_args == {"part": "a"}
    assert run.answer == "답"
    assert (
        run_agent("x", [ADD], model=PlannedModel(["x"], Plan(["a", "b"], "")), plan=False, route=False).steps[0].planned
        == ""
    )


def test_no_plan_for_a_follow_up_that_leans_on_the_memory():
    from engine.agents.memory import WindowMemory
    from engine.agents.planning import Plan

    memory = WindowMemory()
    memory.add("대통령 임기는?", "5년")
    model = PlannedModel(["10년"], Plan(["a", "b"], "a + b"), route_to="answer")
    run = run_agent("그걸 두 배 하면?", [CALC, LOOKUP], model=model, memory=memory, route=False)
    assert run.parts == [] and run.answer == "10년"
