"""Chapter 9's page helpers (pages/09_rag.py): uploads, the streamed side-by-side run, the answer's citations,
passages, prompt and rail verdicts, and the tables and charts of the store, cache, rail and trace sections.

An answer is drawn from one plain dict, whichever made it: the shipped run (assets/precomputed/ch09_answer.json) or
a run in this session (`answer_view`), so a fresh page and a page after a click look the same.
"""

from __future__ import annotations

import dataclasses
import re

import plotly.graph_objects as go
import streamlit as st

from engine.core import Cancelled, load_precomputed
from engine.rag import (
    MAX_UPLOAD_BYTES,
    answer_without_rag,
    ask,
    check_question,
    constitution,
    make_retriever,
    parse_upload,
    tracking_uri,
    upload_corpus,
)
from ui import charts
from ui.cache import cached
from ui.errors import translated
from ui.i18n import lang, maybe, t
from ui.layout import friendly_errors, precomputed_note

SS = st.session_state
HANGUL = re.compile(r"[\uac00-\ud7a3]")
SPANS = ("rag.query", "rails.input", "cache", "retrieve", "rails.passages", "llm", "rails.output", "cache.store")


def shipped(name: str):
    return load_precomputed(name)


def as_dict(v) -> dict:
    return v if isinstance(v, dict) else dataclasses.asdict(v)


def prompt_lang(question: str) -> str:
    """The prompt's language follows the question: Korean when it has Hangul (the Constitution is Korean)."""
    return "ko" if HANGUL.search(question or "") else "en"


# -- the corpus -----------------------------------------------------------------------------------------------
def uploaded_corpus():
    """The learner's files as one corpus (None until one parses); a file that fails says why, the rest are used."""
    files = st.file_uploader(
        t("ch09.upload"),
        type=["txt", "md", "pdf"],
        accept_multiple_files=True,
        key="rg_files",
        help=t("ch09.upload_help", mb=MAX_UPLOAD_BYTES // 1_000_000),
    )
    parsed = SS.setdefault("ch09_parsed", {})
    passages = []
    for f in files or []:
        with friendly_errors():
            if f.file_id not in parsed:  # a 20 MB PDF is parsed once, not on every rerun
                parsed[f.file_id] = parse_upload(f.name, f.getvalue())
            passages += parsed[f.file_id]
    if not passages:
        st.info(t("ch09.upload_first"), icon="📄")
        return None
    corpus = upload_corpus(passages)
    st.caption(t("ch09.upload_ready", passages=len(passages), files=len({p.source for p in passages})))
    return corpus


def prepare(corpus, settings) -> None:
    """Build or load the retriever's index with a progress bar (an upload trains its own Korean encoder: up to a
    minute or two on 2 cores); the pipeline then finds it built."""
    key = ("ch09", "retriever", corpus.corpus_id, settings.retriever, settings.top_k)
    build = lambda p: make_retriever(  # noqa: E731
        settings.retriever, corpus.corpus_id, list(corpus.passages), settings.top_k, progress=p
    )
    cached(key, build, t("ch09.loading_index"))


# -- one question, with and without RAG ------------------------------------------------------------------------
def passage_row(p) -> dict:
    return {"doc_id": p.doc_id, "title": p.title, "text": p.text, "source": p.source, "score": round(p.score, 4)}


def answer_view(res, plain: str, settings) -> dict:
    """A RagAnswer (and the no-RAG text) in the shipped result's shape."""
    verdict = res.cache_verdict
    return {
        "question": res.question,
        "no_rag": plain,
        "settings": dataclasses.asdict(settings),
        "rag": res.to_json(),
        "passages": [passage_row(p) for p in res.passages],
        "retrieved": [passage_row(p) for p in res.retrieved],
        "messages": res.messages,
        "cache_detail": None if verdict is None else {"reason": verdict.reason, "similarity": verdict.similarity},
    }


def run_pair(question: str, corpus, settings, left, right) -> dict:
    """Stream the no-RAG answer on the left and the RAG answer on the right; returns the run's view."""
    question = check_question(question)  # empty or too long: refused before anything starts
    left_slot, right_slot = left.empty(), right.empty()
    with left_slot.container(), st.spinner(t("ch09.asking_model")):  # first: a dead server fails before indexing
        plain = st.write_stream(answer_without_rag(question, settings))
    prepare(corpus, settings)
    run = ask(question, corpus, settings)
    with right_slot.container(), st.spinner(t("ch09.asking_rag")):
        st.write_stream(run)
    left_slot.empty()  # the stored run is drawn below, like every later rerun
    right_slot.empty()
    return answer_view(run.result, plain if isinstance(plain, str) else "".join(map(str, plain)), settings)


def show_answers(view: dict, left, right) -> None:
    rag = view["rag"]
    left.markdown(view["no_rag"] or "—")
    if rag["blocked"]:
        right.warning(rag["answer"], icon="🛡️")
    else:
        right.markdown(rag["answer"] or "—")
    for code in rag.get("warnings") or []:  # the answer came; tracing or the cache did not (codes, no values)
        right.caption("⚠️ " + (translated(code, {"uri": tracking_uri(), "reason": "—"}) or code))
    with right:
        citation_chips(view)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("ch09.prompt_tokens"), "—" if rag["prompt_tokens"] is None else f"{rag['prompt_tokens']:,}")
    first = rag.get("first_token_s")
    m2.metric(t("ch09.first_token"), "—" if first is None else f"{first:.2f} s", help=t("ch09.first_token_help"))
    m3.metric(t("ch09.total_latency"), f"{rag['latency_s']:.2f} s")
    m4.metric(t("ch09.cache_verdict"), t(f"ch09.cache_{rag['cache']}"))
    detail = view.get("cache_detail")
    if detail and detail.get("similarity") is not None:
        st.caption(t("ch09.cache_why", reason=t(f"ch09.reason_{detail['reason']}"), sim=detail["similarity"]))
    st.caption(t("ch09.trace_id", trace=rag["trace_id"] or t("ch09.no_trace")))
    passages_table(view)
    verdict_table(rag["rails"])
    with st.expander(t("ch09.prompt_title", tokens=rag["prompt_tokens"] or "—")):
        if not view["messages"]:
            st.caption(t("ch09.no_prompt"))
        for m in view["messages"]:
            st.caption(m["role"])
            st.code(m["content"], language=None, wrap_lines=True)


def citation_chips(view: dict) -> None:
    """Cited ids as chips that open the passage; with no citation, the top passages marked as retrieved."""
    by_id = {p["doc_id"]: p for p in view["passages"] + view["retrieved"]}
    cited = [i for i in view["rag"]["cited"] if i in by_id]
    linked = "ch09.cited_support" if view["rag"].get("cited_by") == "support" else "ch09.cited"
    ids, label = (cited, linked) if cited else ([p["doc_id"] for p in view["passages"][:3]], "ch09.retrieved")
    if not ids:
        return
    st.caption(t(label))
    with st.container(horizontal=True):
        for i in ids:
            p = by_id[i]
            with st.popover(("📌 " if cited else "🔎 ") + i):
                st.markdown(f"**{p['title']}**")
                st.write(p["text"])
                st.caption(t("ch09.score", score=p["score"]))


def passages_table(view: dict) -> None:
    used = {p["doc_id"] for p in view["passages"]}
    cutoff = view["settings"]["cutoff"]

    def state(p) -> str:
        if p["doc_id"] in used:
            return t("ch09.state_used")
        return t("ch09.state_cut") if p["score"] < cutoff else t("ch09.state_dropped")

    rows = [
        [i + 1, p["doc_id"], p["score"], state(p), p["text"][:90] + ("…" if len(p["text"]) > 90 else "")]
        for i, p in enumerate(view["retrieved"])
    ]
    if rows:
        cols = [t("ch09.col_rank"), t("ch09.col_doc"), t("ch09.col_score"), t("ch09.col_state"), t("ch09.col_text")]
        charts.table(rows, cols)
        st.caption(t("ch09.passages_caption", cutoff=cutoff))


def verdict_table(verdicts) -> None:
    rows = []
    for v in map(as_dict, verdicts):
        rail, action = v["rail"], v["action"]
        row = [
            maybe(f"ch09.rail_{rail}", rail),
            t("ch09.passed") if v["passed"] else t("ch09.flagged"),
            maybe(f"ch09.action_{action}", action),
            "—" if v["score"] is None else f"{v['score']:.2f}",
            maybe(f"ch09.verdict_{rail}_{action}", v["detail"]),
        ]
        rows.append([*row, v["detail"]] if lang() == "en" else row)
    if rows:
        cols = [t("ch09.col_rail"), t("ch09.col_result"), t("ch09.col_action"), t("ch09.col_score")]
        cols += [t("ch09.col_meaning")] + ([t("ch09.col_detail")] if lang() == "en" else [])
        charts.table(rows, cols)


# -- the store comparison --------------------------------------------------------------------------------------
def show_stores(data: dict) -> None:
    rows = [
        {
            "store": t(f"ch09.store_{r['store'].replace('-', '_')}"),
            "dataset": t(f"ch09.dataset_{r['dataset']}"),
            "n": r["n"],
            "dim": r["dim"],
            "insert_s": r["insert_s"],
            "query_ms": r["query_ms"],
            "recall": r["recall_at_k"],
        }
        for r in data["rows"]
    ]
    k = data["k"]
    labels = {"store": t("ch09.col_store"), "dataset": t("ch09.col_dataset"), "query_ms": t("ch09.axis_query_ms")}
    fig = charts.grouped_bars(rows, "store", "query_ms", "dataset", t("ch09.stores_title"), True, labels)
    fig.update_traces(texttemplate="%{y:.2f}")
    charts.show(st, fig)
    cols = [t("ch09.col_store"), t("ch09.col_dataset"), t("ch09.col_n"), t("ch09.col_dim")]
    cols += [t("ch09.col_insert_s"), t("ch09.col_query_ms"), f"recall@{k}"]
    charts.table([list(r.values()) for r in rows], cols)


# -- the cache -----------------------------------------------------------------------------------------------------
def show_sweep(rows: list[dict], threshold: float) -> None:
    long = []
    for r in rows:
        guard = t("ch09.guard_on") if r["guard"] else t("ch09.guard_off")
        for metric in ("paraphrase_hit_rate", "false_hit_rate"):
            series = f"{t(f'ch09.{metric}')} · {guard}"
            long.append({"threshold": r["threshold"], "rate": r[metric], "series": series})
    labels = {"threshold": t("ch09.axis_threshold"), "rate": t("ch09.axis_rate"), "series": t("ch09.legend")}
    fig = charts.line(long, "threshold", "rate", "series", t("ch09.sweep_title"), labels=labels)
    fig.add_vline(x=threshold, line_dash="dot", line_color="#7f7f7f")
    fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%")
    charts.show(st, fig)


def ask_twice(questions, settings, progress, on_row, should_stop) -> None:
    """Each question through the whole pipeline with the cache on; one row per call (verdict, similarity, time).

    The answer is consumed piece by piece with a progress update for each: a Streamlit call is where a click on ⏹
    can interrupt the script, and a 0.5B model on two busy cores takes a minute per answer."""
    for i, q in enumerate(questions):
        progress(i / len(questions), q)
        run = ask(q, constitution(), dataclasses.replace(settings, lang=prompt_lang(q)))
        for n, _ in enumerate(run, 1):
            if should_stop():
                raise Cancelled(f"stopped after {i} of {len(questions)} questions")
            progress((i + min(n, 200) / 200) / len(questions), q)
        res = run.result
        v = res.cache_verdict
        on_row(
            {
                "question": q,
                "cache": res.cache,
                "reason": v.reason if v else "",
                "similarity": v.similarity if v else None,
                "nearest": v.nearest if v else None,
                "latency_s": res.latency_s,
            }
        )


def cache_rows(rows: list[dict]) -> None:
    cols = [t("ch09.col_question"), t("ch09.cache_verdict"), t("ch09.col_reason"), t("ch09.col_similarity")]
    cols += [t("ch09.col_nearest"), t("ch09.col_latency_ms")]
    table = [
        [
            r["question"],
            t(f"ch09.cache_{r['cache']}"),
            t(f"ch09.reason_{r['reason']}") if r["reason"] else "—",
            "—" if r["similarity"] is None else f"{r['similarity']:.3f}",
            r["nearest"] or "—",
            f"{r['latency_s'] * 1000:,.1f}",
        ]
        for r in rows
    ]
    charts.table(table, cols)


# -- rails -------------------------------------------------------------------------------------------------------
def rail_metrics(rows: list[dict], tune: list[dict] | None) -> None:
    tune_by = {r["rail"]: r for r in tune or []}
    table = [
        [
            maybe(f"ch09.rail_{r['rail']}", r["rail"]),
            f"{r['precision']:.2f}",
            f"{r['recall']:.2f}",
            r["n_pos"],
            r["n_neg"],
            len(r["errors"]),
            "—"
            if r["rail"] not in tune_by
            else f"{tune_by[r['rail']]['precision']:.2f} / {tune_by[r['rail']]['recall']:.2f}",
        ]
        for r in rows
    ]
    cols = [t("ch09.col_rail"), t("ch09.col_precision"), t("ch09.col_recall"), t("ch09.col_pos"), t("ch09.col_neg")]
    cols += [t("ch09.col_errors"), t("ch09.col_tune")]
    charts.table(table, cols)


# -- traces ------------------------------------------------------------------------------------------------------
def span_label(name: str, depth: int) -> str:
    key = "ch09.span_" + name.replace(".", "_")
    return "  " * depth + maybe(key, name)


def waterfall(spans: list[dict]) -> go.Figure:
    labels = [span_label(s["name"], s["depth"]) for s in spans]
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=[max(s["duration_ms"], 0.01) for s in spans],
            base=[s["start_offset_ms"] for s in spans],
            orientation="h",
            marker_color=["#d62728" if s["status"] == "ERROR" else "#1f77b4" for s in spans],
            customdata=[[s["name"], s["span_type"], s["duration_ms"]] for s in spans],
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>%{customdata[2]:.1f} ms<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_layout(
        title=t("ch09.waterfall_title"),
        xaxis_title=t("ch09.axis_offset_ms"),
        yaxis={"autorange": "reversed", "type": "category"},
        height=max(220, 36 * len(spans) + 90),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def show_spans(spans: list[dict]) -> None:
    if not spans:
        st.info(t("ch09.no_spans"))
        return
    charts.show(st, waterfall(spans))
    for s in spans:
        with st.expander(f"{span_label(s['name'], 0)} · {s['duration_ms']:.1f} ms"):
            st.caption(t("ch09.span_inputs"))
            st.code(s["inputs_preview"] or "—", language="json", wrap_lines=True)
            st.caption(t("ch09.span_outputs"))
            st.code(s["outputs_preview"] or "—", language="json", wrap_lines=True)


def trace_table(traces) -> None:
    rows = [
        [
            tr.started.strftime("%Y-%m-%d %H:%M:%S"),
            tr.question or "—",
            maybe(f"ch09.cache_{tr.cache}", "—") if tr.cache else "—",
            "—" if tr.latency_s is None else f"{tr.latency_s:.2f}",
            tr.status or "—",
            tr.trace_id,
        ]
        for tr in traces
    ]
    cols = [t("ch09.col_started"), t("ch09.col_question"), t("ch09.cache_verdict"), t("ch09.col_latency_s")]
    cols += [t("ch09.col_status"), t("ch09.col_trace")]
    charts.table(rows, cols)


def trace_label(traces, trace_id: str) -> str:
    tr = next(x for x in traces if x.trace_id == trace_id)
    return f"{tr.started:%H:%M:%S} · {tr.question[:40]} · {trace_id}"


def shipped_note(name: str):
    """The shipped result `name`, labelled; None when there is none."""
    pre = shipped(name)
    if pre is not None:
        precomputed_note(pre)
    return pre
