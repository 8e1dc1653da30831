"""Chapter 15 — LLM agents. The loop made visible (thought, tool call, arguments, observation, tokens and latency per
step; native tool calls or ReAct text), memory as a window vs a running summary (and what each forgets), the tools
(helper A's section), AutoGen flows (A's), agent evaluation (a Korean task suite with expected answers and tool
trajectories; success, steps, tokens, latency; strict / unordered / subset / superset matching), and safety (A's).
Runs that need the model server happen only behind buttons, as stoppable jobs; a fresh page shows the shipped
results (assets/precomputed/ch15_*.json) and never waits for the server."""

import streamlit as st

from engine.core import load_precomputed
from ui import agents as view
from ui.i18n import lang, t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, notice, precomputed_note, quiz, section_header, show_code
from ui.state import clamped, param

SS = st.session_state
MODES = ("native", "react")
TOOL_NAMES = ("calculator", "constitution_search", "sql_query")  # the default agent's tools (engine.agents.TOOL_NAMES)
MEMORY_K = (1, 2, 3)


def _a_section(name: str):
    """Helper A's section function from ui.agents_tools, or None while it is not there yet."""
    try:
        import ui.agents_tools as a
    except ImportError:
        return None
    return getattr(a, name, None)


def loop_section(ch) -> None:
    section_header(ch, "loop")
    examples = view.example_tasks()
    param("lo_task", examples[12] if len(examples) > 12 else examples[0], str)
    param("lo_mode", "native", str, choices=MODES)
    clamped("lo_steps", 6, 1, 8, int)
    st.selectbox(
        t("ch15.examples"),
        examples,
        key="lo_example",
        index=None,
        placeholder=t("ch15.examples_hint"),
        on_change=lambda: SS.update(lo_task=SS["lo_example"]) if SS.get("lo_example") else None,
    )
    st.text_area(t("ch15.task"), key="lo_task", height=70, max_chars=2000)
    c1, c2, c3 = st.columns([2, 2, 3])
    c1.radio(
        t("ch15.mode"), list(MODES), key="lo_mode", format_func=lambda m: t(f"ch15.mode_{m}"), help=t("ch15.mode_help")
    )
    c2.slider(t("ch15.max_steps"), 1, 8, key="lo_steps")
    names = c3.multiselect(t("ch15.tools"), list(TOOL_NAMES), default=list(TOOL_NAMES), key="lo_tools")
    if st.button(t("ch15.run"), key="lo_run", type="primary"):
        task, mode, steps = SS["lo_task"], SS["lo_mode"], SS["lo_steps"]
        run_and_keep(
            "ch15_loop",
            lambda p, r, s: view.live_run(task, mode, steps, names, p, r, s),
            t("ch15.running"),
            "ch15_loop_run",
        )
    state = last_job("ch15_loop")
    if SS.get("ch15_loop_run") and state.complete:
        view.show_run(SS["ch15_loop_run"])
    elif state.rows:  # stopped mid-run: the steps it finished
        st.caption(t("ch15.partial", n=len(state.rows)))
        view.show_steps(state.rows)
    else:
        pre = view.shipped_note("ch15_traces") or view.shipped_note("ch15_eval")  # dev traces, else held-out ones
        if pre:
            ids = [r["id"] for r in pre.data["results"]]
            choice = st.selectbox(
                t("ch15.shipped_trace"),
                ids,
                key="lo_shipped",
                format_func=lambda i: next(f"{i} · {r['task']}" for r in pre.data["results"] if r["id"] == i),
            )
            row = next(r for r in pre.data["results"] if r["id"] == choice)
            view.show_run(row["run"])
        else:
            st.info(t("ch15.no_trace"), icon="🧭")
    st.code('python -m engine agent "17 곱하기 23은 얼마인가요?" --trace', language="bash")
    notice("common.notice", t("ch15.notice_loop"))
    quiz("15", "loop")


def memory_section(ch) -> None:
    section_header(ch, "memory")
    param("me_k", 1, int, choices=MEMORY_K)
    st.radio(t("ch15.mem_k"), list(MEMORY_K), key="me_k", horizontal=True, help=t("ch15.mem_k_help"))
    k, language = SS["me_k"], lang()
    with st.expander(t("ch15.mem_conversation"), expanded=False):
        for user, bot in view.conversation():
            st.markdown(f"- 🙋 {user}  \n  🤖 {bot}")
    demo = view.window_demo(k)
    if st.button(t("ch15.mem_run"), key="me_run", help=t("ch15.mem_run_help")):
        run_and_keep(
            f"ch15_mem_{language}_{k}",
            lambda p, r, s: view.live_memory(k, language, p, r, s),
            t("ch15.mem_running"),
            f"ch15_mem_live_{language}_{k}",
        )
    both = SS.get(f"ch15_mem_live_{language}_{k}")
    pre = None
    if both is None:
        pre = load_precomputed("ch15_memory")
        both = (pre.data.get(language) or {}).get(str(k)) if pre else None
    c1, c2 = st.columns(2)
    with c1:
        st.subheader(t("ch15.mem_window"))
        view.show_memory(demo["window"])
    with c2:
        st.subheader(t("ch15.mem_summary_title"))
        if both:
            if pre:
                precomputed_note(pre)
            view.show_memory(both["summary"])
        else:
            st.info(t("ch15.mem_none"), icon="📝")
    view.facts_table(both["facts"] if both else demo["facts"])
    notice("common.notice", t("ch15.notice_memory"))
    quiz("15", "memory")


def a_section(ch, section: str, fn_name: str) -> None:
    fn = _a_section(fn_name)
    if fn is not None:
        fn(ch)
        return
    section_header(ch, section)
    st.info(t("ch15.coming"), icon="🚧")


def evaluation_section(ch) -> None:
    section_header(ch, "evaluation")
    pre = view.shipped_note("ch15_eval")
    if pre:
        s = pre.data["summary"]
        st.markdown(t("ch15.eval_heldout", n=s["tasks"], mode=pre.data["mode"]))
        if not pre.data.get("complete", True):  # a run cut short: its finished tasks, said as such
            st.warning(t("ch15.eval_partial", n=s["tasks"], total=view.heldout_size()), icon="⏳")
        view.show_report(pre.data["results"], "shipped")
    else:
        st.info(t("ch15.eval_none"), icon="📋")
    st.code("python -m engine agent-eval --split heldout --save-precomputed", language="bash")
    st.subheader(t("ch15.match_sub"))
    pairs = view.EXAMPLE_PAIRS
    param("ev_pair", 0, int, choices=range(len(pairs)))
    st.selectbox(t("ch15.match_example"), range(len(pairs)), key="ev_pair", format_func=view.pair_label)
    c1, c2 = st.columns(2)
    c1.text_input(
        t("ch15.match_actual"), key="ev_actual", max_chars=300, placeholder=" → ".join(pairs[SS["ev_pair"]][0])
    )
    c2.text_input(
        t("ch15.match_reference"), key="ev_reference", max_chars=300, placeholder=" → ".join(pairs[SS["ev_pair"]][1])
    )
    with friendly_errors():
        verdicts = view.match_verdicts(SS.get("ev_actual", ""), SS.get("ev_reference", ""), SS["ev_pair"])
        cols = st.columns(len(verdicts))
        for col, (mode, ok) in zip(cols, verdicts.items(), strict=True):
            col.metric(t(f"ch15.match_{mode}"), "✅" if ok else "❌", help=t(f"ch15.match_{mode}_help"))
    st.subheader(t("ch15.eval_live"))
    clamped("ev_limit", 3, 1, 15, int)
    param("ev_mode", "native", str, choices=MODES)
    c1, c2 = st.columns(2)
    c1.slider(t("ch15.eval_limit"), 1, 15, key="ev_limit", help=t("ch15.eval_limit_help"))
    c2.radio(t("ch15.mode"), list(MODES), key="ev_mode", format_func=lambda m: t(f"ch15.mode_{m}"), horizontal=True)
    if st.button(t("ch15.eval_run"), key="ev_run"):
        limit, mode = SS["ev_limit"], SS["ev_mode"]
        run_and_keep(
            "ch15_eval", lambda p, r, s: view.live_eval(limit, mode, p, r, s), t("ch15.eval_running"), "ch15_eval_live"
        )
    state = last_job("ch15_eval")
    rows = SS["ch15_eval_live"]["results"] if SS.get("ch15_eval_live") and state.complete else state.rows
    if rows:
        st.caption(t("ch15.eval_mine", n=len(rows)))
        view.show_report(rows, "mine")
    notice("common.notice", t("ch15.notice_evaluation"))
    quiz("15", "evaluation")


ch = chapter_header("15")
loop_section(ch)
memory_section(ch)
a_section(ch, "tools", "tools_section")
a_section(ch, "autogen", "autogen_section")
evaluation_section(ch)
a_section(ch, "safety", "safety_section")
show_code(ch)
