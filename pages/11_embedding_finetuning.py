"""Chapter 11 — your own embedding model: MNR fine-tuning, an LM turned embedding model, reranking, Korean search."""

import streamlit as st

from engine.core import InputError, null_progress
from engine.llmops import log_mnr_pairs, mnr_record
from engine.models import load_causal_lm
from engine.retrieval import (
    DEV_QUESTIONS,
    METHODS,
    dev_and_test_metrics,
    evaluate_pipelines,
    lm_similarity,
    load_questions,
    load_reranker,
    mnr_experiment,
    nearest_morphemes,
    train_reranker,
    zero_shot_comparison,
)
from ui import charts
from ui.cache import cached, causal_lm, shared
from ui.i18n import t
from ui.jobs import run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.search import (
    before_after,
    build_index_button,
    constitution_index,
    cross_encoder_view,
    encoder_view,
    eval_view,
    hits_table,
    lm_rerank_view,
    mnr_view,
    search_metrics_view,
    shipped,
    show_rows,
)
from ui.state import param
from ui.tracking import Track, track_toggle, tracked, tracked_note


def run_once(
    job: str, button: str, key: tuple, work, done_key: str, primary: bool = False, track=None, heavy: bool = False
) -> bool:
    """A run button (progress bar and Stop); the result is shared under `key`. True once it ran for `key` here.
    With `track` (a ui.tracking.Track), a "Track in MLflow" toggle sits beside it and a run that trains is logged
    (a result another session already computed is shared, not trained again: nothing new is logged)."""
    ss = st.session_state
    if track is None:
        clicked, on = st.button(button, key=f"{job}_btn", type="primary" if primary else "secondary"), False
    else:
        left, right = st.columns([4, 1], vertical_alignment="center")
        clicked = left.button(button, key=f"{job}_btn", type="primary" if primary else "secondary")
        on = track_toggle("ch11_track", job, right)
    if clicked and run_job(job, tracked(job, work, track, on), label=button, shared_key=key, heavy=heavy).complete:
        ss[done_key] = key
    show_job_status(job)
    if track is not None:
        tracked_note(job)
    return ss.get(done_key) == key


def mnr_track(n_pairs: int, epochs: int, lr: float) -> Track:
    """What the MNR run logs to MLflow (llmlab-ch11): the settings, the loss per logged step, dev hit rates before
    and after, the synthetic pairs' version and a summary.json."""
    params = {"model": "embed", "pairs": n_pairs, "epochs": epochs, "lr": lr, "seed": 0, "batch_size": 16}
    return Track(
        "ch11",
        "mnr-train",
        params,  # the pairs' version is logged by the work itself (log_mnr_pairs) once it has made them
        finish=mnr_record,
        command="pages/11_embedding_finetuning.py",
    )


def missing_index(build_key: str, name: str):
    """No index here: say so, label the shipped result `name` (returned), then the build button below the label."""
    st.info(t("ch11.index_missing"))
    pre = shipped(name)
    build_index_button(t("ch11.build"), t("ch11.building"), build_key)
    return pre


def contrastive_section(ch) -> None:
    """Contrastive learning: MNR fine-tuning of MiniLM."""
    section_header(ch, "contrastive")
    param("m_pairs", 192, int)
    param("m_epochs", 1, int)
    param("m_lr", 1e-4, float)
    c1, c2, c3 = st.columns(3)
    c1.select_slider(t("ch11.pairs"), [64, 128, 192, 256, 384], key="m_pairs")
    c2.slider(t("ch11.epochs"), 1, 3, key="m_epochs")
    c3.select_slider(t("ch11.lr"), [3e-5, 1e-4, 3e-4], key="m_lr")
    ss = st.session_state
    key = ("mnr", ss["m_pairs"], ss["m_epochs"], ss["m_lr"])
    _, n_pairs, epochs, lr = key
    slot = st.container()
    with friendly_errors():
        work = lambda p, on_row, stop: mnr_experiment(n_pairs, epochs, lr, p, stop, log_mnr_pairs)  # noqa: E731
        if run_once(
            "ch11_mnr", t("ch11.mnr_run"), key, work, "m_done", True, mnr_track(n_pairs, epochs, lr), heavy=True
        ):
            res = cached(key, lambda p: mnr_experiment(n_pairs, epochs, lr, p), t("ch11.mnr_run"))
            mnr_view(vars(res))
        else:
            with slot:
                pre = shipped("ch11_mnr")
            if pre is None:
                st.caption(t("ch11.mnr_idle"))
            else:
                d = pre.data
                if (d["n_pairs"], d["epochs"], d["lr"]) != key[1:]:
                    st.caption(t("ch11.mnr_shipped_other", pairs=d["n_pairs"], epochs=d["epochs"], lr=d["lr"]))
                mnr_view(d)
    notice("common.notice", t("ch11.notice_mnr"))
    quiz("11", "contrastive")


def lm_embedding_section(ch) -> None:
    """A language model turned into an embedding model."""
    section_header(ch, "lm_embedding")
    with friendly_errors():
        morphemes()
        idx = constitution_index()
        if idx is None:
            pre = missing_index("l_build", "ch11_lm")
            if pre is not None:
                encoder_view(pre.data["info"])
                st.subheader(t("ch11.before_after"))
                before_after(pre.data["before"], pre.data["after"])
        else:
            encoder_view(vars(idx.korean.info) if idx.korean.info else None)
            slot = st.container()
            work = lambda p, on_row, stop: zero_shot_comparison(idx, p)  # noqa: E731
            if run_once("ch11_zero", t("ch11.zero_shot_run"), ("korean_zero_shot",), work, "l_zero_done"):
                before, after = cached(("korean_zero_shot",), lambda p: zero_shot_comparison(idx, p), "")
            else:
                with slot:
                    pre = shipped("ch11_lm")
                before, after = (pre.data["before"], pre.data["after"]) if pre else (None, None)
            if before is not None:
                st.subheader(t("ch11.before_after"))
                before_after(before, after)
        gemma()
    notice("common.notice", t("ch11.notice_lm"))
    quiz("11", "lm_embedding")


def morphemes() -> None:
    """Kiwi's own morpheme embeddings (no index needed): the nearest morphemes of a word."""
    ss = st.session_state
    param("l_word", "세금", str)
    st.text_input(t("ch11.morpheme"), key="l_word", max_chars=20)
    try:
        near = nearest_morphemes(ss["l_word"], top_n=8)
        show_rows([{"morpheme": form, "cos": round(cos, 3)} for form, cos in near])
        st.caption(t("ch11.neighbours_of"))
    except InputError:
        st.caption(t("ch11.morpheme_unknown", word=ss["l_word"].strip()))


def gemma() -> None:
    """Mean-pooled Gemma-3-270M states: loading the model is the slow part (a button); then every layer is live."""
    ss = st.session_state
    param("l_layer", 6, int)
    st.slider(t("ch11.gemma_layer"), 1, 18, key="l_layer")
    slot = st.container()
    load = lambda p, on_row, stop: load_causal_lm("base-ko", p)  # noqa: E731
    if run_once("ch11_gemma", t("ch11.gemma_run"), ("causal_lm", "base-ko"), load, "l_gemma_done"):
        layer, lm = ss["l_layer"], causal_lm("base-ko", t("common.loading_model"))
        sim = cached(("gemma_similarity", layer), lambda p: lm_similarity(lm, layer), "")  # seconds per layer
        labels, matrix = sim.labels, sim.matrix
    else:
        with slot:
            pre = shipped("ch11_gemma")
        if pre is None:
            return
        labels, matrix, layer = pre.data["labels"], pre.data["matrix"], pre.data["layer"]
    charts.show(st, charts.heatmap(matrix, labels, title=t("ch11.gemma_heatmap", layer=layer)), width="stretch")


def rerank_section(ch) -> None:
    """Rerankers: the book's cross-encoder (trained live) and the late-interaction LM reranker of the index."""
    section_header(ch, "rerank")
    with friendly_errors():
        idx = constitution_index()
        if idx is None:
            pre = missing_index("r_build", "ch11_rerank")
            if pre is not None:
                d = pre.data
                cross_encoder_view(d["cross_encoder"], d["cross_encoder"]["mix"])
                if d["lm"]:
                    lm = d["lm"]
                    st.caption(t("ch11.query") + ": " + lm["query"])
                    lm_rerank_view(lm["model"], lm["weights"], lm["epochs"], lm["breakdown"])
                eval_view(d["eval"])
        else:
            rerank_results(idx)
    notice("common.notice", t("ch11.notice_rerank"))
    quiz("11", "rerank")


def rerank_results(idx) -> None:
    ss = st.session_state
    # The cross-encoder is this section's lesson; it never replaces idx.reranker (the LM late-interaction
    # reranker that `search --method hybrid` uses), so both can be compared side by side.
    ce = shared(("cross_encoder", "constitution"), lambda p: load_reranker(idx.docs), null_progress)
    slot = st.container()
    train = lambda p, on_row, stop: train_reranker(idx, progress=p)  # noqa: E731
    if run_once(
        "ch11_ce", t("ch11.rerank_run"), ("cross_encoder_train",), train, "r_trained", primary=True, heavy=True
    ):
        ce = shared(("cross_encoder_train",), lambda p: train_reranker(idx, progress=p), null_progress)
    if ce is not None:
        cross_encoder_view(ce.info, ce.mix)
    else:  # none trained on this server yet: the one trained ahead of time
        with slot:
            pre = shipped("ch11_rerank")
        if pre is None:
            st.caption(t("ch11.rerank_missing"))
        else:
            cross_encoder_view(pre.data["cross_encoder"], pre.data["cross_encoder"]["mix"])
    lm = idx.reranker
    if lm is None:
        st.caption(t("ch11.lm_rerank_missing"))
    else:
        param("r_query", t("ch11.rerank_query"), str)
        st.text_input(t("ch11.query"), key="r_query", max_chars=500)
        if lm.encoder is None:  # first use in this process: load Gemma-3-270M once (≈10 s)
            with st.spinner(t("common.loading_model")):
                lm.ensure_encoder()
        query = ss["r_query"]  # a second per query: once per query, not on every rerun of the page
        breakdown = cached(("rerank_breakdown", query), lambda p: idx.rerank_breakdown(query, 5), "")
        lm_rerank_view(lm.info.get("model", "Gemma-3-270M"), lm.weights, len(idx.adapter_history), breakdown)
    key = ("rerank_eval", ce.mix if ce else None, lm is not None)
    work = lambda p, on_row, stop: evaluate_pipelines(idx, ce, load_questions(DEV_QUESTIONS))  # noqa: E731
    slot = st.container()
    if run_once("ch11_rerank_eval", t("ch11.rerank_eval"), key, work, "r_eval_done"):
        eval_view(cached(key, lambda p: evaluate_pipelines(idx, ce, load_questions(DEV_QUESTIONS)), ""))
    else:
        with slot:
            pre = shipped("ch11_rerank")
        if pre is not None:
            eval_view(pre.data["eval"])


def korean_search_section(ch) -> None:
    """Korean hybrid search, measured."""
    section_header(ch, "korean_search")
    with friendly_errors():
        idx = constitution_index()
        if idx is None:
            pre = missing_index("s_build", "ch11_search")
            if pre is not None:
                shipped_search(pre.data)
        else:
            korean_search_results(idx)
    notice("common.notice", t("ch11.notice_search"))
    quiz("11", "korean_search")


def method_radio(where, methods: list[str]) -> str:
    ss = st.session_state
    param("s_method", "hybrid", str, choices=METHODS)
    if ss["s_method"] not in methods:
        ss["s_method"] = "hybrid"
    return where.radio(t("ch11.method"), methods, key="s_method", format_func=lambda m: t(f"ch11.method_{m}"))


def shipped_search(d: dict) -> None:
    """The default question on every pipeline, and the dev/test metrics, as the built index answered them."""
    st.caption(t("ch11.shipped_query", query=d["query"]))
    res = d["results"][method_radio(st, d["methods"])]
    st.caption(f"{res['ms']:.1f} ms")
    hits_table(res["hits"], 90)
    st.subheader(t("ch11.metrics_title"))
    search_metrics_view(d["metrics"])


def korean_search_results(idx) -> None:
    ss = st.session_state
    param("s_query", t("ch11.default_query"), str)
    s1, s2 = st.columns([3, 1])
    s1.text_input(t("ch11.query"), key="s_query", max_chars=500)
    methods = [m for m in METHODS if m != "rerank" or idx.reranker is not None]
    method = method_radio(s2, methods)
    query = ss["s_query"]
    with st.spinner(t("common.loading_model")):  # `rerank` loads Gemma-3-270M on its first query (≈10 s)
        res = cached(("korean_search", query, method), lambda p: idx.search(query, method, 5), "")
    for note in res.notes:
        st.caption("ℹ️ " + note)
    st.caption(f"{res.seconds * 1000:.1f} ms")
    hits_table(res.hits, 90)
    st.subheader(t("ch11.metrics_title"))
    key = ("korean_eval", tuple(methods))
    work = lambda p, on_row, stop: dev_and_test_metrics(idx, tuple(methods), p)  # noqa: E731
    slot = st.container()
    if run_once("ch11_eval", t("ch11.metrics_run"), key, work, "s_eval_done"):
        search_metrics_view(cached(key, lambda p: dev_and_test_metrics(idx, tuple(methods), p), ""))
    else:
        with slot:
            pre = shipped("ch11_search")
        if pre is not None:
            search_metrics_view(pre.data["metrics"])


ch = chapter_header("11")
contrastive_section(ch)
lm_embedding_section(ch)
rerank_section(ch)
korean_search_section(ch)
show_code(ch)
