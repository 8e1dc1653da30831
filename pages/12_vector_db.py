"""Chapter 12 — vector databases and HNSW: KNN vs ANN, HNSW step by step, sweeps, a persistent LlamaIndex store."""

import json

import numpy as np
import streamlit as st

from engine.ann import (
    EF_GRID,
    LIBRARIES,
    clamp_insert,
    compare_nsw_hnsw,
    corpus_points,
    embed_query,
    insertion_step,
    insertion_view,
    knn_vs_ann_grid,
    search_steps,
    search_walkthrough,
    shown_steps,
    sweep_libraries,
    toy_points,
)
from engine.core import UserError
from engine.models import load_sentence_embedder
from engine.vectorstore import (
    PARTS,
    SentenceTransformerEmbedding,
    article_filter,
    hit_rows,
    open_store,
    reset_collection,
    store_path,
)
from ui import charts_vector_db as charts
from ui.cache import cached
from ui.i18n import t
from ui.jobs import run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import param

EMBED_LABEL = "all-MiniLM-L6-v2 (embed)"
LIVE_WORK = 10_000 * 64  # n × dim that exact KNN plus the HNSW build measure in under ~2 s on 2 cores


def embedder():
    return cached(("ch12", "embed"), lambda p: load_sentence_embedder("embed", p), EMBED_LABEL)


def done(message: str) -> None:
    st.session_state["vs_message"] = message
    st.rerun()


def knn_ann_section(ch) -> None:
    section_header(ch, "knn_ann")
    param("ka_n", 10_000, int, choices=(1_000, 10_000, 50_000, 100_000))
    param("ka_dim", 64, int, choices=(16, 64, 128, 384))
    param("ka_ef", 32, int, choices=EF_GRID)
    k1, k2, k3 = st.columns(3)
    k1.select_slider(t("ch12.n_vectors"), [1_000, 10_000, 50_000, 100_000], key="ka_n", format_func=lambda v: f"{v:,}")
    k2.select_slider(t("ch12.dim"), [16, 64, 128, 384], key="ka_dim")
    k3.select_slider("efSearch", list(EF_GRID), key="ka_ef", help=t("ch12.ef_help"))
    with friendly_errors():
        n, dim = st.session_state["ka_n"], st.session_state["ka_dim"]
        key = ("ch12", "knn_vs_ann", n, dim)  # one build answers every efSearch: moving ef measures nothing
        measured = st.session_state.setdefault("ka_measured", {})
        if n * dim <= LIVE_WORK:
            measured[(n, dim)] = cached(key, lambda p: knn_vs_ann_grid(n, dim, progress=p), t("ch12.knn_measuring"))
        grid = measured.get((n, dim))
        if grid is None:  # too slow to run on a slider move: the shipped measurement, and a run button
            work = lambda p, on_row, stop: knn_vs_ann_grid(n, dim, progress=p, should_stop=stop)  # noqa: E731
            grid = charts.knn_shipped_or_run(n, dim, work, key)
        if grid is not None:
            charts.show_knn_vs_ann(grid, st.session_state["ka_ef"])
    notice("common.notice", t("ch12.notice_knn_ann"))
    quiz("12", "knn_ann")


def hnsw_steps_section(ch) -> None:
    section_header(ch, "hnsw_steps")
    param("hs_data", "toy", str, choices=("toy", "corpus"))
    param("hs_kind", "hnsw", str, choices=("hnsw", "nsw"))
    param("hs_mode", "search", str, choices=("search", "insert"))
    param("hs_M", 4, int)
    param("hs_efc", 32, int)
    param("hs_ef", 8, int)
    param("hs_k", 5, int)
    c1, c2, c3 = st.columns(3)
    c1.radio(t("ch12.points"), ["toy", "corpus"], key="hs_data", format_func=lambda v: t(f"ch12.points_{v}"))
    c2.radio(t("ch12.graph_kind"), ["hnsw", "nsw"], key="hs_kind", format_func=lambda v: t(f"ch12.kind_{v}"))
    c3.radio(t("ch12.mode"), ["search", "insert"], key="hs_mode", format_func=lambda v: t(f"ch12.mode_{v}"))
    c4, c5, c6, c7 = st.columns(4)
    c4.slider("M", 2, 16, key="hs_M", help=t("ch12.M_help"))
    c5.slider("efConstruction", 4, 200, key="hs_efc", help=t("ch12.efc_help"))
    c6.slider("efSearch", 1, 64, key="hs_ef", help=t("ch12.ef_help"))
    c7.slider("k", 1, 10, key="hs_k")
    with friendly_errors():
        flat = st.session_state["hs_kind"] == "nsw"
        M, efc = st.session_state["hs_M"], st.session_state["hs_efc"]
        model = None
        if st.session_state["hs_data"] == "toy":
            with c1:
                toy_seed = seed("hs_seed")
            points, source = toy_points(200, toy_seed), t("ch12.source_toy", seed=toy_seed)
        else:
            model = embedder()
            with st.spinner(t("ch12.embedding_corpus")):  # 136 articles: seconds, once per process
                points = cached(("ch12", "corpus_points"), lambda p: corpus_points(model), EMBED_LABEL)
            source = t("ch12.source_corpus", model="all-MiniLM-L6-v2")
        st.caption(t("ch12.points_source", source=source, n=len(points.labels)))
        if st.session_state["hs_mode"] == "search":
            search_walk(points, model, M, efc, flat)
        else:
            insertion_walk(points, M, efc, flat)
    notice("common.notice", t("ch12.notice_hnsw_steps"))
    quiz("12", "hnsw_steps")


def search_walk(points, model, M: int, efc: int, flat: bool) -> None:
    if model is None:
        param("hs_qx", 0.5, float)
        param("hs_qy", 0.5, float)
        q1, q2 = st.columns(2)
        q1.slider(t("ch12.query_x"), 0.0, 1.0, step=0.01, key="hs_qx")
        q2.slider(t("ch12.query_y"), 0.0, 1.0, step=0.01, key="hs_qy")
        query = np.array([st.session_state["hs_qx"], st.session_state["hs_qy"]], dtype=np.float32)
    else:
        param("hs_qtext", t("ch12.default_query"), str)
        st.text_input(t("ch12.query_text"), key="hs_qtext", max_chars=2_000)
        query = embed_query(model, st.session_state["hs_qtext"])
    walk = search_walkthrough(points, query, st.session_state["hs_k"], M, efc, st.session_state["hs_ef"], flat)
    total = search_steps(walk)
    param("hs_step", 0, int)
    st.session_state["hs_step"] = min(st.session_state["hs_step"], max(total, 1))  # a new graph may be shorter
    shown = shown_steps(st.slider(t("ch12.step"), 0, max(total, 1), key="hs_step", help=t("ch12.step_help")), total)
    charts.show_search(walk, points, shown)


def insertion_walk(points, M: int, efc: int, flat: bool) -> None:
    param("hs_insert", 120, int)
    st.session_state["hs_insert"] = clamp_insert(st.session_state["hs_insert"], len(points.labels))
    st.slider(t("ch12.insert_which"), 1, len(points.labels) - 1, key="hs_insert", help=t("ch12.insert_help"))
    step = clamp_insert(st.session_state["hs_insert"], len(points.labels))
    ins = insertion_step(points, step, M, efc, flat)
    charts.show_insertion(ins, insertion_view(points, ins), step)


def hierarchy_section(ch) -> None:
    section_header(ch, "hierarchy")
    work = lambda p, on_row, stop: compare_nsw_hnsw(progress=p)  # noqa: E731
    job, shipped = charts.shipped_or_run("ch12_scaling", "ch12_scaling", t("ch12.run_scaling"), work, "hi_run")
    charts.show_scaling(job.result or shipped)
    notice("common.notice", t("ch12.notice_hierarchy"))
    quiz("12", "hierarchy")


def sweep_section(ch) -> None:
    section_header(ch, "sweep")
    param("sw_hnswlib", True)
    param("sw_faiss", True)
    param("sw_scratch", False)
    param("sw_n", 5_000, int)
    param("sw_dim", 64, int, choices=(16, 32, 64, 128, 256, 384, 768))
    param("sw_M", "8,16", str)
    param("sw_efc", "100", str)
    param("sw_ef", "16,32,64,128", str)
    param("sw_k", 10, int)
    param("sw_data", "gaussian", str, choices=("gaussian", "clustered"))
    l1, l2, l3 = st.columns(3)
    l1.checkbox("hnswlib", key="sw_hnswlib")
    l2.checkbox("faiss (IndexHNSWFlat)", key="sw_faiss")
    l3.checkbox(t("ch12.scratch"), key="sw_scratch", help=t("ch12.scratch_help"))
    w1, w2, w3, w4 = st.columns(4)
    w1.number_input(
        t("ch12.n_vectors"), min_value=100, max_value=10_000_000_000, step=1_000, key="sw_n", help=t("ch12.n_help")
    )
    w2.select_slider(t("ch12.dim"), [16, 32, 64, 128, 256, 384, 768], key="sw_dim")
    w3.slider("k", 1, 100, key="sw_k")
    w4.radio(t("ch12.data"), ["gaussian", "clustered"], key="sw_data", format_func=lambda v: t(f"ch12.data_{v}"))
    g1, g2, g3 = st.columns(3)
    g1.text_input(t("ch12.M_list"), key="sw_M", help=t("ch12.M_help"))
    g2.text_input(t("ch12.efc_list"), key="sw_efc", help=t("ch12.efc_help"))
    g3.text_input(t("ch12.ef_list"), key="sw_ef", help=t("ch12.ef_help"))
    ss = st.session_state

    def work(p, on_row, stop):
        libraries = [lib for lib in LIBRARIES if ss[f"sw_{lib}"]]
        if not libraries:
            raise UserError(t("ch12.no_library"))
        grid = charts.int_list("sw_M"), charts.int_list("sw_efc"), charts.int_list("sw_ef")
        n, dim, k, kind = (ss[f"sw_{x}"] for x in ("n", "dim", "k", "data"))
        return sweep_libraries(libraries, int(n), dim, k, kind, *grid, 500, p, stop, on_row)

    job, shipped = charts.shipped_or_run(
        "ch12_sweep", "ch12_sweep", t("ch12.run_sweep"), work, "sw_run", label=t("ch12.preparing"), primary=True
    )
    if job.result is not None:
        charts.show_sweep(job.result.rows, job.result.truth_s)
    elif job.rows:  # a stopped sweep: the settings it finished
        charts.show_sweep(job.rows, None)
    elif shipped:  # never run here: the default sweep, shipped
        charts.show_sweep(shipped["rows"], shipped["truth_s"])
    notice("common.notice", t("ch12.notice_sweep"))
    quiz("12", "sweep")


def store_section(ch) -> None:
    section_header(ch, "store")
    param("vs_collection", t("ch12.default_collection"), str)
    st.text_input(t("ch12.collection"), key="vs_collection", max_chars=48, help=t("ch12.collection_help"))
    collection = st.session_state["vs_collection"].strip()
    store = None
    with friendly_errors():
        model = embedder()
        # chapter 12 teaches the hand-written sqlite store (Chroma is the app's default since chapter 9)
        store = open_store(collection, embed_model=SentenceTransformerEmbedding(model), embedded="sqlite")
        info = charts.show_store_info(store, f"{EMBED_LABEL} · {model.device}")
        if info["documents"] == 0:
            charts.shipped_hits()
            if st.button(t("ch12.load_corpus"), type="primary", key="vs_load"):
                job = run_job("ch12_load", lambda p, on_row, stop: store.load_corpus(progress=p))
                if job.complete:
                    done(t("ch12.loaded", n=job.result))
            show_job_status("ch12_load")
        if st.session_state.get("vs_message"):
            st.success(st.session_state.pop("vs_message"))
    if store is not None and store.count() > 0:
        store_query(store)
        store_edit(store)
    with st.expander(t("ch12.reset_title")):
        st.caption(t("ch12.reset_help"))
        sure = st.checkbox(t("ch12.reset_confirm"), key="vs_reset_sure")
        if st.button(t("ch12.reset"), disabled=not sure, key="vs_reset"):
            with friendly_errors():
                moved = reset_collection(collection)
                done(t("ch12.reset_done", path=str(moved) if moved else str(store_path(collection))))
    notice("common.notice", t("ch12.notice_store"))
    quiz("12", "store")


def store_query(store) -> None:
    param("vs_query", t("ch12.default_query"), str)
    param("vs_k", 5, int)
    param("vs_part", "all", str, choices=tuple(PARTS))
    param("vs_from", 1, int)
    param("vs_to", 130, int)
    st.text_input(t("ch12.query_text"), key="vs_query", max_chars=10_000)
    f1, f2, f3, f4 = st.columns(4)
    f1.slider("k", 1, 20, key="vs_k")
    f2.radio(t("ch12.filter_part"), list(PARTS), key="vs_part", format_func=lambda v: t(f"ch12.part_{v}"))
    f3.number_input(t("ch12.filter_from"), 1, 130, key="vs_from")
    f4.number_input(t("ch12.filter_to"), 1, 130, key="vs_to")
    with friendly_errors():
        where = article_filter(st.session_state["vs_part"], st.session_state["vs_from"], st.session_state["vs_to"])
        hits = store.query(st.session_state["vs_query"], st.session_state["vs_k"], where)
        st.caption(t("ch12.filter_used", where=json.dumps(where, ensure_ascii=False) if where else "—"))
        charts.show_hits(hit_rows(hits))


def store_edit(store) -> None:
    add_tab, update_tab, delete_tab = st.tabs([t("ch12.tab_add"), t("ch12.tab_update"), t("ch12.tab_delete")])
    with add_tab, st.form("vs_add_form", clear_on_submit=False):
        new_id = st.text_input(t("ch12.col_id"), placeholder="note-1", max_chars=200, key="vs_add_id")
        new_text = st.text_area(t("ch12.doc_text"), max_chars=10_000, key="vs_add_text")
        new_meta = st.text_input(t("ch12.doc_meta"), placeholder='{"part": "메모"}', max_chars=2_000, key="vs_add_meta")
        if st.form_submit_button(t("ch12.add")):
            with friendly_errors():
                store.add([{"doc_id": new_id, "text": new_text, "metadata": charts.json_object(new_meta) or {}}])
                done(t("ch12.added", id=new_id))
    with update_tab, st.form("vs_update_form"):
        up_id = st.text_input(t("ch12.col_id"), placeholder="제1조", max_chars=200, key="vs_up_id")
        up_text = st.text_area(t("ch12.doc_text_new"), max_chars=10_000, help=t("ch12.update_help"), key="vs_up_text")
        up_meta = st.text_input(t("ch12.doc_meta_new"), max_chars=2_000, help=t("ch12.update_help"), key="vs_up_meta")
        if st.form_submit_button(t("ch12.update")):
            with friendly_errors():
                meta = charts.json_object(up_meta)
                if not up_text.strip() and meta is None:
                    raise UserError(t("ch12.update_nothing"))
                store.update(up_id, text=up_text if up_text.strip() else None, metadata=meta)
                done(t("ch12.updated", id=up_id))
    with delete_tab, st.form("vs_delete_form"):
        del_id = st.text_input(t("ch12.col_id"), placeholder="note-1", max_chars=200, key="vs_del_id")
        if st.form_submit_button(t("ch12.delete")):
            with friendly_errors():
                store.delete(del_id)
                done(t("ch12.deleted", id=del_id))


ch = chapter_header("12")
knn_ann_section(ch)
hnsw_steps_section(ch)
hierarchy_section(ch)
sweep_section(ch)
store_section(ch)
show_code(ch)
