"""The book's AutoGen flows on AutoGen AgentChat 0.7 against the local `instruct` server (offline, 2 cores).

The book runs AutoGen on OpenAI. Here the same AgentChat classes talk to the embedded llama.cpp server through
AutoGen's own `OpenAIChatCompletionClient` (base_url = engine.serving.resolve_endpoint(role="instruct")):

1. `code_flow`: two agents — a code writer (AssistantAgent) and an executor (CodeExecutorAgent) whose code runs
   in engine.agents.sandbox (`SandboxCodeExecutor`, AutoGen's CodeExecutor interface over our sandbox — never
   AutoGen's LocalCommandLineCodeExecutor, which runs model code on the machine without limits); an optional
   `approve(code) -> bool` is AutoGen's own approval hook before each execution.
2. `rag_flow`: one AssistantAgent with `constitution_search` (chapter 9's retriever) as a tool.
3. `group_chat_flow`: writer, critic and editor in a RoundRobinGroupChat (fixed order) or a SelectorGroupChat (the
   model reads the conversation and names the next speaker).
4. `approval_flow`: human in the loop — an assistant proposes, a UserProxyAgent asks the human (an `input_func`
   the page or the test supplies) and the chat ends when the human writes APPROVE.

Each flow returns a `FlowResult`: a typed transcript (speaker, kind, content, tool calls, tokens, seconds), why it
stopped, and what the sandbox ran. Every flow has a message limit and a `should_stop()` hook (an AutoGen
`ExternalTermination`, checked after every message: the run ends cleanly after the current turn and the
transcript so far is kept). A failure mid-run (server gone) is recorded in `error`; the turns stay.

Two gaps between AutoGen and the local server, and how they are closed (no imitation of AutoGen anywhere):
- The model is unknown to AutoGen, so `model_info` says what it can do (`MODEL_INFO`). AutoGen then never looks
  the model up. tiktoken: AutoGen imports it, but only `count_tokens`/`remaining_tokens` use it (through
  `TokenLimitedChatCompletionContext`); there `tiktoken.encoding_for_model("qwen2.5-coder-0.5b-instruct")` falls
  back to `get_encoding("cl100k_base")`, which downloads the encoding from openaipublic.blob.core.windows.net —
  offline, that fails (see `tiktoken_offline_error()`). The flows use AutoGen's default unbounded context, so no
  code path counts tokens; token counts come from the server's `usage` instead (exact, the model's tokenizer).
- llama-cpp-python's server with `tool_choice="auto"` returns the model's tool call as text
  (`<tool_call>{...}</tool_call>`) — see engine/serving/client.py. `LocalChatCompletionClient` (a subclass of
  AutoGen's client) turns such text into AutoGen `FunctionCall`s with the project's parser, the way vLLM's
  hermes parser does server-side, so AssistantAgent's own tool loop runs unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.agents.tool import Tool
from engine.core.aio import run_coroutine

FLOWS = ("code", "rag", "group_round_robin", "group_selector", "approval")
MAX_TURNS_RANGE = (1, 12)
DEFAULT_MAX_TOKENS = 256
# What AutoGen needs to know about a model it has never heard of (autogen_core.models.ModelInfo).
MODEL_INFO = {
    "vision": False,
    "function_calling": True,  # tool calls come back as text and are parsed (LocalChatCompletionClient)
    "json_output": True,
    "family": "unknown",
    "structured_output": False,
    "multiple_system_messages": False,  # Qwen's chat template takes one system message, first
}
TERMINATE = "TERMINATE"
APPROVE = "APPROVE"

CODER_SYSTEM = (
    "You are a Python programmer. Never give the answer directly: first reply with ONE complete Python program in "
    "a single ```python code block that prints the answer (standard library or numpy; no network), and nothing "
    "else. The executor runs it and shows you the output. Only then reply with the answer in one sentence and "
    f"the word {TERMINATE}."
)
RAG_SYSTEM = (
    "You answer questions about the Korean Constitution (대한민국헌법). Always call constitution_search first with "
    "Korean keywords, then answer in Korean in one or two sentences, citing the article like [제70조]."
)
GROUP_ROLES = {
    "writer": "You are the writer. Write a short first draft (at most 3 sentences) answering the task, in Korean.",
    "critic": "You are the critic. Point out one concrete problem in the latest draft, in one sentence, in Korean.",
    "editor": (
        "You are the editor. Rewrite the draft fixing the critic's point, at most 3 sentences in Korean, "
        f"then write {TERMINATE}."
    ),
}
APPROVAL_SYSTEM = (
    "You are an assistant that proposes a plan. Propose a short plan (at most 3 numbered steps) for the task. "
    "If the user gives feedback, revise the plan. Ask the user to reply APPROVE when the plan is acceptable."
)


# -- the transcript ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Turn:
    speaker: str  # the AutoGen agent's name ("coder", "executor", "user", ...)
    kind: str  # text | tool_call | tool_result | code | code_result | select | user_input | stop | approval
    content: str
    tool_calls: tuple[dict, ...] = ()  # [{"name", "arguments"}] for tool_call turns
    prompt_tokens: int = 0  # from the server's usage (0 for turns no model wrote)
    completion_tokens: int = 0
    seconds: float = 0.0  # since the previous turn (what this turn took)


@dataclass
class FlowResult:
    flow: str
    task: str
    turns: list[Turn] = field(default_factory=list)
    stop_reason: str = ""  # AutoGen's TaskResult.stop_reason, or "stopped by the user", or the error
    stopped: bool = False  # should_stop() ended it
    error: str | None = None  # the run failed mid-way (the turns so far are kept)
    seconds: float = 0.0
    sandbox_runs: list[Any] = field(default_factory=list)  # engine.agents.sandbox.SandboxResult per executed block
    approvals: list[dict] = field(default_factory=list)  # {"code", "approved", "reason"} from the approval hook

    @property
    def speakers(self) -> list[str]:
        """The agents that spoke, in order of their first turn."""
        seen: list[str] = []
        for t in self.turns:
            if t.speaker not in seen:
                seen.append(t.speaker)
        return seen

    @property
    def tokens(self) -> int:
        return sum(t.prompt_tokens + t.completion_tokens for t in self.turns)

    def as_dict(self) -> dict:
        return {
            "flow": self.flow,
            "task": self.task,
            "turns": [asdict(t) for t in self.turns],
            "stop_reason": self.stop_reason,
            "stopped": self.stopped,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "sandbox_runs": [
                {"returncode": r.returncode, "killed_reason": r.killed_reason, "seconds": r.seconds}
                for r in self.sandbox_runs
            ],
            "approvals": list(self.approvals),
            "tokens": self.tokens,
        }


# -- the model client --------------------------------------------------------------------------------------------
def _client_class():
    """AutoGen's OpenAIChatCompletionClient, plus tool calls read from text (llama-cpp-python's `auto` mode)."""
    from autogen_core import FunctionCall
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from engine.serving.client import parse_tool_calls

    class LocalChatCompletionClient(OpenAIChatCompletionClient):
        async def create(self, messages, *, tools=(), **kwargs):  # type: ignore[override]
            result = await super().create(messages, tools=tools, **kwargs)
            if not tools or not isinstance(result.content, str):
                return result
            names = {t.name if hasattr(t, "name") else t["name"] for t in tools}
            calls = parse_tool_calls(result.content, names)
            if not calls:
                return result
            content = [
                FunctionCall(id=f"call_{i}", arguments=json.dumps(c.arguments, ensure_ascii=False), name=c.name)
                for i, c in enumerate(calls)
            ]
            return result.model_copy(update={"content": content, "finish_reason": "function_calls"})

    return LocalChatCompletionClient


def model_client(role: str = "instruct", *, max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.0):
    """AutoGen's OpenAI client pointed at the local server for `role` (started on demand), greedy by default."""
    from engine.serving import resolve_endpoint

    ep = resolve_endpoint(role=role)
    return _client_class()(
        model=ep.model,
        base_url=ep.base_url,
        api_key=ep.api_key,
        model_info=MODEL_INFO,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=0,
        include_name_in_message=False,  # the server's message schema has no `name` for every role
        max_retries=0,
    )


def tiktoken_offline_error() -> str | None:
    """What AutoGen's token counting does offline for our model: the exact error text, or None if it works (the
    encoding is cached). The flows never call it; the page shows why they use the default unbounded context."""
    from autogen_core.models import UserMessage
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    client = OpenAIChatCompletionClient(
        model="qwen2.5-coder-0.5b-instruct", base_url="http://127.0.0.1:9/v1", api_key="x", model_info=MODEL_INFO
    )
    try:
        client.count_tokens([UserMessage(content="안녕하세요", source="user")])
    except Exception as exc:  # whatever tiktoken raises offline (a requests ConnectionError, typically)
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None


# -- tools and the code executor ---------------------------------------------------------------------------------
_JSON_TYPES = {"string": str, "number": float, "integer": int, "boolean": bool, "array": list, "object": dict}


def autogen_tool(tool: Tool):
    """One of our `Tool`s as an AutoGen tool (a BaseTool with a pydantic model of the same JSON schema); it runs
    through `call_tool`, so a bad call comes back to the model as an error observation, capped."""
    from autogen_core.tools import BaseTool
    from pydantic import create_model

    from engine.agents.tools import call_tool

    props = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    fields: dict[str, Any] = {}
    for name, spec in props.items():
        typ = _JSON_TYPES.get(spec.get("type", "string"), str)
        fields[name] = (typ, ...) if name in required else (typ | None, None)
    args_model = create_model(f"{tool.name}_args", **fields)

    class OurTool(BaseTool):
        async def run(self, args, cancellation_token):  # type: ignore[override]
            arguments = {k: v for k, v in args.model_dump().items() if v is not None}
            out = await asyncio.to_thread(call_tool, tool, arguments)
            return out.text

    return OurTool(args_model, str, tool.name, tool.description)


def sandbox_executor(**limits):
    """AutoGen's CodeExecutor interface over engine.agents.sandbox: python blocks run in the sandbox (no network,
    its own directory, CPU/memory/time/output limits); other languages are refused. `.runs` keeps each result."""
    from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult

    from engine.agents.sandbox import run_python

    class SandboxCodeExecutor(CodeExecutor):
        def __init__(self):
            self.runs: list = []

        async def execute_code_blocks(self, code_blocks: list[CodeBlock], cancellation_token) -> CodeResult:
            outputs, exit_code = [], 0
            for block in code_blocks:
                if block.language.lower() not in ("python", "py", "python3", ""):
                    outputs.append(f"refused: only python runs here (got {block.language})")
                    exit_code = 1
                    continue
                stop = cancellation_token.is_cancelled if cancellation_token is not None else None
                result = await asyncio.to_thread(run_python, block.code, should_stop=stop, **limits)
                self.runs.append(result)
                text = result.stdout
                if result.returncode != 0 or result.killed_reason:
                    text += ("\n" if text else "") + (result.stderr.strip()[-1_000:] or f"[{result.killed_reason}]")
                    exit_code = result.returncode if result.returncode not in (None, 0) else 1
                outputs.append(text.strip())
                if exit_code:
                    break
            return CodeResult(exit_code=exit_code, output="\n".join(outputs) or "(no output)")

        async def restart(self) -> None:
            return None

        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            return None

    return SandboxCodeExecutor()


# -- running a team and keeping the transcript -------------------------------------------------------------------
def _check(task: str, max_turns: int) -> str:
    from engine.core.textinput import InputError

    if not isinstance(task, str) or not task.strip():
        raise InputError("input.empty")
    low, high = MAX_TURNS_RANGE
    if not low <= int(max_turns) <= high:
        raise InputError("input.out_of_range", name="max_turns", low=low, high=high, value=max_turns)
    return task.strip()[:2_000]


def _usage(msg) -> tuple[int, int]:
    u = getattr(msg, "models_usage", None)
    return (u.prompt_tokens, u.completion_tokens) if u is not None else (0, 0)


def _turn(msg, seconds: float) -> Turn | None:
    from autogen_agentchat.messages import (
        CodeExecutionEvent,
        CodeGenerationEvent,
        SelectSpeakerEvent,
        StopMessage,
        ToolCallExecutionEvent,
        ToolCallRequestEvent,
        ToolCallSummaryMessage,
        UserInputRequestedEvent,
    )

    source = getattr(msg, "source", "?")
    p, c = _usage(msg)
    if isinstance(msg, ToolCallRequestEvent):
        calls = tuple({"name": f.name, "arguments": f.arguments} for f in msg.content)
        text = "; ".join(f"{f.name}({f.arguments})" for f in msg.content)
        return Turn(source, "tool_call", text, calls, p, c, seconds)
    if isinstance(msg, ToolCallExecutionEvent):
        return Turn(source, "tool_result", "\n".join(r.content for r in msg.content), (), p, c, seconds)
    if isinstance(msg, ToolCallSummaryMessage):
        return None  # the same text as the tool result just before it
    if isinstance(msg, CodeGenerationEvent):
        return Turn(source, "code", msg.content, (), p, c, seconds)
    if isinstance(msg, CodeExecutionEvent):
        return Turn(source, "code_result", msg.result.output, (), p, c, seconds)
    if isinstance(msg, SelectSpeakerEvent):
        return Turn(source, "select", ", ".join(msg.content), (), p, c, seconds)
    if isinstance(msg, UserInputRequestedEvent):
        return None  # the user's reply follows as a text message
    if isinstance(msg, StopMessage):
        return Turn(source, "stop", msg.content, (), p, c, seconds)
    content = getattr(msg, "content", "")
    if not isinstance(content, str):
        content = str(content)
    return Turn(source, "text", content, (), p, c, seconds)


async def _drive(result: FlowResult, runner, stop_flag, should_stop, on_turn, token) -> None:
    """Stream a team (or an agent) and record every message; should_stop() sets the external termination."""
    from autogen_agentchat.base import TaskResult

    last = time.perf_counter()
    async for item in runner:
        if isinstance(item, TaskResult):
            result.stop_reason = item.stop_reason or result.stop_reason or "done"
            break
        now = time.perf_counter()
        if getattr(item, "source", None) == "user" and not result.turns and item.__class__.__name__ == "TextMessage":
            last = now
            continue  # the task itself
        turn = _turn(item, round(now - last, 3))
        last = now
        if turn is not None:
            result.turns.append(turn)
            if on_turn is not None:
                on_turn(turn)
        if should_stop is not None and should_stop() and not result.stopped:
            result.stopped = True
            if stop_flag is not None:
                stop_flag.set()  # ExternalTermination: ends after this message, cleanly
            else:
                token.cancel()


def _run(flow: str, task: str, build, *, should_stop=None, on_turn=None) -> FlowResult:
    """Build the team in a fresh event loop, run it, always close the model client; never raise for a failure
    mid-run (the error goes into the result with the turns so far)."""
    result = FlowResult(flow, task)
    started = time.perf_counter()

    async def main() -> None:
        from autogen_core import CancellationToken

        token = CancellationToken()
        runner, stop_flag, clients = build(result, token)
        try:
            await _drive(result, runner, stop_flag, should_stop, on_turn, token)
        except asyncio.CancelledError:
            result.stop_reason = "stopped by the user"
        finally:
            for c in clients:
                await c.close()

    try:
        run_coroutine(main)
    except Exception as exc:  # the server died, a model reply AutoGen could not read, ...
        from engine.core.errors import UserError

        if isinstance(exc, UserError) and not result.turns:
            raise  # nothing ran: the page shows the typed error (server not available, ...)
        result.error = f"{type(exc).__name__}: {str(exc)[:500]}"
        result.stop_reason = result.stop_reason or "error"
    if result.stopped:
        result.stop_reason = "stopped by the user"
    result.seconds = time.perf_counter() - started
    return result


def _termination(max_turns: int, *extra):
    """At most `max_turns` messages after the task, or any of `extra`, or the external stop (returned too)."""
    from autogen_agentchat.conditions import ExternalTermination, MaxMessageTermination

    stop = ExternalTermination()
    cond = MaxMessageTermination(max_turns + 1) | stop  # +1: the task message counts
    for e in extra:
        cond = cond | e
    return cond, stop


# -- the flows ---------------------------------------------------------------------------------------------------
def code_flow(
    task: str,
    *,
    max_turns: int = 4,
    approve: Callable[[str], bool] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_turn: Callable[[Turn], None] | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> FlowResult:
    """Flow 1: a coder writes Python, an executor runs it in the sandbox, the coder reads the output and answers.
    `approve(code) -> bool`, when given, is asked before every execution (AutoGen's approval_func)."""
    task = _check(task, max_turns)

    def build(result: FlowResult, token):
        from autogen_agentchat.agents import ApprovalResponse, AssistantAgent, CodeExecutorAgent
        from autogen_agentchat.conditions import TextMentionTermination
        from autogen_agentchat.teams import RoundRobinGroupChat

        client = model_client(max_tokens=max_tokens)
        executor = sandbox_executor()
        result.sandbox_runs = executor.runs

        approval = None
        if approve is not None:

            def approval(request):
                ok = bool(approve(request.code))
                reason = "approved by the user" if ok else "rejected by the user"
                result.approvals.append({"code": request.code, "approved": ok, "reason": reason})
                return ApprovalResponse(approved=ok, reason=reason)

        coder = AssistantAgent("coder", model_client=client, system_message=CODER_SYSTEM)
        runner_agent = CodeExecutorAgent(
            "executor", code_executor=executor, supported_languages=["python"], approval_func=approval
        )
        cond, stop = _termination(max_turns, TextMentionTermination(TERMINATE, sources=["coder"]))
        team = RoundRobinGroupChat([coder, runner_agent], termination_condition=cond)
        return team.run_stream(task=task, cancellation_token=token), stop, [client]

    return _run("code", task, build, should_stop=should_stop, on_turn=on_turn)


def rag_flow(
    question: str,
    *,
    max_turns: int = 3,
    search: Tool | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_turn: Callable[[Turn], None] | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> FlowResult:
    """Flow 2: one AssistantAgent with Constitution search as a tool (AutoGen runs the tool call and the agent
    answers from the passages: reflect_on_tool_use)."""
    question = _check(question, max_turns)

    def build(result: FlowResult, token):
        from autogen_agentchat.agents import AssistantAgent
        from autogen_agentchat.teams import RoundRobinGroupChat

        from engine.agents.tools import constitution_search_tool

        client = model_client(max_tokens=max_tokens)
        agent = AssistantAgent(
            "rag_agent",
            model_client=client,
            tools=[autogen_tool(search or constitution_search_tool())],
            system_message=RAG_SYSTEM,
            reflect_on_tool_use=True,
            max_tool_iterations=2,
        )
        cond, stop = _termination(max_turns)
        team = RoundRobinGroupChat([agent], termination_condition=cond, max_turns=1)
        return team.run_stream(task=question, cancellation_token=token), stop, [client]

    return _run("rag", question, build, should_stop=should_stop, on_turn=on_turn)


def group_chat_flow(
    task: str,
    *,
    selector: bool = False,
    max_turns: int = 4,
    should_stop: Callable[[], bool] | None = None,
    on_turn: Callable[[Turn], None] | None = None,
    max_tokens: int = 160,
) -> FlowResult:
    """Flow 3: writer, critic and editor. Round robin speaks in that fixed order; the selector asks the model which
    participant should speak next (its choice is in the transcript as a `select` turn)."""
    task = _check(task, max_turns)

    def build(result: FlowResult, token):
        from autogen_agentchat.agents import AssistantAgent
        from autogen_agentchat.conditions import TextMentionTermination
        from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat

        client = model_client(max_tokens=max_tokens)
        agents = [
            AssistantAgent(name, model_client=client, system_message=text, description=text.split(".")[0])
            for name, text in GROUP_ROLES.items()
        ]
        cond, stop = _termination(max_turns, TextMentionTermination(TERMINATE, sources=["editor"]))
        if selector:
            team = SelectorGroupChat(
                agents,
                model_client=client,
                termination_condition=cond,
                allow_repeated_speaker=False,
                emit_team_events=True,
            )
        else:
            team = RoundRobinGroupChat(agents, termination_condition=cond)
        return team.run_stream(task=task, cancellation_token=token), stop, [client]

    name = "group_selector" if selector else "group_round_robin"
    return _run(name, task, build, should_stop=should_stop, on_turn=on_turn)


def approval_flow(
    task: str,
    input_func: Callable[[str], str],
    *,
    max_turns: int = 4,
    should_stop: Callable[[], bool] | None = None,
    on_turn: Callable[[Turn], None] | None = None,
    max_tokens: int = 160,
) -> FlowResult:
    """Flow 4: the assistant proposes, the human (input_func(prompt) -> reply) approves with APPROVE or gives
    feedback; the chat ends at APPROVE or the message limit."""
    task = _check(task, max_turns)

    def build(result: FlowResult, token):
        from autogen_agentchat.agents import AssistantAgent, UserProxyAgent
        from autogen_agentchat.conditions import TextMentionTermination
        from autogen_agentchat.teams import RoundRobinGroupChat

        client = model_client(max_tokens=max_tokens)
        assistant = AssistantAgent("assistant", model_client=client, system_message=APPROVAL_SYSTEM)
        user = UserProxyAgent("user", input_func=input_func)
        cond, stop = _termination(max_turns, TextMentionTermination(APPROVE, sources=["user"]))
        team = RoundRobinGroupChat([assistant, user], termination_condition=cond)
        return team.run_stream(task=task, cancellation_token=token), stop, [client]

    return _run("approval", task, build, should_stop=should_stop, on_turn=on_turn)


def scripted_replies(replies: list[str], default: str = APPROVE) -> Callable[[str], str]:
    """An input_func that answers with `replies` in order, then `default` (a page collects them up front: a
    Streamlit run cannot wait for a click in the middle of a script)."""
    queue = list(replies)

    def reply(prompt: str) -> str:
        return queue.pop(0) if queue else default

    return reply


_CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def code_blocks(text: str) -> list[str]:
    """The python code blocks of a message (what the executor will run), for the page's approval box."""
    return [m.strip() for m in _CODE_BLOCK.findall(text or "")]
