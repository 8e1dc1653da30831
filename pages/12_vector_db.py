"""Chapter 12 — vector databases and HNSW: KNN vs ANN, HNSW step by step, sweeps, a persistent LlamaIndex store."""

import json
import os

import numpy as np
import pandas as pd
import streamlit as st

from engine.ann import (
    LIBRARIES,
    compare_nsw_hnsw,
    corpus_points,
    embed_query,
    insertion_step,
    knn_vs_ann,
    prepare,
    search_walkthrough,
    sweep_library,
    toy_points,
)
from engine.models import load_sentence_embedder
from engine.vectorstore import SentenceTransformerEmbedding, open_store, reset_collection, store_path
from ui import charts_vector_db as charts
from ui.cache import shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, progress_callback, quiz, section_header, seed, show_code
from ui.state import param

ch = chapter_header("12")
EMBED_LABEL = "all-MiniLM-L6-v2 (embed)"
PARTS = {"all": None, "main": "본문", "addenda": "부칙"}  # the corpus' `part` metadata: articles or 부칙


def done(message: str) -> None:
    """Show `message` after a rerun, so the results above reflect the change that was just made."""
    st.session_state["vs_message"] = message
    st.rerun()


def embedder():
    """The packaged MiniLM, loaded once per process (a progress bar on the first load)."""
    bar = st.empty()
    try:
        return shared(("ch12", "embed"), lambda p: load_sentence_embedder("embed", p), progress_callback(bar))
    finally:
        bar.empty()


def json_object(text: str) -> dict | None:
    """The metadata box: empty -> None, otherwise a JSON object or a clear message."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(t("ch12.meta_object")) from exc
    if not isinstance(value, dict):
        raise ValueError(t("ch12.meta_object"))
    return value


def int_list(key: str) -> list[int]:
    try:
        values = [int(x) for x in str(st.session_state[key]).split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(t("ch12.bad_list", value=st.session_state[key])) from exc
    if not values:
        raise ValueError(t("ch12.bad_list", value=st.session_state[key]))
    return values


# --- KNN vs ANN -----------------------------------------------------------------------------------------------
section_header(ch, "knn_ann")
param("ka_n", 10_000, int, choices=(1_000, 10_000, 50_000, 100_000))
param("ka_dim", 64, int, choices=(16, 64, 128, 384))
param("ka_ef", 32, int)
k1, k2, k3 = st.columns(3)
k1.select_slider(t("ch12.n_vectors"), [1_000, 10_000, 50_000, 100_000], key="ka_n", format_func=lambda v: f"{v:,}")
k2.select_slider(t("ch12.dim"), [16, 64, 128, 384], key="ka_dim")
k3.slider("efSearch", 10, 256, key="ka_ef", help=t("ch12.ef_help"))
with friendly_errors():
    n, dim, ef = st.session_state["ka_n"], st.session_state["ka_dim"], st.session_state["ka_ef"]
    bar = st.empty()
    res = shared(
        ("ch12", "knn_vs_ann", n, dim, ef), lambda p: knn_vs_ann(n, dim, k=10, ef_search=ef), progress_callback(bar)
    )
    bar.empty()
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("ch12.exact_ms"), f"{res.exact_ms_per_query:.2f} ms")
    m2.metric(t("ch12.ann_ms"), f"{res.ann_ms_per_query:.3f} ms", f"×{res.speedup:.0f}")
    m3.metric("recall@10 (HNSW)", f"{res.ann_recall:.3f}")
    m4.metric(t("ch12.build_s"), f"{res.ann_build_s:.2f} s")
    st.caption(t("ch12.knn_source", n=res.n, dim=res.dim))
notice("common.notice", t("ch12.notice_knn_ann"))
quiz("12", "knn_ann")

# --- HNSW step by step ----------------------------------------------------------------------------------------
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
    if st.session_state["hs_data"] == "toy":
        with c1:
            toy_seed = seed("hs_seed")
        points = toy_points(200, toy_seed)
    else:
        model = embedder()
        bar = st.empty()
        points = shared(("ch12", "corpus_points"), lambda p: corpus_points(model), progress_callback(bar))
        bar.empty()
    st.caption(t("ch12.points_source", source=points.source, n=len(points.labels)))

    if st.session_state["hs_mode"] == "search":
        if st.session_state["hs_data"] == "toy":
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
        total = sum(len(lt.expanded) for lt in walk.trace.layers)
        param("hs_step", 0, int)
        st.session_state["hs_step"] = min(st.session_state["hs_step"], max(total, 1))  # a new graph may be shorter
        steps = st.slider(t("ch12.step"), 0, max(total, 1), key="hs_step", help=t("ch12.step_help"))
        shown = None if steps == 0 or steps >= total else steps
        layers = charts.truncate_layers(walk.trace.layers, shown)
        st.plotly_chart(
            charts.hnsw_layers(
                walk.graph,
                layers,
                t("ch12.search_title"),
                walk.query_xy,
                results=walk.trace.ids if shown is None else None,
                layer_label=t("ch12.layer_label"),
            ),
            width="stretch",
        )
        s1, s2, s3, s4 = st.columns(4)
        s1.metric(t("ch12.distances"), walk.trace.n_distances, help=t("ch12.distances_help"))
        s2.metric(t("ch12.brute_force"), walk.brute_force_distances)
        s3.metric(f"recall@{len(walk.exact_ids)}", f"{walk.recall:.2f}")
        s4.metric(t("ch12.layers"), len(walk.graph.layer_sizes))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("ch12.col_layer"): lt.level,
                        t("ch12.col_entry"): walk.graph.labels[lt.entry],
                        t("ch12.col_expanded"): " → ".join(walk.graph.labels[x] for x in lt.expanded[:40]),
                        t("ch12.col_distances"): lt.n_distances,
                        t("ch12.col_best"): ", ".join(walk.graph.labels[x] for x in lt.result[:10]),
                    }
                    for lt in walk.trace.layers
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        if points.texts:
            st.dataframe(
                pd.DataFrame([{"id": points.labels[i], "text": points.texts[i][:200]} for i in walk.trace.ids]),
                hide_index=True,
                width="stretch",
            )
    else:
        param("hs_insert", 120, int)
        st.session_state["hs_insert"] = max(1, min(st.session_state["hs_insert"], len(points.labels) - 1))
        st.slider(t("ch12.insert_which"), 1, len(points.labels) - 1, key="hs_insert", help=t("ch12.insert_help"))
        step = min(st.session_state["hs_insert"], len(points.labels) - 1)
        ins = insertion_step(points, step, M, efc, flat)
        st.plotly_chart(
            charts.hnsw_layers(
                ins.after,
                ins.trace.layers,
                t("ch12.insert_title", node=points.labels[step], level=ins.trace.level),
                ins.new_xy,
                new_node=step,
                new_links=ins.trace.new_links,
                layer_label=t("ch12.layer_label"),
            ),
            width="stretch",
        )
        pruned = sum(len(v) for v in ins.trace.pruned.values())
        i1, i2, i3 = st.columns(3)
        i1.metric(t("ch12.new_level"), ins.trace.level)
        i2.metric(t("ch12.new_links"), sum(len(v) for v in ins.trace.new_links.values()))
        i3.metric(t("ch12.pruned"), pruned, help=t("ch12.pruned_help"))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("ch12.col_layer"): lt.level,
                        t("ch12.col_entry"): points.labels[lt.entry],
                        t("ch12.col_expanded"): len(lt.expanded),
                        t("ch12.col_distances"): lt.n_distances,
                        t("ch12.col_links"): ", ".join(points.labels[x] for x in ins.trace.new_links.get(lt.level, [])),
                    }
                    for lt in ins.trace.layers
                ]
            ),
            hide_index=True,
            width="stretch",
        )
notice("common.notice", t("ch12.notice_hnsw_steps"))
quiz("12", "hnsw_steps")

# --- why layers: NSW vs HNSW as n grows -----------------------------------------------------------------------
section_header(ch, "hierarchy")
if st.button(t("ch12.run_scaling"), key="hi_run"):
    with friendly_errors():
        bar = st.empty()
        st.session_state["ch12_scaling"] = compare_nsw_hnsw(progress=progress_callback(bar))
        bar.empty()
if st.session_state.get("ch12_scaling"):
    rows = st.session_state["ch12_scaling"]
    st.plotly_chart(charts.scaling(rows, t("ch12.scaling_title")), width="stretch")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(t("ch12.scaling_source"))
notice("common.notice", t("ch12.notice_hierarchy"))
quiz("12", "hierarchy")

# --- parameter sweep ------------------------------------------------------------------------------------------
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
if st.button(t("ch12.run_sweep"), type="primary", key="sw_run"):
    with friendly_errors():
        libraries = [lib for lib in LIBRARIES if st.session_state[f"sw_{lib}"]]
        if not libraries:
            raise ValueError(t("ch12.no_library"))
        Ms, efcs, efs = int_list("sw_M"), int_list("sw_efc"), int_list("sw_ef")
        bar = st.progress(0.0, text=t("ch12.preparing"))
        report = progress_callback(bar)
        data = prepare(
            int(st.session_state["sw_n"]),
            st.session_state["sw_dim"],
            st.session_state["sw_k"],
            n_queries=500,
            kind=st.session_state["sw_data"],
            library="scratch" if "scratch" in libraries else libraries[0],
            max_M=max(Ms),
        )
        rows = []
        for i, lib in enumerate(libraries):
            share = 1 / len(libraries)
            rows += sweep_library(
                lib, data, Ms, efcs, efs, progress=lambda f, m, i=i, share=share: report(i * share + f * share, m)
            )
        bar.empty()
        st.session_state["ch12_sweep"] = {"rows": rows, "truth_s": data.truth_s}
if st.session_state.get("ch12_sweep"):
    rows = st.session_state["ch12_sweep"]["rows"]
    st.plotly_chart(charts.tradeoff(rows, t("ch12.tradeoff_title")), width="stretch")
    b1, b2 = st.columns(2)
    b1.plotly_chart(charts.build_cost(rows, "build_s", t("ch12.build_title")), width="stretch")
    b2.plotly_chart(charts.build_cost(rows, "memory_bytes", t("ch12.memory_title")), width="stretch")
    st.caption(t("ch12.sweep_source", truth_s=st.session_state["ch12_sweep"]["truth_s"], cpus=os.cpu_count()))
    frame = pd.DataFrame(rows)
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button(t("ch12.download"), frame.to_csv(index=False).encode("utf-8"), "hnsw_sweep.csv", "text/csv")
notice("common.notice", t("ch12.notice_sweep"))
quiz("12", "sweep")

# --- a persistent vector store behind LlamaIndex --------------------------------------------------------------
section_header(ch, "store")
param("vs_collection", "constitution", str)
st.text_input(t("ch12.collection"), key="vs_collection", max_chars=48, help=t("ch12.collection_help"))
collection = st.session_state["vs_collection"].strip()
store = None
with friendly_errors():
    model = embedder()
    store = open_store(collection, embed_model=SentenceTransformerEmbedding(model))
    info = store.info()
    produced_by = f"{EMBED_LABEL} · {model.device}"
    if store.backend == "local":
        st.caption(t("ch12.store_local", path=info["location"], docs=info["documents"], model=produced_by))
    else:
        st.caption(t("ch12.store_pinecone", where=info["location"], docs=info["documents"], model=produced_by))
    if info["documents"] == 0 and st.button(t("ch12.load_corpus"), type="primary", key="vs_load"):
        bar = st.empty()
        added = store.load_corpus(progress=progress_callback(bar))
        bar.empty()
        done(t("ch12.loaded", n=added))
    if st.session_state.get("vs_message"):
        st.success(st.session_state.pop("vs_message"))

if store is not None and store.count() > 0:
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
        where = [["number", ">=", int(st.session_state["vs_from"])], ["number", "<=", int(st.session_state["vs_to"])]]
        if st.session_state["vs_part"] != "all":
            where.append(["part", "==", PARTS[st.session_state["vs_part"]]])
        if (st.session_state["vs_from"], st.session_state["vs_to"], st.session_state["vs_part"]) == (1, 130, "all"):
            where = None  # no filter at all: the learner's own documents (without `number`) are found too
        hits = store.query(st.session_state["vs_query"], st.session_state["vs_k"], where)
        st.caption(t("ch12.filter_used", where=json.dumps(where, ensure_ascii=False) if where else "—"))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": h.doc_id,
                        "score": round(h.score, 4),
                        t("ch12.col_title"): h.metadata.get("title", ""),
                        "text": h.text[:300],
                    }
                    for h in hits
                ]
            ),
            hide_index=True,
            width="stretch",
        )

    add_tab, update_tab, delete_tab = st.tabs([t("ch12.tab_add"), t("ch12.tab_update"), t("ch12.tab_delete")])
    with add_tab, st.form("vs_add_form", clear_on_submit=False):
        new_id = st.text_input("id", placeholder="note-1", max_chars=200, key="vs_add_id")
        new_text = st.text_area(t("ch12.doc_text"), max_chars=10_000, key="vs_add_text")
        new_meta = st.text_input(t("ch12.doc_meta"), placeholder='{"part": "메모"}', max_chars=2_000, key="vs_add_meta")
        if st.form_submit_button(t("ch12.add")):
            with friendly_errors():
                meta = json_object(new_meta) or {}
                store.add([{"doc_id": new_id, "text": new_text, "metadata": meta}])
                done(t("ch12.added", id=new_id))
    with update_tab, st.form("vs_update_form"):
        up_id = st.text_input("id", placeholder="제1조", max_chars=200, key="vs_up_id")
        up_text = st.text_area(t("ch12.doc_text_new"), max_chars=10_000, help=t("ch12.update_help"), key="vs_up_text")
        up_meta = st.text_input(t("ch12.doc_meta_new"), max_chars=2_000, help=t("ch12.update_help"), key="vs_up_meta")
        if st.form_submit_button(t("ch12.update")):
            with friendly_errors():
                meta = json_object(up_meta)
                if not up_text.strip() and meta is None:
                    raise ValueError(t("ch12.update_nothing"))
                store.update(up_id, text=up_text if up_text.strip() else None, metadata=meta)
                done(t("ch12.updated", id=up_id))
    with delete_tab, st.form("vs_delete_form"):
        del_id = st.text_input("id", placeholder="note-1", max_chars=200, key="vs_del_id")
        if st.form_submit_button(t("ch12.delete")):
            with friendly_errors():
                store.delete(del_id)
                done(t("ch12.deleted", id=del_id))

with st.expander(t("ch12.reset_title")):
    st.caption(t("ch12.reset_help"))
    sure = st.checkbox(t("ch12.reset_confirm"), key="vs_reset_sure")
    if st.button(t("ch12.reset"), disabled=not sure, key="vs_reset"):
        with friendly_errors():
            moved = reset_collection(collection)
            done(t("ch12.reset_done", path=str(moved) if moved else str(store_path(collection))))
notice("common.notice", t("ch12.notice_store"))
quiz("12", "store")
show_code(ch)
