"""Chapter 9 — LLM applications: RAG with LlamaIndex over the Constitution or the learner's files, the Chroma store
underneath, the LLM cache, rails and tracing. The model server, indexes and the tracing store are touched only
behind buttons; a fresh page shows shipped results (assets/precomputed/ch09_*.json)."""

import dataclasses

import streamlit as st

from engine.models import installed
from engine.rag import (
    DEFAULT_THRESHOLD,
    MODELS,
    RETRIEVERS,
    THRESHOLD_RANGE,
    TOP_K_RANGE,
    CachePair,
    Passage,
    RagSettings,
    check_input,
    check_output,
    check_passages,
    compare_stores,
    constitution,
    evaluate_rails,
    load_cache_pairs,
    mlflow_ui_command,
    recent_traces,
    score_pairs,
    shared_cache,
    threshold_sweep,
    trace_spans,
    tracking_uri,
    validate_structured,
)
from ui import rag as view
from ui.i18n import t
from ui.jobs import run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.state import param

SS = st.session_state


def settings_from_state(question: str, **changes) -> RagSettings:
    base = RagSettings(
        retriever=SS["rg_retriever"],
        top_k=SS["rg_top_k"],
        cutoff=SS["rg_cutoff"],
        cache=SS["rg_cache"],
        cache_threshold=SS.get("ca_threshold", DEFAULT_THRESHOLD),
        cache_guard=SS.get("ca_guard", True),
        rails=SS["rg_rails"],
        lang=view.prompt_lang(question),
        model=SS.get("rg_model", "instruct") if installed(SS.get("rg_model", "instruct")) else "instruct",
    )
    return dataclasses.replace(base, **changes)


def rag_section(ch) -> None:
    section_header(ch, "rag")
    st.markdown(t("ch09.shape"))
    param("rg_corpus", "constitution", str, choices=("constitution", "upload"))
    param("rg_retriever", "best", str, choices=RETRIEVERS)
    param("rg_top_k", 5, int)
    param("rg_cutoff", 0.0, float)
    param("rg_cache", True)
    param("rg_rails", True)
    param("rg_question", t("ch09.default_question"), str)
    c1, c2 = st.columns(2)
    c1.radio(t("ch09.corpus"), ["constitution", "upload"], key="rg_corpus", format_func=lambda v: t(f"ch09.corpus_{v}"))
    c2.radio(t("ch09.retriever"), list(RETRIEVERS), key="rg_retriever", format_func=lambda v: t(f"ch09.retriever_{v}"))
    corpus = constitution() if SS["rg_corpus"] == "constitution" else view.uploaded_corpus()
    models = [m for m in MODELS if installed(m)]  # instruct-large only with `make install-large`
    if len(models) > 1:
        param("rg_model", "instruct", str, choices=MODELS)
        st.radio(t("ch09.model"), models, key="rg_model", horizontal=True, format_func=lambda m: t(f"ch09.model_{m}"))
    k1, k2, k3, k4 = st.columns(4)
    k1.slider("top_k", *TOP_K_RANGE, key="rg_top_k", help=t("ch09.top_k_help"))
    k2.slider(t("ch09.cutoff"), 0.0, 0.9, step=0.05, key="rg_cutoff", help=t("ch09.cutoff_help"))
    k3.toggle(t("ch09.use_cache"), key="rg_cache", help=t("ch09.use_cache_help"))
    k4.toggle(t("ch09.use_rails"), key="rg_rails", help=t("ch09.use_rails_help"))
    st.text_area(t("ch09.question"), key="rg_question", height=80, help=t("ch09.question_help"))
    note = st.container()  # the shipped answer's label goes above the answer it labels
    left, right = st.columns(2)
    left.markdown(f"**{t('ch09.no_rag')}**")
    right.markdown(f"**{t('ch09.with_rag')}**")
    if st.button(t("ch09.ask"), key="rg_ask", type="primary", disabled=corpus is None):
        with friendly_errors():
            question = SS["rg_question"]
            SS["ch09_run"] = view.run_pair(question, corpus, settings_from_state(question), left, right)
    shown = SS.get("ch09_run")
    if shown is None and SS["rg_corpus"] == "constitution":
        with note:
            pre = view.shipped_note("ch09_answer")
        shown = pre.data if pre else None
    if shown is not None:
        st.caption(t("ch09.answer_for", question=shown["question"]))
        view.show_answers(shown, left, right)
    notice("common.notice", t("ch09.notice_rag"))
    quiz("09", "rag")


def vector_db_section(ch) -> None:
    section_header(ch, "vector_db")
    param("vd_n", 5_000, int, choices=(2_000, 5_000, 20_000))
    st.select_slider(t("ch09.store_n"), [2_000, 5_000, 20_000], key="vd_n", format_func=lambda v: f"{v:,}")
    slot = st.container()
    if st.button(t("ch09.run_stores"), key="vd_run"):
        with friendly_errors():
            n = SS["vd_n"]
            job = run_job("ch09_stores", lambda p, on_row, stop: compare_stores(n=n, n_queries=50, progress=p))
            if job.complete:
                rows = [dataclasses.asdict(r) for r in job.result.rows]
                SS["ch09_stores"] = {"n": n, "k": job.result.k, "rows": rows}
    show_job_status("ch09_stores")
    data = SS.get("ch09_stores")
    if data is None:
        with slot:
            pre = view.shipped_note("ch09_stores")
        data = pre.data if pre else None
    if data is not None:
        view.show_stores(data)
    st.markdown(t("ch09.stores_notes"))
    notice("common.notice", t("ch09.notice_vector_db"))
    quiz("09", "vector_db")


def cache_section(ch) -> None:
    section_header(ch, "cache")
    param("ca_threshold", DEFAULT_THRESHOLD, float)
    param("ca_guard", True)
    g1, g2 = st.columns([3, 1])
    g1.slider(t("ch09.threshold"), *THRESHOLD_RANGE, step=0.01, key="ca_threshold", help=t("ch09.threshold_help"))
    g2.toggle(t("ch09.guard"), key="ca_guard", help=t("ch09.guard_help"))
    st.subheader(t("ch09.ask_twice_title"))
    param("ca_q1", t("ch09.default_question"), str)
    param("ca_q2", t("ch09.paraphrase_default"), str)
    q1, q2 = st.columns(2)
    q1.text_input(t("ch09.first_question"), key="ca_q1", max_chars=1_000)
    q2.text_input(t("ch09.second_question"), key="ca_q2", max_chars=1_000)
    if st.button(t("ch09.ask_twice"), key="ca_ask"):
        with friendly_errors():
            questions = (SS["ca_q1"], SS["ca_q1"], SS["ca_q2"])
            settings = settings_from_state(questions[0], cache=True)
            work = lambda p, on_row, stop: view.ask_twice(questions, settings, p, on_row, stop)  # noqa: E731
            SS["ch09_twice"] = run_job("ch09_twice", work, label=t("ch09.asking")).rows
    if SS.get("ch09_twice"):
        view.cache_rows(SS["ch09_twice"])
    st.subheader(t("ch09.pairs_title"))
    pair_check()
    st.subheader(t("ch09.sweep_heading"))
    slot = st.container()
    if st.button(t("ch09.run_sweep"), key="ca_sweep"):
        with friendly_errors():
            job = run_job("ch09_sweep", lambda p, on_row, stop: threshold_sweep())
            if job.complete:
                SS["ch09_sweep"] = [dataclasses.asdict(m) for m in job.result]
    rows = SS.get("ch09_sweep")
    if rows is None:
        with slot:
            pre = view.shipped_note("ch09_cache")
        rows = pre.data["rows"] if pre else None
    if rows:
        view.show_sweep(rows, SS["ca_threshold"])
    notice("common.notice", t("ch09.notice_cache"))
    quiz("09", "cache")


def use_pair() -> None:
    pair = SS["ca_preset"]
    if pair is not None:
        SS["ca_a"], SS["ca_b"] = pair.a, pair.b


def pair_check() -> None:
    param("ca_a", t("ch09.pair_a"), str)
    param("ca_b", t("ch09.pair_b"), str)
    pairs = load_cache_pairs()
    st.selectbox(
        t("ch09.preset"),
        pairs[:: max(1, len(pairs) // 8)],
        index=None,
        placeholder=t("ch09.preset_placeholder"),
        key="ca_preset",
        format_func=lambda p: f"{p.a}  ↔  {p.b}  ({t(f'ch09.label_{p.label}')})",
        on_change=use_pair,
    )
    a1, a2 = st.columns(2)
    a1.text_input(t("ch09.cached_question"), key="ca_a", max_chars=1_000)
    a2.text_input(t("ch09.new_question"), key="ca_b", max_chars=1_000)
    result = SS.get("ch09_pair")
    if st.button(t("ch09.compare_pair"), key="ca_compare"):
        with friendly_errors():
            a, b = SS["ca_a"], SS["ca_b"]
            with st.spinner(t("ch09.loading_encoder")):
                scored = score_pairs([CachePair(a, b, "", "")], shared_cache().embed)[0]
                result = {"a": a, "b": b, "similarity": scored.similarity, "guard": scored.guard}
            SS["ch09_pair"] = result
    if result is None:
        pre = view.shipped_note("ch09_cache")
        result = pre.data["pair"] if pre else None
    if result is not None:
        guard = view.as_dict(result["guard"])
        hit = result["similarity"] >= SS["ca_threshold"] and (guard["passed"] or not SS["ca_guard"])
        p1, p2, p3 = st.columns(3)
        p1.metric(t("ch09.col_similarity"), f"{result['similarity']:.3f}")
        p2.metric(t("ch09.guard"), t("ch09.passed") if guard["passed"] else t("ch09.flagged"))
        p3.metric(t("ch09.would_hit"), t("ch09.yes") if hit else t("ch09.no"))
        st.caption(t("ch09.pair_caption", a=result["a"], b=result["b"], why=t(f"ch09.guard_{guard['reason']}")))


def rails_section(ch) -> None:
    section_header(ch, "rails")
    param("rl_question", t("ch09.rail_default_question"), str)
    st.text_input(t("ch09.rail_question"), key="rl_question", max_chars=1_000)
    with friendly_errors():
        check = check_input(SS["rl_question"])
        (st.error if check.blocked else st.success)(t("ch09.blocked" if check.blocked else "ch09.allowed"))
        st.caption(t("ch09.masked"))
        st.code(check.text, language=None, wrap_lines=True)
        view.verdict_table(check.verdicts)
    param("rl_passage", t("ch09.rail_default_passage"), str)
    st.text_area(t("ch09.rail_passage"), key="rl_passage", height=80, max_chars=5_000)
    with friendly_errors():
        _, verdicts = check_passages([Passage("upload.txt#1", "upload.txt ¶1", SS["rl_passage"], "upload.txt")])
        view.verdict_table(verdicts)
    with st.form("rl_output"):
        o1, o2 = st.columns(2)
        out_answer = o1.text_area(t("ch09.rail_answer"), t("ch09.rail_default_answer"), max_chars=3_000)
        out_passage = o2.text_area(t("ch09.rail_support"), t("ch09.rail_default_support"), max_chars=5_000)
        checked = st.form_submit_button(t("ch09.check_grounded"))
    if checked:
        with friendly_errors(), st.spinner(t("ch09.loading_kiwi")):
            view.verdict_table(check_output(out_answer, [Passage("제70조", "제70조", out_passage, "constitution")]))
    param("rl_json", t("ch09.rail_default_json"), str)
    st.text_area(t("ch09.rail_json"), key="rl_json", height=90, max_chars=5_000, help=t("ch09.rail_json_help"))
    with friendly_errors():
        view.verdict_table([validate_structured(SS["rl_json"], ["제70조"]).verdict])
    st.subheader(t("ch09.rail_metrics_title"))
    slot = st.container()
    if st.button(t("ch09.run_rails"), key="rl_eval"):
        with friendly_errors():
            # progress reaches the page on every item and through a first index build (minutes): Stop acts there
            work = lambda p, on_row, stop: {  # noqa: E731
                s: evaluate_rails(s, progress=lambda f, m, i=i: p((i + f) / 2, m))
                for i, s in enumerate(("test", "tune"))
            }
            job = run_job("ch09_rails", work, label=t("ch09.evaluating"))
            if job.complete:
                SS["ch09_rails"] = {s: [view.as_dict(m) for m in ms] for s, ms in job.result.items()}
    data = SS.get("ch09_rails")
    if data is None:
        with slot:
            pre = view.shipped_note("ch09_rails")
        data = pre.data if pre else None
    if data:
        view.rail_metrics(data["test"], data.get("tune"))
        st.caption(t("ch09.rail_metrics_caption"))
    st.markdown(t("ch09.nemo_note"))
    notice("common.notice", t("ch09.notice_rails"))
    quiz("09", "rails")


def tracing_section(ch) -> None:
    section_header(ch, "tracing")
    st.caption(t("ch09.tracking_uri", uri=tracking_uri()))
    st.code(mlflow_ui_command(), language="bash")
    run = SS.get("ch09_run")
    fresh = run is not None and run["rag"]["trace_id"] != SS.get("ch09_traces_for")
    if st.button(t("ch09.load_traces"), key="tr_load") or fresh:
        with friendly_errors(), st.spinner(t("ch09.reading_traces")):
            SS["ch09_traces"] = recent_traces(20)
            SS["ch09_traces_for"] = run["rag"]["trace_id"] if run else None
    traces = SS.get("ch09_traces")
    if traces is None:
        pre = view.shipped_note("ch09_answer")
        if pre:
            st.caption(t("ch09.shipped_trace", question=pre.data["question"]))
            view.show_spans(pre.data.get("spans") or [])
    elif not traces:
        st.info(t("ch09.no_traces"))
    else:
        view.trace_table(traces)
        ids = [tr.trace_id for tr in traces]
        pick = st.selectbox(t("ch09.pick_trace"), ids, key="tr_pick", format_func=lambda i: view.trace_label(traces, i))
        with friendly_errors():
            view.show_spans([dataclasses.asdict(s) for s in trace_spans(pick)])
    st.markdown(t("ch09.wandb_note"))
    notice("common.notice", t("ch09.notice_tracing"))
    quiz("09", "tracing")


ch = chapter_header("09")
rag_section(ch)
vector_db_section(ch)
cache_section(ch)
rails_section(ch)
tracing_section(ch)
show_code(ch)
