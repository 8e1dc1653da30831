"""Chapter 1 — the LLM map: next-token prediction live, a streamed chat, and the GPT scale story."""

import math

import streamlit as st

from engine.lm import (
    appendable,
    choose_token,
    generate_steps,
    gpt_scale,
    next_token_distribution,
    readable_count,
    steps_view,
)
from engine.serving import RESTART_MARK, stream_chat
from ui import charts
from ui.cache import causal_lm
from ui.i18n import pick, t
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code, truncation_note
from ui.state import param

ROLES = {"chat": "SmolLM2-135M-Instruct (chat)", "base-ko": "Gemma-3-270M (base-ko)"}


def next_token_section(ch) -> None:
    """Next-token prediction."""
    section_header(ch, "next_token")
    param("lm_prompt", t("ch1.default_prompt"), str)
    param("lm_role", "base-ko", str, choices=tuple(ROLES))
    param("lm_temp", 1.0, float)
    param("lm_topk", 10, int)
    param("lm_template", False)
    param("lm_strategy", "greedy", str, choices=("greedy", "sample"))

    left, right = st.columns([2, 1])
    with left:
        st.text_area(t("ch1.prompt"), key="lm_prompt", height=100, max_chars=20_000)
    with right:
        st.selectbox(t("common.model"), list(ROLES), format_func=ROLES.get, key="lm_role")
        st.slider(t("common.temperature"), 0.0, 2.0, step=0.05, key="lm_temp", help=t("ch1.temp_help"))
        st.slider(t("ch1.top_k"), 1, 50, key="lm_topk")
        st.toggle(
            t("ch1.chat_template"),
            key="lm_template",
            help=t("ch1.chat_template_help"),
            disabled=st.session_state["lm_role"] != "chat",
        )

    with friendly_errors():
        lm = causal_lm(st.session_state["lm_role"], t("common.loading_model"))
        use_template = st.session_state["lm_template"] and st.session_state["lm_role"] == "chat"
        dist = next_token_distribution(
            lm,
            st.session_state["lm_prompt"],
            temperature=st.session_state["lm_temp"],
            top_k=st.session_state["lm_topk"],
            use_chat_template=use_template,
        )
        for note in dist.notes:
            truncation_note(note)
        c1, c2 = st.columns([3, 1])
        c2.metric(t("ch1.prompt_tokens"), dist.prompt_tokens)
        c2.metric(t("ch1.entropy"), f"{dist.entropy_bits:.2f} bits")
        c2.caption(t("common.produced_by", model=ROLES[lm.role], device=lm.device, source=lm.resolved.source))

        strategy = c2.radio(
            t("ch1.strategy"),
            ["greedy", "sample"],
            key="lm_strategy",
            horizontal=True,
            format_func=lambda s: t(f"ch1.strategy_{s}"),
        )
        with c2:
            rng_seed = seed("lm_seed")
        choice = choose_token(dist, strategy, rng_seed)
        pick_index = next(i for i, c in enumerate(dist.candidates) if c.token_id == choice.token_id)
        labels = [c.label for c in dist.candidates]
        fig = charts.prob_bars(labels, [c.prob for c in dist.candidates], t("ch1.dist_title"), highlight=pick_index)
        fig.update_xaxes(title=t("ch1.axis_prob"))
        charts.show(c1, fig, width="stretch")

        def _append(piece: str) -> None:
            st.session_state["lm_prompt"] = st.session_state["lm_prompt"] + piece

        # A byte piece is no text on its own: the button appends it with the bytes that finish its character.
        add = appendable(lm, dist, choice)
        label = choice.label if not add.extra_tokens else f"{choice.label} → {add.label}"
        help_ = t("ch1.append_bytes_help", n=add.extra_tokens) if add.extra_tokens else None
        c2.button(t("ch1.append", token=label), on_click=_append, args=(add.text,), type="primary", help=help_)

        with st.expander(t("ch1.run_steps")):
            n_steps = st.slider(t("ch1.steps"), 1, 32, 8, key="lm_steps")
            if st.button(t("ch1.generate"), key="lm_generate"):
                steps = generate_steps(
                    lm,
                    st.session_state["lm_prompt"],
                    n_steps,
                    strategy=strategy,
                    temperature=st.session_state["lm_temp"],
                    top_k=st.session_state["lm_topk"],
                    seed=rng_seed,
                    use_chat_template=use_template,
                )
                text, rows = steps_view(lm, steps)
                st.markdown("**" + t("ch1.generated") + "** " + text)
                charts.table(rows, [t(f"ch1.col_{c}") for c in ("step", "token", "prob", "top3")])
    notice("common.notice", t("ch1.notice_next_token"))
    quiz("01", "next_token")


def chat_section(ch) -> None:
    """Streamed chat through the model server."""
    section_header(ch, "chat")
    param("chat_max_tokens", 128, int)
    param("chat_temp", 0.7, float)
    cc1, cc2 = st.columns(2)
    cc1.slider(t("common.max_tokens"), 1, 512, key="chat_max_tokens")
    cc2.slider(t("common.temperature"), 0.0, 2.0, step=0.05, key="chat_temp")
    history = st.session_state.setdefault("chat_history", [])
    messages = st.container()
    for msg in history:
        messages.chat_message(msg["role"]).write(msg["content"])
    # Inside a container the input sits here, in the page. At the top level Streamlit pins it to the bottom of
    # the window and keeps the page scrolled down to it, so chapter 1 would open in the middle, not at its title.
    question = st.container().chat_input(t("ch1.chat_placeholder"), max_chars=4_000)
    if question:
        history.append({"role": "user", "content": question})
        messages.chat_message("user").write(question)
        with messages.chat_message("assistant"), friendly_errors():
            pieces = stream_chat(
                history[-8:],
                max_tokens=st.session_state["chat_max_tokens"],
                temperature=st.session_state["chat_temp"],
                seed=0,
            )

            def _visible(stream):
                for piece in stream:
                    if piece == RESTART_MARK:
                        st.toast(t("backend.restarted"))
                        continue
                    yield piece

            answer = st.write_stream(_visible(pieces))
            history.append({"role": "assistant", "content": answer or ""})
    if history and st.button(t("ch1.clear_chat")):
        history.clear()
        st.rerun()
    notice("common.notice", t("ch1.notice_chat"))


def scale_figure(rows: list[dict]):
    """The scale scatter with papers' notation on the log axis (100M, 1B, not plotly's 1G) and room on both sides
    for the model names written at the first and last year."""
    fig = charts.scale_scatter(rows, t("ch1.scale_title"), {"params": t("ch1.axis_params"), "year": t("ch1.axis_year")})
    ticks = [10**k for k in range(8, 13)]
    fig.update_yaxes(tickmode="array", tickvals=ticks, ticktext=[readable_count(v) for v in ticks])
    years = [r["year"] for r in rows]
    fig.update_xaxes(range=[min(years) - 0.8, max(years) + 0.8], dtick=1)
    known = [math.log10(r["params"]) for r in rows if r["params"]]
    fig.update_yaxes(range=[min(known) - 0.3, max(known) + 0.5])  # the name above the highest point stays inside
    fig.update_layout(height=420)
    return fig


def scale_section(ch) -> None:
    """The scale story."""
    section_header(ch, "scale")
    rows = gpt_scale()
    charts.show(st, scale_figure(rows), width="stretch")
    undisclosed = t("common.undisclosed")

    def params(r: dict) -> str:
        return readable_count(r["params"]) if r["params"] else f"{undisclosed} — {pick(r['params_note'])}"

    table = [
        {
            t("ch1.col_model"): r["model"],
            t("ch1.col_year"): r["year"],
            t("ch1.col_params"): params(r),
            t("ch1.col_context"): f"{r['context']:,}",
            t("ch1.col_data"): pick(r["data"]),
            t("ch1.col_note"): pick(r["note"]),
            t("ch1.col_source"): r["source"],
        }
        for r in rows
    ]
    charts.table(table, column_config={t("ch1.col_params"): st.column_config.TextColumn(width="medium")})
    notice("common.notice", t("ch1.notice_scale"))
    quiz("01", "scale")


ch = chapter_header("01")
next_token_section(ch)
chat_section(ch)
scale_section(ch)
show_code(ch)
