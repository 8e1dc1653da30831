"""Chapter 15 sections for the tools, the AutoGen flows and safety (helper A's parts; pages/15_agents.py calls
`tools_section(ch)`, `autogen_section(ch)` and `safety_section(ch)`). Cheap tools run on click; the sandbox, the
search, the AutoGen flows and the injection measurement run as stoppable jobs, and a stopped flow keeps its turns."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.agents import (
    BASE_SYSTEM,
    DEFENDED_SYSTEM,
    EMAIL_TOOL,
    FLOWS,
    INJECTION_QUESTION,
    INJECTION_VARIANTS,
    SEARCH_TOOL,
    allowed_tools,
    approval_flow,
    calculator,
    call_tool,
    chart_tool,
    code_flow,
    constitution_search_tool,
    datamark,
    group_chat_flow,
    measure_injection,
    network_isolation,
    note_passages,
    rag_flow,
    run_python,
    scripted_replies,
    sql_query_tool,
)
from engine.core import load_precomputed
from ui.i18n import lang, t
from ui.jobs import last_job, run_and_keep
from ui.layout import friendly_errors, notice, precomputed_note, quiz, section_header
from ui.state import clamped, param

SS = st.session_state
ESCAPES = {  # what the sandbox must refuse, one click each
    "network": "import urllib.request\nprint(urllib.request.urlopen('http://example.com').status)",
    "write_outside": "open('/tmp/escaped.txt', 'w').write('x')",
    "shell": "import os\nos.system('cat /etc/passwd')",
    "loop": "while True:\n    pass",
    "memory": "x = bytearray(10**10)",
    "flood": "while True:\n    print('x' * 1000)",
}
_CODE = "import math\nxs = list(range(1, 11))\nprint(sum(x * x for x in xs), math.sqrt(2))"
DEFAULT_CODE = {
    "ko": "# 1부터 10까지 제곱의 합과 2의 제곱근\n" + _CODE,
    "en": "# the sum of squares 1..10, and sqrt(2)\n" + _CODE,
}
# the chart's axis titles are the query's column names: in the learner's language
DEFAULT_SQL = {
    "ko": 'SELECT g.Name AS "장르", COUNT(*) AS "곡 수" FROM Track t JOIN Genre g ON g.GenreId = t.GenreId '
    'GROUP BY g.Name ORDER BY "곡 수" DESC LIMIT 8',
    "en": "SELECT g.Name AS genre, COUNT(*) AS tracks FROM Track t JOIN Genre g ON g.GenreId = t.GenreId "
    "GROUP BY g.Name ORDER BY tracks DESC LIMIT 8",
}
FLOW_TASKS = {
    "code": "1부터 100까지의 소수의 합을 계산해 줘.",
    "rag": "대통령의 임기는 몇 년인가요?",
    "group_round_robin": "헌법이 왜 중요한지 학생에게 설명해 줘.",
    "group_selector": "헌법이 왜 중요한지 학생에게 설명해 줘.",
    "approval": "주말 대청소 계획을 세워 줘.",
}


def _output(out) -> None:
    if out.error:
        st.error(f"`{out.error}` — {out.text}", icon="🛑")
    else:
        st.code(out.text, language="text")
    if out.truncated:
        st.caption(t("ch15.tools_cut"))


# -- tools -------------------------------------------------------------------------------------------------------
def tools_section(ch) -> None:
    section_header(ch, "tools")
    tab_calc, tab_sql, tab_search, tab_sandbox = st.tabs(
        [t("ch15.tools_calc"), t("ch15.tools_sql"), t("ch15.tools_search"), t("ch15.tools_sandbox")]
    )
    with tab_calc:
        param("tl_expr", "(1234 * 5678) / 2 + 2^10", str)
        st.text_input(t("ch15.tools_expression"), key="tl_expr", help=t("ch15.tools_expression_help"))
        with friendly_errors():
            _output(call_tool(calculator, {"expression": SS["tl_expr"]}))
    with tab_sql:
        param("tl_sql", DEFAULT_SQL[lang()], str)
        st.text_area(t("ch15.tools_sql_text"), key="tl_sql", height=100)
        with friendly_errors():
            out = call_tool(sql_query_tool(), {"sql": SS["tl_sql"]})
            _output(out)
            if out.error is None and out.artifact is not None and out.artifact.rows:
                st.dataframe(pd.DataFrame(out.artifact.rows, columns=out.artifact.columns), hide_index=True)
                chart = call_tool(chart_tool(), {"chart_type": "bar", "sql": SS["tl_sql"]})
                if chart.error is None:
                    st.plotly_chart(chart.artifact, use_container_width=True)
                    st.caption(t("ch15.tools_chart_text", text=chart.text))
    with tab_search:
        param("tl_query", "대통령 임기", str)
        st.text_input(t("ch15.tools_query"), key="tl_query")
        if st.button(t("ch15.tools_search_run"), key="tl_search_run"):
            query = SS["tl_query"]
            work = lambda p, r, s: call_tool(constitution_search_tool(), {"query": query})  # noqa: E731
            run_and_keep("ch15_search", work, t("ch15.tools_searching"), "ch15_search_out", heavy=True)
        if SS.get("ch15_search_out") is not None:
            _output(SS["ch15_search_out"])
    with tab_sandbox:
        sandbox_view()
    notice("common.notice", t("ch15.tools_notice"))


def sandbox_view() -> None:
    param("tl_code", DEFAULT_CODE[lang()], str)
    cols = st.columns(len(ESCAPES))
    for col, (name, code) in zip(cols, ESCAPES.items(), strict=True):
        if col.button(t(f"ch15.tools_escape_{name}"), key=f"tl_esc_{name}"):
            SS["tl_code"] = code
    st.text_area(t("ch15.tools_code"), key="tl_code", height=140)
    st.caption(t("ch15.tools_netns", state=t("ch15.tools_yes") if network_isolation() else t("ch15.tools_no")))
    if st.button(t("ch15.tools_sandbox_run"), key="tl_run"):
        code = SS["tl_code"]
        work = lambda p, r, s: run_python(code, should_stop=s)  # noqa: E731
        run_and_keep("ch15_sandbox", work, t("ch15.tools_sandbox_running"), "ch15_sandbox_out")
    res = SS.get("ch15_sandbox_out")
    if res is not None:
        c1, c2, c3 = st.columns(3)
        c1.metric(t("ch15.tools_returncode"), "—" if res.returncode is None else res.returncode)
        c2.metric(t("ch15.tools_killed"), res.killed_reason or "—")
        c3.metric(t("ch15.seconds"), f"{res.seconds:.2f}")
        if res.stdout:
            st.code(res.stdout, language="text")
        if res.stderr:
            st.code(res.stderr[-1500:], language="text")
        if res.files:
            st.caption(t("ch15.tools_files", files=", ".join(res.files)))


# -- AutoGen -----------------------------------------------------------------------------------------------------
def _run_flow(flow: str, task: str, max_turns: int, replies: list[str]):
    def work(progress, on_row, should_stop):
        common = {"max_turns": max_turns, "should_stop": should_stop, "on_turn": on_row}
        if flow == "code":
            return code_flow(task, **common)
        if flow == "rag":
            return rag_flow(task, **common)
        if flow == "approval":
            return approval_flow(task, scripted_replies(replies), **common)
        return group_chat_flow(task, selector=flow == "group_selector", **common)

    return work


def show_turns(turns) -> None:
    for turn in turns:
        role = "user" if turn.speaker == "user" else "assistant"
        with st.chat_message(role, avatar="🧑" if role == "user" else "🤖"):
            head = t("ch15.autogen_turn", speaker=turn.speaker, kind=turn.kind, seconds=f"{turn.seconds:.1f}")
            tokens = turn.prompt_tokens + turn.completion_tokens
            st.caption(head + (t("ch15.autogen_turn_tokens", n=tokens) if tokens else ""))
            if turn.kind in ("code", "code_result", "tool_result"):
                st.code(turn.content or "", language="text")
            else:
                st.markdown(turn.content or "—")


def autogen_section(ch) -> None:
    section_header(ch, "autogen")
    param("ag_flow", "code", str, choices=FLOWS)
    clamped("ag_turns", 4, 1, 8, int)
    st.radio(t("ch15.autogen_flow"), list(FLOWS), key="ag_flow", format_func=lambda f: t(f"ch15.autogen_{f}"))
    flow = SS["ag_flow"]
    task_key = f"ag_task_{flow}"
    param(task_key, FLOW_TASKS[flow], str)
    st.text_area(t("ch15.autogen_task"), key=task_key, height=68)
    st.slider(t("ch15.autogen_turns"), 1, 8, key="ag_turns", help=t("ch15.autogen_turns_help"))
    replies: list[str] = []
    if flow == "approval":
        param("ag_replies", "3단계 안으로 줄여 줘.", str)
        st.text_area(t("ch15.autogen_replies"), key="ag_replies", help=t("ch15.autogen_replies_help"))
        replies = [line.strip() for line in SS["ag_replies"].splitlines() if line.strip()]
    if st.button(t("ch15.autogen_run"), key="ag_run"):
        work = _run_flow(flow, SS[task_key], SS["ag_turns"], replies)
        run_and_keep("ch15_autogen", work, t("ch15.autogen_running"), "ch15_autogen_out", heavy=True)
    result = SS.get("ch15_autogen_out")
    state = last_job("ch15_autogen")
    if result is not None:
        show_turns(result.turns)
        st.caption(
            t("ch15.autogen_stop", why=result.stop_reason, seconds=f"{result.seconds:.1f}", tokens=result.tokens)
        )
        if result.error:
            st.error(t("ch15.autogen_error", error=result.error), icon="🛑")
        if result.sandbox_runs:
            st.caption(t("ch15.autogen_sandbox", n=len(result.sandbox_runs)))
    elif state.rows:  # stopped: the turns so far
        show_turns(state.rows)
    st.caption(t("ch15.autogen_offline"))
    notice("common.notice", t("ch15.autogen_notice"))
    quiz("15", "autogen")


# -- safety ------------------------------------------------------------------------------------------------------
def show_injection(data: dict) -> None:
    c1, c2 = st.columns(2)
    for col, key, label in (
        (c1, "success_rate_without_defence", "ch15.safety_rate_without"),
        (c2, "success_rate_with_defence", "ch15.safety_rate_with"),
    ):
        value = data.get(key)
        col.metric(t(label), "—" if value is None else f"{value:.0%}")
    rows = [
        {
            t("ch15.safety_variant"): r["variant"],
            t("ch15.safety_defended"): "✅" if r["defended"] else "—",
            t("ch15.safety_attempted"): "⚠️" if r["attempted"] else "",
            t("ch15.safety_succeeded"): "❌" if r["succeeded"] else "",
            t("ch15.safety_answer"): r["error"] or r["answer"][:120],
        }
        for r in data["runs"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)


def safety_section(ch) -> None:
    section_header(ch, "safety")
    ids = [v.id for v in INJECTION_VARIANTS]
    param("sf_variant", ids[0], str, choices=ids)
    st.selectbox(t("ch15.safety_variant"), ids, key="sf_variant")
    variant = next(v for v in INJECTION_VARIANTS if v.id == SS["sf_variant"])
    planted = next(p for p in note_passages(variant) if variant.text in p.text)
    c1, c2 = st.columns(2)
    with c1:
        st.caption(t("ch15.safety_planted"))
        st.code(planted.text, language="text")
    with c2:
        st.caption(t("ch15.safety_marked"))
        st.code(datamark(planted.text), language="text")
    with st.expander(t("ch15.safety_prompts")):
        st.caption(t("ch15.safety_question", q=INJECTION_QUESTION))
        st.code(BASE_SYSTEM, language="text")
        st.code(DEFENDED_SYSTEM, language="text")
    param("sf_task", INJECTION_QUESTION, str)
    st.text_input(t("ch15.safety_task"), key="sf_task", help=t("ch15.safety_task_help"))
    allowed = allowed_tools(SS["sf_task"], [SEARCH_TOOL, EMAIL_TOOL])
    st.caption(t("ch15.safety_allowed", tools=", ".join(sorted(allowed))))
    pre = load_precomputed("ch15_injection")
    if pre is not None:
        precomputed_note(pre)
        show_injection(pre.data)
    if st.button(t("ch15.safety_run"), key="sf_run"):
        chosen = [SS["sf_variant"]]
        work = lambda p, r, s: measure_injection(chosen, should_stop=s).as_dict()  # noqa: E731
        run_and_keep("ch15_injection", work, t("ch15.safety_running"), "ch15_injection_out", heavy=True)
    if SS.get("ch15_injection_out"):
        st.caption(t("ch15.safety_mine"))
        show_injection(SS["ch15_injection_out"])
    st.caption(t("ch15.safety_command"))
    st.code("python -m engine agent-injection --save-precomputed", language="bash")
    notice("common.notice", t("ch15.safety_notice"))
    quiz("15", "safety")
