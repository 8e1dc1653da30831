"""Chapter 15: LLM agents — the loop (model + tools + memory + planning), the tools, AutoGen flows, evaluation and
safety. In reading order:

- `tool`: `Tool` (name, description, JSON-schema arguments, function) and `ToolOutput`.
- `loop`: `run_agent` (native tool calls or ReAct text, schema-checked arguments, loop guard) -> `AgentRun` of `Step`s.
- `memory`: `WindowMemory` (last k turns) vs `SummaryMemory` (running summary), `MemoryView` shows what each forgot.
- `observations`, `tools`: capped observations and error observations; calculator (AST), Constitution search
  (chapter 9), read-only SQL over Chinook (chapter 6), `call_tool` (never raises), `default_tools`.
- `sandbox`: `run_python` — a subprocess with CPU/memory/time/output limits, no network, its own directory only.
- `charts`: the chart tool (plotly).
- `autogen_flows`: the book's AutoGen AgentChat flows on the local server (code + sandbox, RAG, group chat, approval).
- `injection`: an indirect prompt injection planted in a retrieved document; datamarking + prompt + tool allowlist.
- `evaluation`: the task suite (assets/agents/tasks.yaml), success / steps / tokens / latency, trajectory matching.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY: dict[str, str] = {
    "Tool": "tool",
    "ToolOutput": "tool",
    # --- tools, sandbox, autogen, safety ---
    "MAX_OBSERVATION_CHARS": "observations",
    "cap": "observations",
    "error_output": "observations",
    "TOOL_NAMES": "tools",
    "CalcError": "tools",
    "calculator": "tools",
    "call_tool": "tools",
    "constitution_search_tool": "tools",
    "default_tools": "tools",
    "evaluate_expression": "tools",
    "make_search_tool": "tools",
    "make_sql_tool": "tools",
    "schema_summary": "tools",
    "sql_query_tool": "tools",
    "SandboxResult": "sandbox",
    "network_isolation": "sandbox",
    "python_sandbox_tool": "sandbox",
    "run_python": "sandbox",
    "CHART_TYPES": "charts",
    "chart_tool": "charts",
    "make_chart": "charts",
    "FLOWS": "autogen_flows",
    "FlowResult": "autogen_flows",
    "Turn": "autogen_flows",
    "approval_flow": "autogen_flows",
    "code_flow": "autogen_flows",
    "group_chat_flow": "autogen_flows",
    "rag_flow": "autogen_flows",
    "scripted_replies": "autogen_flows",
    "tiktoken_offline_error": "autogen_flows",
    "AttackRun": "injection",
    "BASE_SYSTEM": "injection",
    "DEFENDED_SYSTEM": "injection",
    "EMAIL_TOOL": "injection",
    "INJECTION_QUESTION": "injection",
    "INJECTION_VARIANTS": "injection",
    "InjectionReport": "injection",
    "SEARCH_TOOL": "injection",
    "allowed_tools": "injection",
    "check_call": "injection",
    "datamark": "injection",
    "measure_injection": "injection",
    "note_passages": "injection",
    "run_attack": "injection",
    # --- loop, memory, evaluation ---
    "AgentError": "loop",
    "AgentRun": "loop",
    "AGENT_MODES": "loop",
    "AGENT_ROLES": "loop",
    "default_role": "loop",
    "Step": "loop",
    "run_agent": "loop",
    "parse_native": "loop",
    "parse_react": "loop",
    "task_language": "loop",
    "ChatTurn": "memory",
    "MemoryView": "memory",
    "SummaryMemory": "memory",
    "WindowMemory": "memory",
    "forgotten": "memory",
    "demo_conversation": "memory",
    "memory_demo": "memory",
    "AgentTask": "evaluation",
    "EvalReport": "evaluation",
    "MATCH_MODES": "evaluation",
    "SPLITS": "evaluation",
    "TaskResult": "evaluation",
    "answer_matches": "evaluation",
    "evaluate": "evaluation",
    "load_tasks": "evaluation",
    "score": "evaluation",
    "trajectory_match": "evaluation",
}
__all__ = sorted(_LAZY)
__getattr__ = lazy_face(__name__, globals(), _LAZY)
