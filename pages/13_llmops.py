"""Chapter 13 — LLMOps: tracked runs and the model registry, monitoring from the chapter 9 traces, and honest
evaluation (text metrics, a benchmark checked against lm-evaluation-harness, human labels and kappa, the LLM judge's
biases, RAG metrics). Training, the model server and the harness run only behind buttons; a fresh page shows shipped
results (assets/precomputed/ch13_*.json) and cheap live computations."""

import streamlit as st

from engine.llmops import (
    KINDS,
    METRIC_EXAMPLE_PAIRS,
    compare_configs,
    evaluate_pairs,
    load_judge_pairs,
    load_mc_items,
    measure_bias,
    mlflow_ui_command,
    monitor,
    question_drift,
    register_model,
    run_mc_eval,
    shipped_mc_data,
    tracking_uri,
)
from ui import llmops as view
from ui.cache import cached
from ui.i18n import t
from ui.jobs import run_and_keep
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.state import clamped, param

SS = st.session_state
BETAS = (0.03, 0.1, 0.3, 1.0)
BUCKETS = ("auto", "minute", "hour", "day")


def experiments_section(ch) -> None:
    section_header(ch, "experiments")
    pre = view.shipped_note("ch13_runs")
    if pre:
        view.show_runs_snapshot(pre.data)
    with st.expander(t("ch13.dv_title"), expanded=pre is None):
        view.data_versions()
    st.subheader(t("ch13.runs_mine"))
    st.caption(t("ch13.store", uri=tracking_uri()))
    st.code(mlflow_ui_command(), language="bash")
    param("ex_beta", 0.1, float, choices=BETAS)
    clamped("ex_steps", 15, 5, 60, int)
    c1, c2 = st.columns(2)
    c1.select_slider(t("ch13.beta"), BETAS, key="ex_beta", help=t("ch13.beta_help"))
    c2.slider(t("ch13.steps"), 5, 60, key="ex_steps")
    c1, c2 = st.columns(2)
    refresh = c2.button(t("ch13.refresh_runs"), key="ex_refresh")
    if c1.button(t("ch13.track_run"), key="ex_run", type="primary"):
        beta, steps = SS["ex_beta"], SS["ex_steps"]
        run_and_keep(
            "ch13_track",
            lambda p, r, s: view.tracked_demo(beta, steps, p, r, s),
            t("ch13.tracking"),
            "ch13_tracked",
            heavy=True,
        )
        refresh = refresh or "ch13_tracked" in SS
    view.tracked_note(SS.get("ch13_tracked"))
    runs: list[dict] = []
    with friendly_errors():
        runs = view.read_runs(refresh)
    if not runs:
        st.info(t("ch13.no_runs"), icon="🧪")
    else:
        view.runs_table(runs)
        view.compare_runs(runs)
    notice("common.notice", t("ch13.notice_experiments"))
    quiz("13", "experiments")


def registry_section(ch) -> None:
    section_header(ch, "registry")
    pre = view.shipped_note("ch13_runs") if view.has_registry("ch13_runs") else None
    if pre:
        view.show_model(pre.data["registry"])
    st.subheader(t("ch13.registry_mine"))
    param("rg_name", "ch04-toy-dpo", str)
    param("rg_path", "policy", str, choices=("policy", "adapter"))
    st.text_input(t("ch13.model_name"), key="rg_name", help=t("ch13.model_name_help"))
    runs = SS.get("ch13_runs") or []
    if SS.get("rg_run") not in [r["run_id"] for r in runs]:  # the newest run until the learner picks another
        SS["rg_run"] = runs[0]["run_id"] if runs else None
    c1, c2 = st.columns([3, 1])
    c1.selectbox(
        t("ch13.register_run"),
        [r["run_id"] for r in runs],
        key="rg_run",
        format_func=lambda i: view.run_choice(runs, i),
    )
    c2.selectbox(t("ch13.artifact"), ["policy", "adapter"], key="rg_path")
    refresh = st.button(t("ch13.refresh_models"), key="rg_refresh")
    if st.button(t("ch13.register"), key="rg_register", disabled=not runs):
        with friendly_errors():
            v = register_model(SS["rg_name"], SS["rg_run"], SS["rg_path"])
            st.success(t("ch13.registered", name=v.name, version=v.version))
            refresh = True
    view.promote_form()  # before the tables, so they show the alias where it now points
    models: list[dict] = []
    with friendly_errors():
        models = view.read_registry(refresh)
    if not models:
        st.info(t("ch13.no_models"), icon="🗂️")
    else:
        view.models_table(models)
        with friendly_errors():
            if SS["rg_name"] in [m["name"] for m in models]:
                view.show_model(view.model_view(SS["rg_name"]))
    notice("common.notice", t("ch13.notice_registry"))
    quiz("13", "registry")


def monitoring_section(ch) -> None:
    section_header(ch, "monitoring")
    pre = view.shipped_note("ch13_monitoring")
    if pre:
        view.shipped_traffic(pre.data)
        view.show_monitor(pre.data["report"])
    st.subheader(t("ch13.monitor_mine"))
    param("mo_bucket", "auto", str, choices=BUCKETS)
    st.radio(t("ch13.bucket"), list(BUCKETS), key="mo_bucket", horizontal=True, format_func=view.bucket_label)
    if st.button(t("ch13.monitor_read"), key="mo_read"):
        with friendly_errors(), st.spinner(t("ch13.monitor_reading")):
            SS["ch13_monitor"] = monitor(SS["mo_bucket"]).to_json()
    if SS.get("ch13_monitor"):
        view.show_monitor(SS["ch13_monitor"])
    st.subheader(t("ch13.calc_title"))
    view.cost_calculator()
    st.subheader(t("ch13.drift_title"))
    if pre and pre.data.get("drift"):
        view.show_drift(pre.data["drift"])
    param("mo_embedder", "ko-morph", str, choices=("ko-morph", "minilm"))
    st.radio(
        t("ch13.embedder"), ["ko-morph", "minilm"], key="mo_embedder", horizontal=True, format_func=view.embedder_label
    )
    if st.button(t("ch13.drift_run"), key="mo_drift"):
        name = SS["mo_embedder"]
        run_and_keep(
            "ch13_drift",
            lambda p, r, s: view.drift_view(question_drift(embedder_name=name)),
            t("ch13.drifting"),
            "ch13_drift",
        )
    if SS.get("ch13_drift"):
        view.show_drift(SS["ch13_drift"])
    notice("common.notice", t("ch13.notice_monitoring"))
    quiz("13", "monitoring")


def use_metric_chip() -> None:
    chip = SS.get("mt_chip")
    if chip is not None:
        SS["mt_pred"], SS["mt_ref"] = METRIC_EXAMPLE_PAIRS[chip]


def metrics_section(ch) -> None:
    section_header(ch, "metrics")
    param("mt_pred", METRIC_EXAMPLE_PAIRS[3][0], str)
    param("mt_ref", METRIC_EXAMPLE_PAIRS[3][1], str)
    chips = list(range(len(METRIC_EXAMPLE_PAIRS)))
    st.pills(t("ch13.examples"), chips, key="mt_chip", on_change=use_metric_chip, format_func=view.example_label)
    c1, c2 = st.columns(2)
    c1.text_area(t("ch13.prediction"), key="mt_pred", height=90)
    c2.text_area(t("ch13.reference"), key="mt_ref", height=90)
    with friendly_errors():
        examples = cached(("ch13", "metric_examples"), view.example_report, t("ch13.loading_kiwi"))
        view.show_metrics(evaluate_pairs([SS["mt_pred"]], [SS["mt_ref"]]))
        with st.expander(t("ch13.corpus_title")):
            view.metrics_corpus(examples)
    notice("common.notice", t("ch13.notice_metrics"))
    quiz("13", "metrics")


def benchmark_section(ch) -> None:
    section_header(ch, "benchmark")
    pre = view.shipped_note("ch13_mc_eval")
    if pre:
        view.show_mc(pre.data)
    st.subheader(t("ch13.mc_live"))
    clamped("mc_n", 5, 1, 50, int)
    param("mc_harness", False, choices=(True, False))
    c1, c2 = st.columns([3, 1])
    c1.slider(t("ch13.mc_n"), 1, 50, key="mc_n")
    c2.toggle(t("ch13.mc_harness"), key="mc_harness", help=t("ch13.mc_harness_help"))
    if st.button(t("ch13.mc_run"), key="mc_run"):
        n, harness = SS["mc_n"], SS["mc_harness"]
        work = lambda p, r, s: shipped_mc_data(run_mc_eval(limit=n, harness=harness, progress=p))  # noqa: E731
        run_and_keep("ch13_mc", work, t("ch13.mc_running"), "ch13_mc")
    if SS.get("ch13_mc"):
        view.show_mc(SS["ch13_mc"])
    data = SS.get("ch13_mc") or (pre.data if pre else None)
    if data and data.get("items"):
        items = {it["id"]: it for it in data["items"]}
        if SS.get("mc_item") not in items:  # first an item where the two accuracies disagree
            SS["mc_item"] = view.telling_item(data["items"])
        st.selectbox(t("ch13.mc_item"), list(items), key="mc_item")
        view.mc_item(items.get(SS["mc_item"]) or next(iter(items.values())))
    with st.expander(t("ch13.items_title"), expanded=data is None):
        view.items_table(load_mc_items())
    notice("common.notice", t("ch13.notice_benchmark"))
    quiz("13", "benchmark")


def human_section(ch) -> None:
    section_header(ch, "human")
    param("hu_learner", "", str)
    param("hu_kind", "pairwise", str, choices=KINDS)
    c1, c2 = st.columns(2)
    c1.text_input(t("ch13.learner"), key="hu_learner", help=t("ch13.learner_help"))
    c2.radio(t("ch13.kind"), list(KINDS), key="hu_kind", horizontal=True, format_func=lambda k: t(f"ch13.kind_{k}"))
    if SS["hu_learner"].strip():
        with friendly_errors():
            view.labelling(SS["hu_learner"], SS["hu_kind"])
    else:
        st.caption(t("ch13.learner_first"))
    st.subheader(t("ch13.agreement_title"))
    with friendly_errors():
        view.agreement_view(SS["hu_kind"])
    st.subheader(t("ch13.kappa_title"))
    view.kappa_playground()
    notice("common.notice", t("ch13.notice_human"))
    quiz("13", "human")


def judge_section(ch) -> None:
    section_header(ch, "judge")
    pre = view.shipped_note("ch13_judge_bias")
    if pre:
        view.show_judge(pre.data)
    pairs = load_judge_pairs()
    with st.expander(t("ch13.pairs_title", n=len(pairs)), expanded=pre is None):
        view.pairs_table(pairs)
    st.subheader(t("ch13.two_orders_title"))
    role = view.two_orders(pairs)
    st.subheader(t("ch13.bias_live"))
    clamped("jd_n", 10, 2, len(pairs), int)
    st.slider(t("ch13.judge_n"), 2, len(pairs), key="jd_n")
    if st.button(t("ch13.judge_run"), key="jd_run"):
        n = SS["jd_n"]
        work = lambda p, r, s: measure_bias(view.spread(pairs, n), role, None, p, s).to_json(with_verdicts=True)  # noqa: E731
        run_and_keep("ch13_judge", work, t("ch13.judging"), "ch13_judge")
    if SS.get("ch13_judge"):
        view.show_judge(SS["ch13_judge"])
    st.subheader(t("ch13.judge_vs_me"))
    data = SS.get("ch13_judge") or (pre.data if pre else None)
    with friendly_errors():
        view.judge_vs_learners(data or {})
    notice("common.notice", t("ch13.notice_judge"))
    quiz("13", "judge")


def rag_section(ch) -> None:
    section_header(ch, "rag")
    pre = view.shipped_note("ch13_rag_eval")
    if pre:
        view.show_rag(pre.data)
    st.subheader(t("ch13.cp_title"))
    view.precision_calculator()
    st.subheader(t("ch13.rag_live"))
    clamped("ra_n", 3, 1, 15, int)
    st.slider(t("ch13.rag_n"), 1, 15, key="ra_n", help=t("ch13.rag_n_help"))
    if st.button(t("ch13.rag_run"), key="ra_run"):
        n = SS["ra_n"]
        work = lambda p, r, s: view.rag_view(compare_configs(("best", "chroma"), n, "instruct", p, s), n)  # noqa: E731
        run_and_keep("ch13_rag", work, t("ch13.rag_running"), "ch13_rag")
    if SS.get("ch13_rag"):
        view.show_rag(SS["ch13_rag"])
    notice("common.notice", t("ch13.notice_rag"))
    quiz("13", "rag")


ch = chapter_header("13")
experiments_section(ch)
registry_section(ch)
monitoring_section(ch)
metrics_section(ch)
benchmark_section(ch)
human_section(ch)
judge_section(ch)
rag_section(ch)
show_code(ch)
