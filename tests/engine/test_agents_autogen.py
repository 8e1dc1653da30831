"""engine/agents/autogen_flows.py on AutoGen AgentChat 0.7.

Default tests use real AutoGen objects that need no model: CodeExecutorAgent (no model client: it runs the code
blocks of the messages it gets) over our SandboxCodeExecutor, our tools as AutoGen tools, the transcript, the
termination and the should_stop hook. The flows against the real local server are marked slow (a handful of model
calls each on 2 cores) and assert behaviour only: the flow ran, the expected speakers spoke, code ran in the
sandbox, termination worked — never what a 0.5B model answered."""

from __future__ import annotations

import pytest

from engine.agents import autogen_flows as flows
from engine.agents.sandbox import network_isolation
from engine.agents.tools import calculator
from engine.core.aio import run_coroutine
from engine.core.textinput import InputError

CODE_TASK = "```python\nprint(sum(i * i for i in range(1, 11)))\n```"


def _executor_team(max_turns: int):
    """A real AutoGen team with one CodeExecutorAgent (no model) running our sandbox."""
    from autogen_agentchat.agents import CodeExecutorAgent
    from autogen_agentchat.teams import RoundRobinGroupChat

    def build(result, token):
        executor = flows.sandbox_executor()
        result.sandbox_runs = executor.runs
        agent = CodeExecutorAgent("executor", code_executor=executor, supported_languages=["python"])
        cond, stop = flows._termination(max_turns)
        team = RoundRobinGroupChat([agent], termination_condition=cond)
        return team.run_stream(task=CODE_TASK, cancellation_token=token), stop, []

    return build


def test_code_executor_runs_in_the_sandbox_through_autogen():
    result = flows._run("code", CODE_TASK, _executor_team(1))
    assert result.error is None
    assert result.speakers == ["executor"]
    assert [t.kind for t in result.turns] == ["text"]
    assert result.turns[0].content.strip() == "385"
    assert len(result.sandbox_runs) == 1 and result.sandbox_runs[0].ok
    assert "Maximum number of messages 2 reached" in result.stop_reason


def test_sandbox_limits_hold_under_autogen():
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    executor = flows.sandbox_executor()
    blocks = [CodeBlock("import socket\nsocket.create_connection(('127.0.0.1', 9))", "python")]
    out = run_coroutine(lambda: executor.execute_code_blocks(blocks, CancellationToken()))
    assert out.exit_code == 1 and "not allowed" in out.output
    out = run_coroutine(lambda: executor.execute_code_blocks([CodeBlock("ls /", "bash")], CancellationToken()))
    assert out.exit_code == 1 and "only python" in out.output and executor.runs[-1].returncode == 1


def test_should_stop_ends_the_run_cleanly_and_keeps_the_turns():
    result = flows._run("code", CODE_TASK, _executor_team(5), should_stop=lambda: True)
    assert result.stopped and result.stop_reason == "stopped by the user"
    assert len(result.turns) == 1 and result.error is None  # the turn before the stop is kept


def test_on_turn_sees_every_turn_and_as_dict_is_plain():
    import json

    seen = []
    result = flows._run("code", CODE_TASK, _executor_team(1), on_turn=seen.append)
    assert seen == result.turns
    json.dumps(result.as_dict())


def test_our_tool_as_an_autogen_tool():
    from autogen_core import CancellationToken

    tool = flows.autogen_tool(calculator)
    assert tool.schema["name"] == "calculator" and tool.schema["parameters"]["required"] == ["expression"]
    assert run_coroutine(lambda: tool.run_json({"expression": "6*7"}, CancellationToken())) == "42"
    bad = run_coroutine(lambda: tool.run_json({"expression": "import os"}, CancellationToken()))
    assert bad.startswith("Error:")


def test_model_info_is_valid_for_autogen():
    from autogen_core.models import validate_model_info

    validate_model_info(flows.MODEL_INFO)


def test_bad_arguments_are_typed_errors():
    with pytest.raises(InputError):
        flows.code_flow("  ")
    with pytest.raises(InputError):
        flows.rag_flow("대통령 임기", max_turns=99)


def test_scripted_replies_and_code_blocks():
    reply = flows.scripted_replies(["짧게 다시 써 줘"])
    assert reply("?") == "짧게 다시 써 줘" and reply("?") == flows.APPROVE
    assert flows.code_blocks("x\n```python\nprint(1)\n```\n") == ["print(1)"]


# -- the flows against the real local server (slow) --------------------------------------------------------------
@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path_factory.mktemp("autogen-server")) as cache:
        yield cache


@pytest.mark.slow
def test_code_flow_two_agents(own_server):
    result = flows.code_flow("Print the sum of the squares of 1 to 10.", max_turns=2, max_tokens=96)
    assert result.error is None
    assert result.speakers[0] == "coder"
    assert len(result.turns) <= 2
    if flows.code_blocks(result.turns[0].content):  # the coder wrote code: the executor ran it, in the sandbox
        assert result.speakers == ["coder", "executor"] and len(result.sandbox_runs) == 1
        assert result.sandbox_runs[0].network_isolated == network_isolation()
    assert result.turns[0].completion_tokens > 0


@pytest.mark.slow
def test_rag_flow_calls_the_search_tool(own_server):
    from engine.agents.tools import make_search_tool
    from engine.rag.documents import constitution_passages
    from engine.rag.pipeline import upload_corpus

    corpus = upload_corpus([p for p in constitution_passages() if p.doc_id in ("제67조", "제70조")])
    search = make_search_tool(kind="best", top_k=1, corpus=corpus)
    result = flows.rag_flow("대통령의 임기는?", max_turns=3, search=search, max_tokens=96)
    assert result.error is None and result.speakers == ["rag_agent"]
    kinds = [t.kind for t in result.turns]
    if "tool_call" in kinds:
        assert kinds.index("tool_result") == kinds.index("tool_call") + 1


@pytest.mark.slow
@pytest.mark.parametrize("selector", [False, True], ids=["round_robin", "selector"])
def test_group_chat(own_server, selector):
    result = flows.group_chat_flow("헌법이 왜 중요한지 설명해 줘.", selector=selector, max_turns=2, max_tokens=48)
    assert result.error is None
    speakers = [t.speaker for t in result.turns if t.kind == "text"]
    assert 1 <= len(speakers) <= 2 and set(speakers) <= set(flows.GROUP_ROLES)
    if not selector:
        assert speakers == ["writer", "critic"][: len(speakers)]  # round robin: the fixed order


@pytest.mark.slow
def test_approval_flow_ends_at_approve(own_server):
    asked = []

    def human(prompt: str) -> str:
        asked.append(prompt)
        return flows.APPROVE

    result = flows.approval_flow("주말 대청소 계획을 세워 줘.", human, max_turns=4, max_tokens=64)
    assert result.error is None
    assert result.speakers == ["assistant", "user"] and len(asked) == 1
    assert "APPROVE" in result.stop_reason
