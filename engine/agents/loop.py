"""The agent loop, visible: the model thinks, calls a tool, reads the observation, and repeats until it answers.

Two ways to ask a model for a tool call:

- `native`: the tools ride in the OpenAI `tools` field; the server renders them into the model's chat template
  (Qwen's `<tools>` block) and the model answers `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. The
  local llama.cpp server returns such a call as text with `tool_choice="auto"`; it is parsed here (with
  `engine.serving.parse_tool_calls`'s conventions) so that a malformed call or an unknown tool is *seen*, not dropped.
- `react`: for a model without a tool template, the tools are written into the prompt and the model writes
  `Thought: / Action: / Action Input: / Final Answer:` lines (Yao et al., 2022); the server stops at `Observation:`
  and the loop writes the observation itself.

With the server model, a *router* steps in when the model's own first native turn is not a usable call (no call,
a malformed one, an unknown tool; on by default, `route=None`): a short prompt (one line a tool, the question, the
results so far, no tool schemas) answered under a JSON schema whose only field is an enum of the tool names and
`answer` (a grammar on llama.cpp, `json_schema` elsewhere); the step then asks for that tool with `tool_choice`
forcing it, so the server constrains its arguments to the tool's schema. Only a fallback: the 0.5B model's router
choice followed the order of the tool list rather than the question (dev, list rotated three ways), while the 1.5B's
own first turn is right most of the time (dev .80 with the fallback, .67 without; session 10).

Two more guards for questions with several parts (session 11): a *plan* turn first asks for the question's parts
(the facts to look up, the arithmetic on them; engine.agents.planning) and, when there are two or more, the loop
carries them out in order (each lookup asked on its own, the arithmetic forced on the calculator) before the model
goes on by itself; and *grounded arguments* (engine.agents.grounding): a calculator call whose numbers appear in
neither the question nor a tool result is not run, and the router picks the step that can find them.

Everything that can go wrong is a step with an error code the model is told about (bad arguments, an unknown tool,
a tool that raised, timed out or returned megabytes), or an end of the run with a code (a loop, max steps, a Stop,
a server that cannot answer). The trace is always kept: `AgentRun.steps` holds what happened up to that point.

Arguments are checked against the tool's JSON schema (`jsonschema`) after a small, visible repair (a single
misnamed argument renamed, "12" -> 12 for a number); the repair is recorded on the step.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.agents.grounding import ungrounded_numbers
from engine.agents.planning import PLAN_SCHEMA, Plan, compute_prompt, parse_plan, plan_messages
from engine.agents.tool import Tool, ToolOutput
from engine.core.errors import MESSAGES, UserError, format_message
from engine.core.progress import ProgressFn, null_progress

MODES = ("native", "react")
AGENT_MODES = MODES  # the face name (MODES is too generic for engine.agents)
MAX_TASK_CHARS = 2_000
MAX_STEPS_LIMIT = 12
MAX_OBSERVATION_CHARS = 1_500  # what the model reads of one observation (a 0.5B model with a 4k context)
TOOL_TIMEOUT_S = 20.0
MAX_TOKENS = 256  # one model turn


AGENT_ROLES = ("instruct-large", "instruct")


def default_role() -> str:
    """The default agent's model: Qwen2.5-Coder-1.5B (`instruct-large`, part of `make install`) where it is installed,
    else the 0.5B `instruct`. Measured on the dev tasks (session 10): 1.5B .80 at a 4.1 s median; 0.5B .53 even with
    the router. Any other endpoint (LLMLAB_INSTRUCT_BASE_URL, OpenAI) serves both roles."""
    from engine.models.registry import application_role

    return application_role()


class AgentError(UserError):
    """A request the loop refuses before it starts (empty task, unknown mode, bad max_steps, no tools)."""

    default_code = "agents.error"


@dataclass
class Step:
    """One model turn: what it thought, which tool it called with which arguments, and what came back."""

    index: int
    thought: str = ""
    tool: str | None = None  # None: the model answered (or wrote something that is not a call)
    arguments: dict = field(default_factory=dict)
    observation: str = ""  # what the model was shown (capped at MAX_OBSERVATION_CHARS)
    observation_chars: int = 0  # the tool's full output length, before the cap
    tokens_in: int = 0  # prompt tokens of this turn (the server's count)
    tokens_out: int = 0
    seconds: float = 0.0  # model turn + tool
    error: str | None = None  # a code: agents.step.malformed_call, .unknown_tool, .bad_arguments, .tool_failed, ...
    error_args: dict = field(default_factory=dict)  # the values of the code's message (a page translates it)
    repaired: str = ""  # what the argument repair changed, e.g. "expr -> expression"
    routed: str = ""  # the router's choice for this step (a tool name or "answer"); "" when no router ran
    planned: str = ""  # the part of the plan this step carried out (a lookup question or the arithmetic)
    raw: str = ""  # the model's text for this turn
    artifact: Any = None  # the tool's artifact (a chart, rows) for the page; never shown to the model


@dataclass
class AgentRun:
    task: str
    answer: str | None = None
    steps: list[Step] = field(default_factory=list)
    error: str | None = None  # None when it answered; else agents.run.loop / .max_steps / .cancelled / .server
    message: str = ""  # English sentence for the error (pages translate by code)
    error_args: dict = field(default_factory=dict)  # the values of the error's message
    seconds: float = 0.0
    stopped: bool = False  # ended by should_stop (a Stop click)
    mode: str = "native"
    language: str = "ko"  # the task's script: ko, en or other
    plan: str = ""  # the model's first thought, shown as the plan
    parts: list[str] = field(default_factory=list)  # the planned lookups and arithmetic (engine.agents.planning)
    role: str = ""  # the serving role that ran the turns ("" for a model passed in, such as a test's script)

    @property
    def tokens_in(self) -> int:
        return sum(s.tokens_in for s in self.steps)

    @property
    def tokens_out(self) -> int:
        return sum(s.tokens_out for s in self.steps)

    @property
    def tool_calls(self) -> list[dict]:
        """The trajectory: every executed call, in order (refused calls are not in it)."""
        return [{"name": s.tool, "arguments": s.arguments} for s in self.steps if s.tool and s.error is None]

    def contract(self) -> dict:
        """The CLI's JSON line: task, answer, steps [{tool, arguments, observation_chars}], seconds, error."""
        return {
            "task": self.task,
            "answer": self.answer,
            "steps": [
                {"tool": s.tool, "arguments": s.arguments, "observation_chars": s.observation_chars}
                for s in self.steps
                if s.tool
            ],
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "message": self.message,
        }

    def as_dict(self) -> dict:
        d = asdict(self)
        for s in d["steps"]:
            s.pop("artifact", None)
        d.update(tokens_in=self.tokens_in, tokens_out=self.tokens_out)
        return d


def message_of(code: str, **fmt) -> str:
    return format_message(MESSAGES.get(code, code), fmt)


# --- language -------------------------------------------------------------------------------------------------


def task_language(text: str) -> str:
    """ "ko" when the letters are mostly Hangul, "en" when mostly Latin, else "other" (Japanese, Chinese, ...)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "other"
    hangul = sum("\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e" for c in letters)
    latin = sum(c.isascii() for c in letters)
    if hangul >= 0.3 * len(letters):
        return "ko"
    if latin >= 0.7 * len(letters):
        return "en"
    return "other"


# --- arguments: repair and validation --------------------------------------------------------------------------

_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}


def repair_arguments(args: Any, schema: dict) -> tuple[Any, str]:
    """Small, visible fixes a 0.5B model needs often: a JSON string instead of an object, one misnamed argument
    when exactly one required one is missing, a number written as a string. Returns (arguments, what changed)."""
    notes = []
    if isinstance(args, str):
        try:
            args = json.loads(args)
            notes.append("string -> object")
        except ValueError:
            props = list(schema.get("properties", {}))
            if len(props) == 1:
                args, _ = {props[0]: args}, notes.append(f"text -> {props[0]}")
    if not isinstance(args, dict):
        return args, ", ".join(notes)
    props = schema.get("properties", {})
    args = dict(args)
    missing = [r for r in schema.get("required", []) if r not in args]
    unknown = [k for k in args if k not in props]
    if len(missing) == 1 and len(unknown) == 1 and schema.get("additionalProperties", True) is not True:
        pass  # the schema forbids extras: still rename below, the validator would refuse anyway
    if len(missing) == 1 and len(unknown) == 1:
        args[missing[0]] = args.pop(unknown[0])
        notes.append(f"{unknown[0]} -> {missing[0]}")
    for name, value in list(args.items()):
        kind = (props.get(name) or {}).get("type")
        if isinstance(value, str) and kind in ("integer", "number"):
            try:
                num = float(value.replace(",", "").strip())
                args[name] = int(num) if kind == "integer" and num == int(num) else num
                notes.append(f"{name}: '{value}' -> {args[name]}")
            except ValueError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool) and kind == "string":
            args[name] = str(value)
            notes.append(f"{name}: {value} -> '{value}'")
    return args, ", ".join(notes)


def validate_arguments(args: Any, schema: dict) -> str | None:
    """None when `args` fits the tool's JSON schema, else one English sentence the model can act on."""
    import jsonschema

    try:
        jsonschema.validate(args, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{where + ': ' if where else ''}{exc.message}"
    except jsonschema.SchemaError as exc:  # the tool's own schema is broken: a bug of the tool, said as such
        return f"the tool's schema is invalid: {exc.message}"
    return None


# --- parsing the model's text -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What one model turn says: a call, a final answer, or a problem (malformed / nothing usable)."""

    thought: str = ""
    tool: str | None = None
    arguments: Any = None
    answer: str | None = None
    problem: str | None = None  # agents.step.malformed_call when a call was attempted but unreadable


def _balanced_json(text: str) -> str | None:
    """The first balanced {...} in `text` (strings and escapes respected), or None."""
    start = text.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                esc = c == "\\" and not esc
                if c == '"' and not esc:
                    in_str = False
                if c != "\\":
                    esc = False
                continue
            if c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    return None


def _loads(raw: str) -> Any:
    """json.loads, then the usual small-model slips: single quotes, trailing commas, Python True/False/None."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", raw)
    fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed)))
    if "'" in fixed and '"' not in fixed:
        fixed = fixed.replace("'", '"')
    return json.loads(fixed)


_FUNCTION_TAG = re.compile(r"<function\s+name=[\"'](?P<name>[\w.-]+)[\"']\s+arguments='(?P<args>.*?)'\s*/?>", re.S)


def _loads_or_text(raw: str) -> Any:
    try:
        return _loads(raw)
    except ValueError:
        return raw


_TOOL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def parse_native(text: str) -> Parsed:
    """A native turn written as text: `<tool_call>{...}</tool_call>`, a fenced or bare JSON object with a "name",
    or plain text (the final answer). Also read: the slips of Qwen2.5-Coder-1.5B seen in dev traces, which copies the
    template's `<tools>` block (`<function name="sql_query" arguments='{...}'/>`, an empty `<tools></tools>`) and
    doubles the braces (`{{"name": ...}}}`)."""
    fn = _FUNCTION_TAG.search(text)
    if fn:
        text = _call_text(fn.group("name"), _loads_or_text(fn.group("args")))
    text = re.sub(r"<tools>\s*</tools>", "", text).strip()
    if not text:
        return Parsed(problem="agents.step.malformed_call")
    text = re.sub(r"\{\{(\s*\"name\")", r"{\1", text)
    text = re.sub(r"\}\}\}", "}}", text)
    tagged = _TOOL_TAG.search(text)
    body = tagged.group(1) if tagged else None
    thought = text[: tagged.start()].strip() if tagged else ""
    if body is None:
        raw = _balanced_json(text)
        if raw and re.search(r'"name"\s*:', raw):
            body, thought = raw, text[: text.find(raw)].strip().removesuffix("```json").removesuffix("```").strip()
    if body is None and re.match(r'\s*(?:```(?:json)?\s*)?\{\s*"name"\s*:', text):
        body = text  # a call cut off or left unclosed: malformed, not an answer
    if body is None:
        return Parsed(answer=text.strip())
    raw = _balanced_json(body) or body
    try:
        obj = _loads(raw)
    except ValueError:
        return Parsed(thought=thought, problem="agents.step.malformed_call")
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return Parsed(thought=thought, problem="agents.step.malformed_call")
    args = obj.get("arguments", obj.get("parameters", {}))
    return Parsed(thought=thought, tool=obj["name"], arguments=args)


_FINAL = re.compile(r"Final\s*Answer\s*[:：]\s*(.*)", re.S | re.I)
_ACTION = re.compile(r"Action\s*[:：]\s*(.*?)\s*$", re.M | re.I)
_INPUT = re.compile(r"Action\s*Input\s*[:：]\s*(.*)", re.S | re.I)
_THOUGHT = re.compile(r"Thought\s*[:：]\s*(.*?)(?=\n\s*(?:Action|Final\s*Answer)\s*[:：]|\Z)", re.S | re.I)


def parse_react(text: str, tools: dict[str, Tool]) -> Parsed:
    """A ReAct turn. Robust to the usual slips: `Action: calc(2+3)`, an input that is not JSON (taken as the one
    argument of a one-argument tool), a `Final Answer` written after an action (the action wins: the loop runs it
    and the model answers after seeing the observation), a model that writes its own `Observation:`."""
    text = re.split(r"\n\s*Observation\s*[:：]", text, maxsplit=1)[0]
    m = _THOUGHT.search(text)
    thought = m.group(1).strip() if m else ""
    action = _ACTION.search(text)
    if action and not re.match(r"\s*Input", action.group(0)[len("Action") :], re.I):
        name = action.group(1).strip().strip("`'\"")
        inline = re.match(r"([\w.-]+)\s*\((.*)\)\s*$", name, re.S)
        inp = _INPUT.search(text)
        raw = inp.group(1).strip() if inp else (inline.group(2) if inline else "")
        if inline:
            name = inline.group(1)
        raw = re.sub(r"^```(?:json)?|```$", "", raw.strip()).strip()
        block = _balanced_json(raw)
        if block is not None:
            try:
                return Parsed(thought=thought, tool=name, arguments=_loads(block))
            except ValueError:
                return Parsed(thought=thought, tool=name, problem="agents.step.malformed_call")
        tool = tools.get(name)
        props = list((tool.parameters.get("properties") or {}) if tool else [])
        if tool and len(props) == 1 and raw:  # one-argument tool, plain text input: that text is the argument
            return Parsed(thought=thought, tool=name, arguments={props[0]: raw.splitlines()[0].strip().strip("\"'")})
        if tool and not raw and not tool.parameters.get("required"):
            return Parsed(thought=thought, tool=name, arguments={})
        return Parsed(thought=thought, tool=name, problem="agents.step.malformed_call")
    final = _FINAL.search(text)
    if final:
        return Parsed(thought=thought, answer=final.group(1).strip())
    if re.search(r"Action\s*Input", text, re.I):
        return Parsed(thought=thought, problem="agents.step.malformed_call")
    return Parsed(thought=thought, answer=None, problem="agents.step.no_format")


# --- prompts ---------------------------------------------------------------------------------------------------

SYSTEM_NATIVE = (
    "You are a careful assistant that answers questions by calling tools. "
    "Call a tool whenever the answer needs a fact, a number from the database or arithmetic; "
    "never guess numbers. Call one tool at a time. "
    "After a tool result arrives, do not call the same tool with the same arguments again: when the results contain "
    "the answer, reply with a short final answer in the language of the question (Korean for a Korean question), "
    "without calling a tool."
)

FINAL_PROMPT = (
    "Stop calling tools. Using only the tool results above, answer the original question now in one short sentence, "
    "in the language of the question."
)

SYSTEM_REACT = """You answer questions by using tools. Tools:
{tools}

Use exactly this format:
Thought: what to do next
Action: one tool name from the list
Action Input: the arguments as a JSON object
Observation: (written for you: the tool's result)
... (Thought/Action/Action Input/Observation can repeat)
Thought: I know the answer
Final Answer: a short answer in the language of the question

Never guess numbers: use a tool. Write only one Action per turn."""


def react_tool_lines(tools: Sequence[Tool]) -> str:
    lines = []
    for tool in tools:
        props = tool.parameters.get("properties") or {}
        args = ", ".join(f'"{k}": {v.get("type", "any")}' for k, v in props.items())
        lines.append(f"- {tool.name}: {tool.description} Arguments: {{{args}}}")
    return "\n".join(lines)


# --- one model turn --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    text: str
    calls: list  # [(name, arguments)] from a server that returns structured calls (vLLM, OpenAI)
    tokens_in: int
    tokens_out: int


ModelFn = Callable[[list[dict], list[dict] | None, list[str] | None], Turn]


TURN_TIMEOUT_S = 300.0  # one model turn on a busy 2-core machine (a 1,000-token prompt with the SQL schema)


ROUTE_ANSWER = "answer"
ROUTE_SYSTEM = (
    "You plan the next step of an assistant that answers a question with tools. The steps:\n{lines}\n"
    "- {answer}: the results so far already give everything the question asks for.\n"
    "Choose the tool the question still needs (the one whose result is not there yet), or {answer}."
)


def route_messages(messages: list[dict], tools: Sequence[Tool]) -> list[dict]:
    """The router's own short conversation: the steps (one line a tool: the first sentence of its description),
    then the question and what the tools returned so far. The tools' full schemas are left out on purpose: with
    them in the prompt (chapter 6's SQL schema is the longest), the 0.5B model chose the SQL tool for everything."""
    lines = "\n".join(
        f"- {t.name}" + (f" ({t.labels['ko']})" if t.labels.get("ko") else "") + f": {_gist(t.description)}"
        for t in tools
    )
    start = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=0)  # the task (after memory)
    question = messages[start]["content"] if messages else ""
    done, pending = [], None
    for m in messages[start + 1 :]:
        if m["role"] == "assistant":
            call = parse_native(m.get("content") or "")
            pending = f"{call.tool}({json.dumps(call.arguments, ensure_ascii=False)})" if call.tool else None
        elif m["role"] == "tool" and pending:
            done.append(f"- {pending} returned: {cap_observation(m['content'], 400)}")
    body = f"Question: {question}\nResults so far:\n" + ("\n".join(done) if done else "(none yet)")
    return [
        {"role": "system", "content": ROUTE_SYSTEM.format(lines=lines, answer=ROUTE_ANSWER)},
        {"role": "user", "content": body + '\nWhich step comes next? Reply with JSON: {"step": "<step name>"}'},
    ]


def _gist(text: str, limit: int = 200) -> str:
    """A tool's description without long lists (the SQL tool's table list): the sentences that fit in `limit`."""
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip()):
        if out and len(out) + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
    return out[: limit * 2]


def route_schema(names: Sequence[str]) -> dict:
    """The router's answer: {"step": one of the tool names or "answer"}."""
    return {
        "type": "object",
        "properties": {"step": {"type": "string", "enum": [*names, ROUTE_ANSWER]}},
        "required": ["step"],
        "additionalProperties": False,
    }


class ServerModel:
    """The model turn against the endpoint of `role` (the same `openai` fields as `engine.serving.tool_chat`, but
    keeping the server's token counts for the trace), plus the router turn. The endpoint is resolved once per run:
    the server's health check is not repeated between the steps of one run."""

    def __init__(self, role: str, max_tokens: int, progress: ProgressFn, timeout_s: float):
        self.role, self.max_tokens, self.progress, self.timeout_s = role, max_tokens, progress, timeout_s
        self._endpoint = None

    def endpoint(self):
        from engine.serving.client import resolve_endpoint

        if self._endpoint is None:
            self._endpoint = resolve_endpoint(self.progress, self.role)
        return self._endpoint

    def _create(self, messages: list[dict], max_tokens: int, **extra):
        import openai

        from engine.serving.client import ModelServerError

        ep = self.endpoint()
        client = openai.OpenAI(base_url=ep.base_url, api_key=ep.api_key, timeout=self.timeout_s, max_retries=0)
        try:
            return client.chat.completions.create(
                model=ep.model, messages=messages, max_tokens=max_tokens, temperature=0.0, seed=0, **extra
            )
        except openai.APIConnectionError as exc:
            raise ModelServerError("server.connection_lost", url=ep.base_url, reason=exc) from exc
        except openai.APIStatusError as exc:
            raise ModelServerError("server.refused", status=exc.status_code, reason=exc.message) from exc

    def __call__(
        self, messages: list[dict], tools: list[dict] | None, stop: list[str] | None, force: str | None = None
    ) -> Turn:
        """One turn; `force` names the tool it must call (`tool_choice`: the server constrains the arguments)."""
        extra: dict[str, Any] = {}
        if tools:
            choice = {"type": "function", "function": {"name": force}} if force else "auto"
            extra = {"tools": tools, "tool_choice": choice}
        reply = self._create(messages, self.max_tokens, stop=stop or None, **extra)
        msg = reply.choices[0].message
        calls = []
        for c in msg.tool_calls or []:
            try:
                calls.append((c.function.name, json.loads(c.function.arguments or "{}")))
            except ValueError:
                calls.append((c.function.name, c.function.arguments))
        usage = reply.usage
        return Turn(
            msg.content or "", calls, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0
        )

    def _json_turn(self, messages: list[dict], schema: dict, name: str, max_tokens: int, **extra) -> Turn:
        """A reply constrained to `schema` (a grammar on llama.cpp, `json_schema` elsewhere)."""
        if not self.endpoint().local:
            fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        else:  # llama-cpp-python: the schema rides on json_object and becomes a grammar
            fmt = {"type": "json_object", "schema": schema}
        reply = self._create(messages, max_tokens, response_format=fmt, **extra)
        usage = reply.usage
        text = reply.choices[0].message.content or ""
        return Turn(text, [], usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)

    def plan(self, task: str, system: dict | None = None, tools: list[dict] | None = None) -> tuple[Plan | None, Turn]:
        """The question's parts (engine.agents.planning): (the plan, the turn), or (None, the turn). With the
        agent's `system` message and `tools`, the prompt starts as the agent's turns do (the server's prefix cache)."""
        extra = {"tools": tools, "tool_choice": "auto"} if tools and self.endpoint().local else {}
        turn = self._json_turn(plan_messages(task, system), PLAN_SCHEMA, "plan", 200, **extra)
        return parse_plan(turn.text), turn

    def route(self, messages: list[dict], tools: Sequence[Tool]) -> tuple[str | None, Turn]:
        """Ask which step comes next (`route_messages`); (a tool name or "answer", the turn), or (None, the turn)
        when the reply is not one of them."""
        names = [t.name for t in tools]
        turn = self._json_turn(route_messages(messages, tools), route_schema(names), "next_step", 24)
        try:
            step = json.loads(turn.text).get("step")
        except (ValueError, AttributeError):
            return None, turn
        return (step if step in (*names, ROUTE_ANSWER) else None), turn


def server_turn(
    role: str = "instruct",
    max_tokens: int = MAX_TOKENS,
    progress: ProgressFn = null_progress,
    timeout_s: float = TURN_TIMEOUT_S,
) -> ServerModel:
    """The default model of `run_agent`: turns and router turns against the server of `role`."""
    return ServerModel(role, max_tokens, progress, timeout_s)


# --- tools -----------------------------------------------------------------------------------------------------


def cap_observation(text: str, limit: int = MAX_OBSERVATION_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [cut: {len(text):,} characters, the first {limit:,} shown]"


def run_tool(tool: Tool, arguments: dict, timeout_s: float = TOOL_TIMEOUT_S) -> tuple[ToolOutput | None, str | None]:
    """Call a tool in a worker thread with a deadline. Returns (output, None) or (None, error sentence with code).
    A thread cannot be killed: a tool past its deadline is abandoned (tools with real work, such as the Python
    sandbox, enforce their own limits in a child process)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(tool, **arguments)
    try:
        return future.result(timeout=timeout_s), None
    except concurrent.futures.TimeoutError:
        return None, "agents.step.tool_timeout"
    except UserError as exc:  # a tool's own refusal (bad SQL, denied): the model reads the message
        return ToolOutput(f"Error: {exc}"), "agents.step.tool_refused"
    except Exception as exc:  # a tool that raised: the model reads what happened and may try differently
        return ToolOutput(f"Error: {type(exc).__name__}: {exc}"), "agents.step.tool_failed"
    finally:
        pool.shutdown(wait=False)


# --- the loop --------------------------------------------------------------------------------------------------


def _check(task: str, tools: Sequence[Tool], mode: str, max_steps: int) -> str:
    if not isinstance(task, str) or not task.strip():
        raise AgentError("agents.empty_task")
    task = task.strip()
    if len(task) > MAX_TASK_CHARS:
        raise AgentError("agents.task_too_long", chars=len(task), limit=MAX_TASK_CHARS)
    if mode not in MODES:
        raise AgentError("input.unknown_choice", name="mode", value=mode, choices=", ".join(MODES))
    if not 1 <= int(max_steps) <= MAX_STEPS_LIMIT:
        raise AgentError("input.out_of_range", name="max_steps", low=1, high=MAX_STEPS_LIMIT, value=max_steps)
    if not tools:
        raise AgentError("agents.no_tools")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise AgentError("agents.duplicate_tool", names=", ".join(sorted({n for n in names if names.count(n) > 1})))
    return task


def _call_text(name: str, arguments: Any) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


def run_agent(
    task: str,
    tools: Sequence[Tool],
    *,
    mode: str = "native",
    role: str | None = None,
    max_steps: int = 6,
    memory=None,
    should_stop: Callable[[], bool] | None = None,
    progress: ProgressFn = null_progress,
    on_step: Callable[[Step], None] | None = None,
    model: ModelFn | None = None,
    tool_timeout_s: float = TOOL_TIMEOUT_S,
    observation_limit: int = MAX_OBSERVATION_CHARS,
    system: str | None = None,
    finalize: bool = True,
    route: bool | None = None,
    plan: bool | None = None,
) -> AgentRun:
    """Run the loop on one task. Never raises for what the model or a tool does (that ends up in the trace and in
    `error`); raises `AgentError` for a request it cannot start, `ModelServerError` only before the first step.

    `finalize`: when the run loops or reaches max_steps after at least one tool result, ask once more (without
    tools) for the answer from the observations; the run keeps its error code and the step says so.
    `memory`: an object with `.messages()` (earlier turns, put before the task) and `.add(user, assistant)` (called
    with the answer); see engine.agents.memory. `model`: the model turn (tests pass a scripted one; default: the
    server of `role`). `on_step`: called with each finished step (a page draws the trace as it grows).
    `route`: the router fallback for a first native turn that is not a usable call (None: when the model has a
    `.route`, as the server model does; a scripted model is a plain function and runs without one).
    `plan`: ask first for the question's parts and carry out a plan of two or more (engine.agents.planning; None:
    when the model has a `.plan`, native mode only)."""
    task = _check(task, tools, mode, max_steps)
    by_name = {t.name: t for t in tools}
    model = model or server_turn(role or default_role(), progress=progress)
    should_stop = should_stop or (lambda: False)
    routing = mode == "native" and hasattr(model, "route") and route is not False
    run = AgentRun(task=task, mode=mode, language=task_language(task), role=getattr(model, "role", ""))
    started = time.perf_counter()
    if mode == "native":
        messages = [{"role": "system", "content": system or SYSTEM_NATIVE}]
        schemas = [t.schema() for t in tools]
        stop = None
    else:
        messages = [{"role": "system", "content": (system or SYSTEM_REACT).format(tools=react_tool_lines(tools))}]
        schemas, stop = None, ["\nObservation:", "Observation:"]
    if memory is not None:
        messages += memory.messages()
    messages.append({"role": "user", "content": task})
    seen: dict[str, int] = {}  # call key -> step index, for the loop guard

    def finish(code: str | None, **fmt) -> AgentRun:
        run.seconds = time.perf_counter() - started
        if code:
            run.error, run.message, run.error_args = code, message_of(code, **fmt), fmt
        if run.answer is not None and memory is not None:
            memory.add(task, run.answer)
        run.plan = next((s.thought for s in run.steps if s.thought), "")
        return run

    def final_turn(code: str, **fmt) -> AgentRun:
        """A run that loops or reaches the step limit: one last turn without tools, asking for the answer from the
        observations so far (LangChain's early_stopping_method="generate"). The run keeps its code either way."""
        if not finalize or should_stop() or not any(s.tool and s.error is None for s in run.steps):
            return finish(code, **fmt)
        t0 = time.perf_counter()
        try:
            turn = model([*messages, {"role": "user", "content": FINAL_PROMPT}], None, stop)
        except UserError:
            return finish(code, **fmt)
        step = Step(index=len(run.steps), tokens_in=turn.tokens_in, tokens_out=turn.tokens_out, raw=turn.text)
        parsed = parse_native(turn.text) if mode == "native" else parse_react(turn.text, by_name)
        answer = parsed.answer if parsed.tool is None and parsed.problem is None else None
        if parsed.problem == "agents.step.no_format" and turn.text.strip():
            answer = turn.text.strip()
        step.thought, step.error, step.seconds = parsed.thought, "agents.step.forced_answer", time.perf_counter() - t0
        run.steps.append(step)
        _report(on_step, step)
        run.answer = answer or None
        return finish(code, **fmt)

    todo: list[tuple[str, str]] = []  # the plan's parts still to carry out: ("lookup", question), ("compute", ...)
    computer = next((t for t in tools if t.grounded), None)  # the tool the plan's arithmetic goes to
    planned_turn = None
    # the planner sees the question alone: a follow-up that leans on the memory ("and that divided by 2?") is not
    # split by it
    remembered = len(messages) > 2
    if mode == "native" and hasattr(model, "plan") and plan is not False and not remembered:
        try:
            made, planned_turn = model.plan(task, messages[0], schemas)
        except UserError as exc:
            return finish("agents.run.server", reason=str(exc))
        if made is not None:
            run.parts = [*made.lookups, *([made.arithmetic] if made.arithmetic else [])]
            todo = [p for p in made.steps() if p[0] == "lookup" or computer is not None]

    for index in range(max_steps):
        if should_stop():
            run.stopped = True
            return finish("agents.run.cancelled", steps=len(run.steps))
        progress(index / max_steps, f"step {index + 1}")
        t0 = time.perf_counter()
        routed, asked, forced = None, None, None
        part = todo.pop(0) if todo else None
        shown = messages  # what this turn sees: a planned lookup is asked on its own
        try:
            if part is None:
                turn = model(messages, schemas, stop)
            elif part[0] == "lookup":
                shown = [messages[0], {"role": "user", "content": part[1]}]
                turn = model(shown, schemas, stop)
            else:  # the plan's arithmetic, forced on the calculator: its numbers must come from the lookups
                compute = {"role": "user", "content": compute_prompt(part[1])}
                turn = model([*messages, compute], schemas, stop, force=computer.name)
        except UserError as exc:  # the server is gone: end here, keep the trace
            return finish("agents.run.server", reason=str(exc))
        step = Step(index=index, tokens_in=turn.tokens_in, tokens_out=turn.tokens_out, raw=turn.text)
        step.planned = part[1] if part else ""
        if planned_turn is not None:  # the plan's tokens count for the first step
            step.tokens_in, step.tokens_out = (
                step.tokens_in + planned_turn.tokens_in,
                step.tokens_out + planned_turn.tokens_out,
            )
            planned_turn = None
        parsed = _parse_turn(turn, mode, by_name)
        sources = [task, *(s.observation for s in run.steps if s.tool and s.error is None)]
        usable = parsed.tool in by_name and parsed.problem is None and not _ungrounded(parsed, by_name, sources)
        answered = parsed.tool is None and parsed.problem is None
        lookup = part is not None and part[0] == "lookup"
        if routing and not usable and (index == 0 or not answered or lookup) and (part is None or lookup):
            # the model's own turn is not a usable call (at the first step: not a call at all; later: a call that
            # cannot run, such as one with made-up numbers): the router picks the step, the server forces it.
            # Not after a later answer: asked "is anything still missing?" there, the 1.5B router picked another
            # tool for nearly every answer (dev: 13 of 15 runs grew to 2-5 calls, one right answer lost, 40-160 s)
            try:
                routed, asked = model.route(shown, tools)
                if routed and routed != ROUTE_ANSWER:
                    forced = model(shown, schemas, stop, force=routed)
                elif routed == ROUTE_ANSWER and parsed.answer is None and not lookup:
                    forced = model(shown, None, stop)  # an answer, without tools
            except UserError as exc:
                return finish("agents.run.server", reason=str(exc))
            step.routed = routed or ""
            for extra in (asked, forced):
                if extra is not None:  # the router's and the forced turn's tokens count for the step
                    step.tokens_in += extra.tokens_in
                    step.tokens_out += extra.tokens_out
            if forced is not None:
                step.raw = f"{turn.text}\n[router: {routed}]\n{forced.text}".strip()
                turn, parsed = forced, _parse_turn(forced, mode, by_name)
        step.thought = parsed.thought
        feedback = None  # what the model reads next when this turn was not a clean call

        if lookup and parsed.tool is None:  # a planned lookup that got no call: go on without it
            step.error, step.error_args = "agents.step.no_call", {"part": part[1]}
            step.seconds = time.perf_counter() - t0
            run.steps.append(step)
            _report(on_step, step)
            continue

        if parsed.tool is None and parsed.problem is None:  # the final answer
            step.seconds = time.perf_counter() - t0
            run.steps.append(step)
            _report(on_step, step)
            if parsed.answer:
                run.answer = parsed.answer
                return finish(None)
            step.error = "agents.step.empty_answer"
            return finish("agents.run.no_answer")
        if parsed.problem == "agents.step.no_format":  # ReAct text without Action or Final Answer
            step.error = parsed.problem
            if index == 0 or not turn.text.strip():
                feedback = message_of(parsed.problem)
            else:  # after an observation, plain text is the small model's answer
                step.seconds = time.perf_counter() - t0
                step.error = None
                run.steps.append(step)
                _report(on_step, step)
                run.answer = turn.text.strip()
                return finish(None)
        elif parsed.problem:
            step.tool = parsed.tool
            feedback = _fail(step, parsed.problem, names=", ".join(by_name))
        elif parsed.tool not in by_name:
            step.tool, step.arguments = parsed.tool, parsed.arguments if isinstance(parsed.arguments, dict) else {}
            feedback = _fail(step, "agents.step.unknown_tool", name=parsed.tool, names=", ".join(by_name))
        else:
            tool = by_name[parsed.tool]
            args, step.repaired = repair_arguments(parsed.arguments, tool.parameters)
            step.tool, step.arguments = tool.name, args if isinstance(args, dict) else {"_": args}
            problem = validate_arguments(args, tool.parameters)
            key = _key(parsed, by_name)
            missing = [] if problem else ungrounded_numbers(args, tool.grounded, sources)
            if problem:
                feedback = _fail(step, "agents.step.bad_arguments", name=tool.name, problem=problem)
            elif missing:  # not run: numbers with no source (engine.agents.grounding)
                feedback = _fail(step, "agents.step.ungrounded", name=tool.name, numbers=", ".join(missing))
            elif key in seen:
                first = seen[key] + 1
                feedback = _fail(step, "agents.step.repeated_call", name=tool.name, step=first)
                feedback += "\n" + run.steps[seen[key]].observation
                step.observation, step.seconds = feedback, time.perf_counter() - t0
                run.steps.append(step)
                _report(on_step, step)
                _append(messages, mode, step, turn.text)
                return final_turn("agents.run.loop", name=tool.name, step=first)  # the loop guard
            else:
                seen[key] = index
                out, code = run_tool(tool, args, tool_timeout_s)
                if out is None:
                    feedback = _fail(step, code, name=tool.name, seconds=tool_timeout_s)
                else:
                    step.error = code or (_tool_error(out) and "agents.step.tool_refused")
                    text = out.text if isinstance(out.text, str) else str(out.text)
                    step.observation_chars = len(text)
                    step.observation = cap_observation(text, observation_limit)
                    step.artifact = out.artifact
        if feedback is not None:
            step.observation = feedback
        step.seconds = time.perf_counter() - t0
        run.steps.append(step)
        _report(on_step, step)
        _append(messages, mode, step, turn.text)
    return final_turn("agents.run.max_steps", steps=max_steps)


def _key(parsed: Parsed, by_name: dict[str, Tool]) -> str:
    """A call's identity for the loop guard: the tool and its (repaired) arguments."""
    tool = by_name.get(parsed.tool or "")
    args = repair_arguments(parsed.arguments, tool.parameters)[0] if tool else parsed.arguments
    return json.dumps([parsed.tool, args], sort_keys=True, ensure_ascii=False, default=str)


def _ungrounded(parsed: Parsed, by_name: dict[str, Tool], sources: list[str]) -> list[str]:
    tool = by_name.get(parsed.tool or "")
    if tool is None or not tool.grounded:
        return []
    args, _ = repair_arguments(parsed.arguments, tool.parameters)
    return ungrounded_numbers(args, tool.grounded, sources)


def _parse_turn(turn: Turn, mode: str, by_name: dict[str, Tool]) -> Parsed:
    if turn.calls:  # a server that parses calls itself (vLLM, OpenAI), or a forced call
        name, args = turn.calls[0]
        return Parsed(thought=turn.text.strip(), tool=name, arguments=args)
    return parse_native(turn.text) if mode == "native" else parse_react(turn.text, by_name)


def _fail(target: Step, code: str, /, **fmt) -> str:
    """Mark the step with an error code and its values; returns the English sentence the model reads."""
    target.error, target.error_args = code, fmt
    return message_of(code, **fmt)


def _tool_error(out: ToolOutput) -> str | None:
    """A tool's own failure code (ToolOutput.error, where the tool sets one: bad SQL, a denied statement)."""
    return getattr(out, "error", None)


def _report(on_step, step: Step) -> None:
    if on_step is not None:
        on_step(step)


def _append(messages: list[dict], mode: str, step: Step, text: str) -> None:
    """Put the model's turn and what it gets back into the conversation, in the form its template expects."""
    if mode == "native":
        said = (
            text.strip()
            if step.tool is None
            else (step.thought + "\n" if step.thought else "") + _call_text(step.tool, step.arguments)
        )
        messages.append({"role": "assistant", "content": said or text})
        # Qwen's template puts a `tool` message into <tool_response> inside a user turn
        messages.append({"role": "tool", "tool_call_id": f"call_{step.index}", "content": step.observation})
    else:
        messages.append({"role": "assistant", "content": text.split("Observation:")[0].rstrip()})
        messages.append({"role": "user", "content": f"Observation: {step.observation}"})


__all__ = [
    "AGENT_MODES",
    "AGENT_ROLES",
    "MODES",
    "ROUTE_ANSWER",
    "AgentError",
    "AgentRun",
    "Parsed",
    "ServerModel",
    "Step",
    "Turn",
    "cap_observation",
    "default_role",
    "parse_native",
    "parse_react",
    "repair_arguments",
    "run_agent",
    "run_tool",
    "server_turn",
    "task_language",
    "validate_arguments",
]
