"""Hands-On ch.4's page helpers (pages/94_classification.py): the five-method table, a confusion matrix per method,
and one sentence labelled by every method.

Every result is drawn from one plain dict (`Comparison.as_dict()`), whichever made it: the shipped run
(assets/precomputed/h4_classify.json) or a run in this session, so a fresh page and a page after a click look alike.
"""

from __future__ import annotations

import math

import streamlit as st

from engine.core import load_precomputed
from ui import charts
from ui.i18n import maybe, t
from ui.layout import precomputed_note

SS = st.session_state
PRECOMPUTED = "h4_classify"


def method_label(method: str) -> str:
    return maybe(f"h4.method_{method}", method)


def short(label: str) -> str:
    """Shorten "제3장 국회" -> "국회" (axis ticks stay short; the chapter number is in the lesson's table)."""
    return label.split(" ", 1)[-1]


def fmt(value, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def ms(seconds) -> str:
    """Seconds per item as milliseconds (the methods span 0.5 ms to seconds)."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "—"
    return f"{1000 * seconds:,.1f}"


def shipped():
    """The shipped comparison (labelled on the page), or None."""
    pre = load_precomputed(PRECOMPUTED)
    if pre is not None:
        precomputed_note(pre)
    return pre


def error_text(code: str | None, fmt_values: dict | None, english: str | None) -> str:
    from ui.errors import translated

    return (translated(code, fmt_values or {}) if code else None) or english or ""


def run_comparison(methods: tuple[str, ...], limit: int, progress) -> dict:
    """Work for ui.jobs: the comparison as the page's plain dict; the trained classifiers are kept for "try"."""
    from engine.handson.classification import CompareConfig, compare_methods

    comparison = compare_methods(methods, CompareConfig(limit_generative=limit), progress)
    SS["h4_classifiers"] = comparison.classifiers
    return comparison.as_dict()


def results_table(data: dict) -> None:
    """One row per method: macro-F1, accuracy, ms per item, training seconds, test items (and the generative
    subset's figures for every method, when the generative run used a subset)."""
    has_subset = any(m.get("subset") for m in data["methods"])
    rows = []
    for m in data["methods"]:
        row = {
            t("h4.col_method"): method_label(m["method"]),
            t("h4.col_macro_f1"): fmt(m["macro_f1"]),
            t("h4.col_accuracy"): fmt(m["accuracy"]),
            t("h4.col_ms_per_item"): ms(m["seconds_per_item"]),
            t("h4.col_train_seconds"): fmt(m["train_seconds"], 1),
            t("h4.col_n_test"): m["n_test"],
        }
        if has_subset:
            sub = m.get("subset") or {}
            row[t("h4.col_subset_f1", n=sub.get("n", "—"))] = fmt(sub.get("macro_f1"))
        rows.append(row)
    charts.table(rows)
    for m in data["methods"]:
        if m["status"] != "ok":
            message = error_text(m.get("error_code"), m.get("error_fmt"), m.get("error"))
            st.warning(t("h4.unavailable", method=method_label(m["method"]), reason=message), icon="🔌")
        elif m.get("unparsed"):
            st.caption(t("h4.unparsed", method=method_label(m["method"]), n=m["unparsed"]))
    dropped = ", ".join(f"{d['chapter']} ({d['paragraphs']})" for d in data.get("dropped", []))
    st.caption(
        t("h4.split_note", train=data["n_train"], test=data["n_test"], labels=len(data["labels"]), dropped=dropped)
    )


def f1_chart(data: dict) -> None:
    rows = [
        {"method": method_label(m["method"]), "metric": t(f"h4.col_{k}"), "value": m[k]}
        for m in data["methods"]
        if m["status"] == "ok"
        for k in ("macro_f1", "accuracy")
    ]
    if not rows:
        return
    labels = {"method": t("h4.col_method"), "value": t("h4.axis_score"), "metric": t("h4.legend_metric")}
    fig = charts.grouped_bars(rows, "method", "value", "metric", title=t("h4.f1_title"), labels=labels)
    fig.update_traces(texttemplate="%{text:.2f}")
    fig.update_yaxes(range=[0, 1])
    charts.show(st, fig)


def confusion_chart(data: dict, method: str) -> None:
    m = next(x for x in data["methods"] if x["method"] == method)
    names = [short(x) for x in data["labels"]]
    fig = charts.heatmap(
        m["confusion"], names, names, title=t("h4.confusion_title", method=method_label(method), n=m["n_test"])
    )
    fig.update_traces(text=m["confusion"], texttemplate="%{text}", hovertemplate=t("h4.confusion_hover"))
    fig.update_layout(xaxis_title=t("h4.axis_predicted"), yaxis_title=t("h4.axis_true"))
    charts.show(st, fig)


def classify_one(text: str, methods: tuple[str, ...], progress) -> list[dict]:
    """Work for ui.jobs: each method's label for `text`. The classifiers come from this session's comparison, else
    the local methods asked for are trained once per process and shared (about 20 s; minutes with `finetuned`)."""
    from engine.handson.classification import CompareConfig, check_text, classify_text, train_classifiers
    from ui.cache import shared

    text = check_text(text)  # an empty or huge text is refused before any training
    clf = SS.get("h4_classifiers")
    trained = {"encoder": "encoder", "finetuned": "finetuned", "embed_lr": "logreg", "zero_shot": "label_vectors"}
    local = tuple(m for m in methods if m in trained)
    if clf is None or any(getattr(clf, trained[m], None) is None and m not in clf.errors for m in local):
        clf = shared(
            ("h4_classifiers", CompareConfig(), local), lambda p: train_classifiers(local, progress=p), progress
        )
    progress(0.95, t("h4.try_classifying"))
    return [
        {
            "method": x.method,
            "label": x.label,
            "status": x.status,
            "error": error_text(x.error_code, x.error_fmt, x.error),
            "seconds": x.seconds,
        }
        for x in classify_text(clf, text, methods)
    ]


def try_table(rows: list[dict]) -> None:
    table = [
        {
            t("h4.col_method"): method_label(r["method"]),
            t("h4.col_label"): r["label"] or t(f"h4.status_{r['status']}"),
            t("h4.col_ms"): ms(r["seconds"]) if r["status"] == "ok" else "—",
        }
        for r in rows
    ]
    charts.table(table)
    for r in rows:
        if r["status"] == "unavailable":
            st.warning(t("h4.unavailable", method=method_label(r["method"]), reason=r["error"]), icon="🔌")
