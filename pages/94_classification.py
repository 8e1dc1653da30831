"""Hands-On LLM ch.4 — text classification five ways, on one Korean task (Constitution paragraph -> chapter):
chapter 3's encoder trained from scratch on the labels, the pretrained Gemma-3-270M fine-tuned with LoRA, frozen
embeddings + logistic regression, zero-shot with label embeddings, and the instruct model answering under an enum
grammar. The comparison runs behind a button as a job (a few minutes); a fresh page shows the shipped table
(assets/precomputed/h4_classify.json). Each section reruns alone when one of its widgets changes
(ui.layout.live_section)."""

import streamlit as st

from engine.handson import MAX_GENERATIVE, MAX_TEXT_CHARS, METHODS
from ui import handson as view
from ui.i18n import t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, live_section, notice, quiz, section_header, show_code
from ui.state import clamped, param

SS = st.session_state
# The page's default run stays under a minute on 2 cores (the shipped table has all five on the whole test set):
# fine-tuning Gemma takes ~2 min and the generative method ~2-7 s per item, so they are opt-in, on 6 items.
FAST = ("encoder", "embed_lr", "zero_shot", "generative")
PAGE_LIMIT = 6
DEFAULT_TEXT = "국회의원은 현행범인 경우를 제외하고는 회기중 국회의 동의없이 체포 또는 구금되지 아니한다."


def current() -> dict | None:
    """This session's comparison, else the shipped one (labelled), else None."""
    if SS.get("h4_cmp"):
        st.caption(t("h4.live_result"))
        return SS["h4_cmp"]
    pre = view.shipped()
    return pre.data if pre else None


@live_section
def methods_section(ch) -> None:
    section_header(ch, "methods")
    clamped("me_limit", PAGE_LIMIT, 1, MAX_GENERATIVE, int)
    c1, c2 = st.columns([2, 1])
    chosen = c1.multiselect(
        t("h4.methods"), list(METHODS), default=list(FAST), key="me_methods", format_func=view.method_label
    )
    c2.slider(t("h4.limit"), 1, MAX_GENERATIVE, key="me_limit", help=t("h4.limit_help"))
    if st.button(t("h4.run"), key="me_run", type="primary", disabled=not chosen, help=t("h4.run_help")):
        methods = tuple(m for m in METHODS if m in chosen)
        limit = SS["me_limit"]
        work = lambda p, r, s: view.run_comparison(methods, limit, p)  # noqa: E731
        run_and_keep("h4_compare", work, t("h4.running"), "h4_cmp", heavy=True)
    last_job("h4_compare")
    data = current()
    if data:
        view.results_table(data)
        view.f1_chart(data)
    else:
        st.info(t("h4.none"), icon="🏷️")
    st.code("python -m engine classify-compare --json", language="bash")
    notice("common.notice", t("h4.notice_methods"))
    quiz("H4", "methods")


@live_section
def confusion_section(ch) -> None:
    section_header(ch, "confusion")
    data = current()
    available = [m["method"] for m in data["methods"] if m["status"] == "ok"] if data else []
    if not available:
        st.info(t("h4.none"), icon="🏷️")
    else:
        param("cf_method", available[0], str, choices=available, labels=view.method_label)
        method = st.radio(
            t("h4.confusion_method"), available, key="cf_method", format_func=view.method_label, horizontal=True
        )
        view.confusion_chart(data, method)
    notice("common.notice", t("h4.notice_confusion"))
    quiz("H4", "confusion")


@live_section
def try_section(ch) -> None:
    section_header(ch, "try")
    param("tr_text", DEFAULT_TEXT, str)
    param("tr_generative", True, bool)
    param("tr_finetuned", False, bool)
    st.text_area(t("h4.try_text"), key="tr_text", height=100, help=t("h4.try_help", limit=f"{MAX_TEXT_CHARS:,}"))
    c1, c2 = st.columns(2)
    c1.toggle(t("h4.try_generative"), key="tr_generative", help=t("h4.try_generative_help"))
    c2.toggle(t("h4.try_finetuned"), key="tr_finetuned", help=t("h4.try_finetuned_help"))
    if st.button(t("h4.try_run"), key="tr_run", type="primary"):
        text = SS["tr_text"]
        off = {m for m, on in (("generative", SS["tr_generative"]), ("finetuned", SS["tr_finetuned"])) if not on}
        methods = tuple(m for m in METHODS if m not in off)
        work = lambda p, r, s: view.classify_one(text, methods, p)  # noqa: E731
        run_and_keep("h4_try", work, t("h4.try_running"), "h4_try", heavy=True)
    if SS.get("h4_try"):
        view.try_table(SS["h4_try"])
    else:
        st.info(t("h4.try_none"), icon="✍️")
    notice("common.notice", t("h4.notice_try"))
    quiz("H4", "try")


ch = chapter_header("H4")
methods_section(ch)
confusion_section(ch)
try_section(ch)
with friendly_errors():
    show_code(ch)
