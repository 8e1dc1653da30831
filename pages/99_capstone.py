"""Capstone (Hands-On LLM): "encode sentence.csv, LoRA-tune a chatbot, quantize it to 4-bit, serve it as a REST API".

Data (a CSV of Korean question/answer pairs, the shipped sample or an upload, read defensively; a retrieval
baseline), the run (LoRA SFT -> merge -> GGUF with llama.cpp's converter -> 4-bit with its quantizer, before/after on
held-out pairs; one job, queued with the machine's other heavy runs), and the REST API (FastAPI over llama.cpp,
started here and called with a real HTTP client, including the calls it must refuse). A fresh page shows the
shipped run (assets/precomputed/hc_capstone.json)."""

import streamlit as st

from engine.capstone import MAX_QUESTION_CHARS, retrieval_baseline
from ui import capstone as view
from ui import capstone_api as api
from ui.i18n import t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.state import param

SS = st.session_state
SOURCES = ("sample", "upload")
BASES = ("instruct", "chat")
EPOCHS = (1, 2, 3, 4, 5)
RATES = (3e-4, 1e-3, 2e-3)
RANKS = (4, 8, 16, 32)
QUANTS = ("Q4_K_M", "Q4_0", "Q5_K_M", "Q8_0")


def data_section(ch) -> None:
    section_header(ch, "data")
    param("hc_source", "sample", str, choices=SOURCES)
    st.radio(t("hc.source"), list(SOURCES), key="hc_source", horizontal=True, format_func=lambda k: t(f"hc.source_{k}"))
    upload = None
    if SS["hc_source"] == "upload":
        upload = st.file_uploader(t("hc.upload"), type=["csv"], key="hc_upload", help=t("hc.upload_help"))
        if upload is None:
            st.info(t("hc.upload_first"), icon="📄")
            return
    with friendly_errors():
        source, qa = view.dataset(SS["hc_source"], upload)
        SS["hc_data"] = source
        view.show_dataset(qa)
        if st.button(t("hc.baseline_run"), key="hc_baseline"):
            with st.spinner(t("hc.baseline_running")):
                SS["hc_baseline_result"] = {
                    m: retrieval_baseline(qa.train, qa.heldout, m) for m in ("embedding", "bm25")
                }
        res = SS.get("hc_baseline_result")
        if res:
            c = st.columns(2)
            c[0].metric(t("hc.retrieval_embedding"), f"{res['embedding'].mean_f1:.3f}")
            c[1].metric(t("hc.retrieval_bm25"), f"{res['bm25'].mean_f1:.3f}")
    notice("common.notice", t("hc.notice_data"))
    quiz("HC", "data")


def train_section(ch) -> None:
    section_header(ch, "train")
    param("hc_base", "instruct", str, choices=BASES)
    param("hc_epochs", 3, int, choices=EPOCHS)
    param("hc_lr", 1e-3, float, choices=RATES)
    param("hc_rank", 16, int, choices=RANKS)
    param("hc_quant", "Q4_K_M", str, choices=QUANTS)
    c = st.columns(5)
    c[0].radio(t("hc.base"), list(BASES), key="hc_base", format_func=lambda k: t(f"hc.base_{k}"))
    c[1].select_slider(t("hc.epochs"), list(EPOCHS), key="hc_epochs")
    c[2].select_slider(t("hc.lr"), list(RATES), key="hc_lr", format_func=lambda v: f"{v:g}")
    c[3].select_slider(t("hc.rank"), list(RANKS), key="hc_rank")
    c[4].selectbox(t("hc.quant"), list(QUANTS), key="hc_quant")
    source = SS.get("hc_data")
    if source is None:
        st.info(t("hc.data_first"), icon="☝️")
    elif st.button(t("hc.run"), key="hc_run", type="primary"):
        cfg = view.config(SS["hc_base"], SS["hc_epochs"], SS["hc_lr"], SS["hc_rank"], SS["hc_quant"])
        run_and_keep("hc_run", view.run_work(source, cfg), t("hc.running"), "hc_result", heavy=True, estimate_mb=6000)
    run = SS.get("hc_result")
    if run:
        st.success(t("hc.mine"), icon="✅")
        view.show_result(run)
        view.downloads(run)
    else:
        state = last_job("hc_run")
        if state.rows:  # stopped: the steps that finished
            st.caption(t("hc.partial", steps=", ".join(r["step"] for r in state.rows)))
        pre = view.shipped()
        if pre:
            view.show_result(pre.data)
            st.code(pre.command, language="bash")
    notice("common.notice", t("hc.notice_train"))
    quiz("HC", "train")


def serve_section(ch) -> None:
    section_header(ch, "serve")
    model = api.model_choice(SS.get("hc_result"))
    running = api.running()
    c = st.columns(2)
    if running is None:
        if c[0].button(t("hc.api_start"), key="hc_api_start", disabled=model is None):
            with friendly_errors(), st.spinner(t("hc.api_starting")):
                api.start(model)
                running = api.running()
    elif c[1].button(t("hc.api_stop"), key="hc_api_stop"):
        api.stop()
        running = None
    if running is None:
        st.info(t("hc.api_none"), icon="🔌")
    else:
        st.caption(t("hc.api_running", url=running["url"], model=running["model"]))
        param("hc_q", "도서관은 평일에 몇 시에 문을 닫나요?", str)
        st.text_area(t("hc.question"), key="hc_q", max_chars=MAX_QUESTION_CHARS * 2, height=80)
        c = st.columns(4)
        call = None
        if c[0].button(t("hc.call"), key="hc_call", type="primary"):
            call = api.call(running, SS["hc_q"])
        if c[1].button(t("hc.call_no_token"), key="hc_call_nt"):
            call = api.call(running, SS["hc_q"], token=False)
        if c[2].button(t("hc.call_big"), key="hc_call_big"):
            call = api.call(running, "가" * 20_000)
        if c[3].button(t("hc.call_bad_json"), key="hc_call_bad"):
            call = api.call(running, None, raw=b'{"question": ')
        if call is not None:
            SS["hc_last_call"] = call
        if SS.get("hc_last_call"):
            api.show_call(SS["hc_last_call"])
        st.code(api.curl(running), language="bash")
    st.caption(t("hc.serve_cli"))
    st.code("python -m engine capstone-serve --model DIR/model.gguf --port 8000", language="bash")
    notice("common.notice", t("hc.notice_serve"))
    quiz("HC", "serve")


ch = chapter_header("HC")
data_section(ch)
train_section(ch)
serve_section(ch)
show_code(ch)
