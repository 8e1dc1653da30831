"""Chapter 15 view helpers: the agent trace (step by step), the two memories side by side, the evaluation report and
the trajectory matcher. Everything the page draws from a run works on plain dicts (`AgentRun.as_dict()`, the
shipped JSON), so a live run, a stopped run's rows and a shipped trace look the same."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.agents import (
    MATCH_MODES,
    WindowMemory,
    demo_conversation,
    evaluate,
    forgotten,
    load_tasks,
    memory_demo,
    run_agent,
    trajectory_match,
)
from engine.core import load_precomputed
from ui.errors import error_message
from ui.i18n import lang, maybe, t
from ui.layout import precomputed_note


def shipped_note(name: str):
    pre = load_precomputed(name)
    if pre is not None:
        precomputed_note(pre)
    return pre


def code_text(code: str | None, fmt: dict | None = None) -> str:
    """An error code in the learner's language (engine codes are translated in errors.yaml)."""
    if not code:
        return ""
    from engine.core import UserError

    return error_message(UserError(code, **(fmt or {})))


def step_dict(step) -> dict:
    d = asdict(step) if not isinstance(step, dict) else dict(step)
    d.pop("artifact", None)
    return d


def tools_for(names: list[str]):
    from engine.agents import default_tools

    return default_tools(names or None)


def live_run(task: str, mode: str, max_steps: int, names: list[str], progress, on_row, should_stop) -> dict:
    """One agent run for the page's job: each finished step goes to `on_row` (kept if the learner stops)."""
    run = run_agent(
        task,
        tools_for(names),
        mode=mode,
        max_steps=max_steps,
        should_stop=should_stop,
        progress=progress,
        on_step=lambda s: on_row(step_dict(s)),
    )
    return run.as_dict()


# --- the trace ---------------------------------------------------------------------------------------------------


def show_run(run: dict) -> None:
    """The run's outcome on top (answer or why it ended), then every step."""
    steps = run.get("steps") or []
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("ch15.steps"), len(steps))
    c2.metric(t("ch15.tokens"), f"{sum(s.get('tokens_in', 0) + s.get('tokens_out', 0) for s in steps):,}")
    c3.metric(t("ch15.seconds"), f"{run.get('seconds', 0):.1f}")
    c4.metric(t("ch15.language"), maybe(f"ch15.lang_{run.get('language', 'ko')}", run.get("language", "")))
    if run.get("answer"):
        st.success(t("ch15.answer", answer=run["answer"]), icon="✅")
    elif run.get("error"):
        st.warning(t("ch15.ended", why=code_text(run["error"], run.get("error_args"))), icon="⏹")
    if run.get("role"):
        st.caption(t("ch15.ran_on", role=run["role"]))
    if len(run.get("parts") or []) > 1:
        st.caption(t("ch15.plan_parts", parts=" → ".join(run["parts"])))
    if run.get("language") == "other":
        st.caption(t("ch15.other_language"))
    show_steps(steps)


def show_steps(steps: list[dict]) -> None:
    for s in steps:
        head = t(
            "ch15.step_head",
            n=s["index"] + 1,
            what=(f"🔧 {s['tool']}" if s.get("tool") else "💬 " + t("ch15.final")),
            tin=s.get("tokens_in", 0),
            tout=s.get("tokens_out", 0),
            seconds=f"{s.get('seconds', 0):.1f}",
        )
        with st.container(border=True):
            st.markdown(f"**{head}**")
            if s.get("planned"):
                st.caption(t("ch15.planned", part=s["planned"]))
            if s.get("routed"):
                st.caption(t("ch15.routed", step=s["routed"]))
            if s.get("thought"):
                st.markdown(f"{t('ch15.thought')}: {s['thought']}")
            if s.get("tool"):
                st.markdown(t("ch15.call"))
                st.code(json.dumps({"name": s["tool"], "arguments": s.get("arguments", {})}, ensure_ascii=False))
                if s.get("repaired"):
                    st.caption(t("ch15.repaired", what=s["repaired"]))
            if s.get("error"):
                st.warning(code_text(s["error"], s.get("error_args")), icon="⚠️")
            if s.get("observation"):
                st.markdown(t("ch15.observation", chars=f"{s.get('observation_chars', 0):,}"))
                st.code(s["observation"], language=None)
            elif not s.get("tool") and s.get("raw"):
                st.markdown(s["raw"])


# --- memory --------------------------------------------------------------------------------------------------------


def conversation() -> list[tuple[str, str]]:
    return demo_conversation(lang())[0]


def facts() -> list[str]:
    return demo_conversation(lang())[1]


def window_demo(k: int) -> dict:
    """The window memory over the demo conversation (no model needed), in the shape of memory_demo's result."""
    turns, fs = demo_conversation(lang())
    mem = WindowMemory(k=k)
    for user, bot in turns:
        mem.add(user, bot)
    v = mem.view()
    return {"window": v.as_dict(), "facts": {f: {"window": forgotten(v, [f])[f]} for f in fs}}


def live_memory(k: int, language: str, progress, on_row, should_stop) -> dict:
    """Both memories; the model writes the summary as each turn falls out of the window."""
    n = len(demo_conversation(language)[0])
    return memory_demo(language, k, on_turn=lambda i: progress((i + 1) / n, f"{i + 1}/{n}"))


def show_memory(view: dict) -> None:
    if view.get("summary"):
        st.markdown(t("ch15.mem_summary"))
        st.info(view["summary"], icon="📝")
    st.markdown(t("ch15.mem_kept", n=len(view["kept"])))
    for turn in view["kept"]:
        st.markdown(f"- 🙋 {turn['user']}  \n  🤖 {turn['assistant']}")
    if view["dropped"]:
        st.markdown(t("ch15.mem_dropped", n=len(view["dropped"])))
        for turn in view["dropped"]:
            st.markdown(f"- ~~{turn['user']}~~")
    st.caption(t("ch15.mem_chars", chars=f"{view['chars']:,}"))


def facts_table(facts_seen: dict[str, dict[str, bool]]) -> None:
    """fact -> for each memory: still visible to the model (✅) or forgotten (❌)."""
    rows = []
    for fact, by_kind in facts_seen.items():
        row = {t("ch15.mem_fact"): fact}
        for kind, forgot in by_kind.items():
            row[t(f"ch15.mem_col_{kind}")] = "❌ " + t("ch15.mem_forgot") if forgot else "✅"
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


# --- evaluation ------------------------------------------------------------------------------------------------


def live_eval(limit: int, mode: str, progress, on_row, should_stop) -> dict:
    report = evaluate(
        "dev",
        mode=mode,
        limit=limit,
        progress=progress,
        on_row=lambda r: on_row(asdict(r)),
        should_stop=should_stop,
    )
    return report.as_dict()


def summary_of(rows: list[dict]) -> dict:
    """The summary of a list of result rows (a stopped run's rows, or a report's)."""
    import statistics

    if not rows:
        return {}
    return {
        "tasks": len(rows),
        "success_rate": sum(r["success"] for r in rows) / len(rows),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
        "mean_steps": statistics.mean(r["steps"] for r in rows),
        "mean_tokens": statistics.mean(r["tokens"] for r in rows),
        "match_rates": {m: sum(r["match"][m] for r in rows) / len(rows) for m in MATCH_MODES},
    }


def show_report(rows: list[dict], key: str = "report") -> None:
    s = summary_of(rows)
    if not s:
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("ch15.success_rate"), f"{100 * s['success_rate']:.0f}%", help=t("ch15.success_help"))
    c2.metric(t("ch15.median_seconds"), f"{s['median_seconds']:.1f}")
    c3.metric(t("ch15.mean_steps"), f"{s['mean_steps']:.2f}")
    c4.metric(t("ch15.mean_tokens"), f"{s['mean_tokens']:,.0f}")
    fig = go.Figure(
        go.Bar(
            x=[t(f"ch15.match_{m}") for m in MATCH_MODES],
            y=[100 * s["match_rates"][m] for m in MATCH_MODES],
            text=[f"{100 * s['match_rates'][m]:.0f}%" for m in MATCH_MODES],
            textposition="auto",
        )
    )
    fig.update_layout(
        title=t("ch15.match_title"), yaxis_title="%", yaxis_range=[0, 100], height=300, margin=dict(t=40, b=10)
    )
    st.plotly_chart(fig, width="stretch")
    table = pd.DataFrame(
        [
            {
                t("ch15.col_id"): r["id"],
                t("ch15.col_task"): r["task"],
                t("ch15.col_expected"): r["expected"],
                t("ch15.col_ok"): "✅" if r["success"] else "❌",
                t("ch15.col_calls"): " → ".join(map(tool_label, r["calls"])) or "—",
                t("ch15.col_reference"): " → ".join(map(tool_label, r["reference"])),
                **{t(f"ch15.match_{m}"): "✓" if r["match"][m] else "✗" for m in MATCH_MODES},
                t("ch15.col_steps"): r["steps"],
                t("ch15.col_tokens"): r["tokens"],
                t("ch15.col_seconds"): f"{r['seconds']:.1f}",
                t("ch15.col_error"): r["error"] or "",
            }
            for r in rows
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    traced = [r for r in rows if r.get("run")]
    if traced:  # the answers (free text, any language) are read with their traces, not in the table
        ids = [r["id"] for r in traced]
        choice = st.selectbox(t("ch15.trace_of"), ids, key=f"trace_{key}", format_func=lambda i: _task_label(i, traced))
        view_run = next(r for r in traced if r["id"] == choice)["run"]
        with st.expander(t("ch15.trace_title", id=choice), expanded=False):
            show_run(view_run)


def _task_label(i: str, rows: list[dict]) -> str:
    r = next(x for x in rows if x["id"] == i)
    return f"{i} · {'✅' if r['success'] else '❌'} · {r['task']}"


def tool_label(name: str) -> str:
    return maybe(f"ch15.tool_{name}", name)


def parse_names(text: str) -> list[str]:
    return [n.strip() for n in text.replace("→", ",").replace(">", ",").split(",") if n.strip()]


# (agent's trajectory, reference): examples for the matcher, the first one shown on a fresh page
EXAMPLE_PAIRS = [
    (["sql_query", "sql_query", "calculator"], ["sql_query", "calculator"]),
    (["calculator", "sql_query"], ["sql_query", "calculator"]),
    (["sql_query"], ["sql_query", "calculator"]),
    (["constitution_search", "calculator"], ["constitution_search", "calculator"]),
    (["calculator"], ["constitution_search", "calculator"]),
]


def pair_label(i: int) -> str:
    actual, ref = EXAMPLE_PAIRS[i]
    return f"{' → '.join(actual)}  |  {' → '.join(ref)}"


def match_verdicts(actual: str, reference: str, example: int = 0) -> dict[str, bool]:
    """The four verdicts for what the learner typed; an empty box takes the chosen example's trajectory."""
    a = parse_names(actual) if actual.strip() else EXAMPLE_PAIRS[example][0]
    r = parse_names(reference) if reference.strip() else EXAMPLE_PAIRS[example][1]
    return {m: trajectory_match(a, r, m) for m in MATCH_MODES}


def heldout_size() -> int:
    return len(load_tasks("heldout"))


def example_tasks() -> list[str]:
    return [x.task for x in load_tasks("dev")]


__all__ = [
    "EXAMPLE_PAIRS",
    "code_text",
    "conversation",
    "example_tasks",
    "facts_table",
    "live_eval",
    "live_memory",
    "live_run",
    "match_verdicts",
    "pair_label",
    "shipped_note",
    "show_memory",
    "show_report",
    "show_run",
    "window_demo",
]
