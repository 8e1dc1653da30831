"""Chapter 16 — new architectures: state space models and Mamba. Why (the KV cache grows, an SSM's state does not),
S4 (discretization, recurrence = convolution, HiPPO), selection (the selective scan, sequential = parallel; why an
LTI kernel cannot copy selectively), Mamba (from scratch = transformers' MambaModel; the book's 16.5 code and its four
defects), and live training on the paper's synthetic tasks. Each section reruns alone when one of its widgets changes
(ui.layout.live_section: the course load test's page). Cheap computations run on every rerun; measurements and
training run only behind buttons, and a fresh page shows the shipped results (assets/precomputed/ch16_*.json)."""

import streamlit as st

from engine.ssm import TASKS, make_hippo
from ui import ssm as view
from ui.i18n import t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, live_section, notice, quiz, section_header, show_code
from ui.state import clamped, param

SS = st.session_state
STEPS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0, 100000.0)
METHODS = ("zoh", "bilinear")
A_KINDS = ("random", "hippo")
DTYPES = ("float64", "float32")
SIGNALS = ("sine", "step", "chirp", "noise")
BENCH_LENGTHS = (64, 128, 256, 512, 1024, 2048)
MAX_TRAIN_STEPS = 3000  # the page's limit of 90 s of training ends a long run first (it is then evaluated as it is)


@live_section
def why_section(ch) -> None:
    section_header(ch, "why")
    pre = view.shipped_note("ch16_bench")
    if pre:
        view.show_bench(pre.data)
    else:
        st.info(t("ch16.bench_none"), icon="📏")
    st.subheader(t("ch16.bench_live"))
    param("wh_len", 256, int, choices=BENCH_LENGTHS)
    st.select_slider(t("ch16.bench_length"), list(BENCH_LENGTHS), key="wh_len", help=t("ch16.bench_length_help"))
    if st.button(t("ch16.bench_run"), key="wh_run"):
        n = SS["wh_len"]
        work = lambda p, r, s: view.live_bench(n, p, r, s)  # noqa: E731
        run_and_keep("ch16_bench", work, t("ch16.bench_running"), "ch16_bench", heavy=True)
    state = last_job("ch16_bench")
    if SS.get("ch16_bench"):
        view.show_bench(SS["ch16_bench"])
        view.same_bytes(SS["ch16_bench"], pre.data if pre else None)
    elif state.rows:  # stopped halfway: the rows measured so far
        view.show_bench(view.bench_rows_view(state.rows))
    st.caption(t("ch16.bench_command"))
    st.code(pre.command if pre else "python -m engine ssm-bench --save-precomputed", language="bash")
    notice("common.notice", t("ch16.notice_why"))
    quiz("16", "why")


@live_section
def s4_section(ch) -> None:
    section_header(ch, "s4")
    param("s4_a", "hippo", str, choices=A_KINDS)
    clamped("s4_n", 8, 1, 64, int)
    param("s4_dt", 0.03, float, choices=STEPS)
    param("s4_method", "zoh", str, choices=METHODS)
    clamped("s4_len", 64, 8, 1024, int)
    param("s4_dtype", "float64", str, choices=DTYPES)
    c1, c2, c3 = st.columns(3)
    c1.radio(t("ch16.a_kind"), list(A_KINDS), key="s4_a", format_func=lambda k: t(f"ch16.a_{k}"))
    c2.radio(t("ch16.method"), list(METHODS), key="s4_method", format_func=lambda k: t(f"ch16.method_{k}"))
    c3.radio(t("ch16.dtype"), list(DTYPES), key="s4_dtype", horizontal=True)
    c1, c2, c3 = st.columns(3)
    c1.slider(t("ch16.state_n"), 1, 64, key="s4_n", help=t("ch16.state_n_help"))
    c2.select_slider(t("ch16.step"), list(STEPS), key="s4_dt", format_func=lambda v: f"{v:g}", help=t("ch16.step_help"))
    c3.slider(t("ch16.length"), 8, 1024, key="s4_len", step=8)
    with friendly_errors():
        res = view.s4_views(SS["s4_a"], SS["s4_n"], SS["s4_dt"], SS["s4_method"], SS["s4_len"], SS["s4_dtype"])
        view.diff_metrics(res)
        c1, c2 = st.columns(2)
        with c1:
            view.kernel_chart(res)
        with c2:
            view.views_chart(res)
    st.subheader(t("ch16.hippo_sub"))
    clamped("hp_n", 8, 2, 32, int)
    clamped("hp_mem_n", 32, 1, 128, int)
    param("hp_signal", "sine", str, choices=SIGNALS)
    c1, c2 = st.columns([1, 2])
    with c1:
        st.slider(t("ch16.hippo_n"), 2, 32, key="hp_n")
        view.hippo_heatmap(make_hippo(SS["hp_n"]).tolist())
    with c2:
        cc1, cc2 = st.columns(2)
        cc1.slider(t("ch16.memory_n"), 1, 128, key="hp_mem_n", help=t("ch16.memory_n_help"))
        cc2.radio(t("ch16.signal"), list(SIGNALS), key="hp_signal", horizontal=True, format_func=view.signal_label)
        with friendly_errors():
            mem = view.hippo(SS["hp_mem_n"], SS["hp_signal"])
            view.memory_chart(mem)
    notice("common.notice", t("ch16.notice_s4"))
    quiz("16", "s4")


@live_section
def selection_section(ch) -> None:
    section_header(ch, "selection")
    st.subheader(t("ch16.scan_sub"))
    param("se_dtype", "float64", str, choices=DTYPES)
    st.radio(t("ch16.dtype"), list(DTYPES), key="se_dtype", horizontal=True)
    with friendly_errors():
        view.scan_metrics(view.scan_view(SS["se_dtype"]), SS["se_dtype"])
    st.subheader(t("ch16.copy_sub"))
    clamped("se_len", 16, 4, 128, int)
    clamped("se_p1", 2, 0, 127, int)
    clamped("se_p2", 9, 0, 127, int)
    c1, c2, c3 = st.columns(3)
    c1.slider(t("ch16.copy_len"), 4, 128, key="se_len")
    c2.number_input(t("ch16.copy_p1"), 0, 127, key="se_p1")
    c3.number_input(t("ch16.copy_p2"), 0, 127, key="se_p2")
    with friendly_errors():
        demo = view.copy_demo(SS["se_len"], SS["se_p1"], SS["se_p2"])
        view.copy_demo_chart(demo)
    notice("common.notice", t("ch16.notice_selection"))
    quiz("16", "selection")


@live_section
def mamba_section(ch) -> None:
    section_header(ch, "mamba")
    st.subheader(t("ch16.mb_sub"))
    param("mb_dtype", "float64", str, choices=DTYPES)
    dtype = st.radio(t("ch16.dtype"), list(DTYPES), key="mb_dtype", horizontal=True, help=t("ch16.mb_dtype_help"))
    shipped_slot = st.container()  # the shipped report goes above the button, unless this session ran its own
    if st.button(t("ch16.mb_run"), key="mb_run", help=t("ch16.mb_run_help")):
        with friendly_errors():
            SS[f"ch16_mb_{dtype}"] = view.mamba_check(dtype)
    live = SS.get(f"ch16_mb_{dtype}")
    if live:
        st.caption(t("ch16.mb_live"))
        view.mamba_metrics(live)
    else:
        with shipped_slot:
            pre = view.shipped_note("ch16_check")
            shipped = view.shipped_mamba(pre.data, dtype) if pre else None
            if shipped:
                view.mamba_metrics(shipped)
            else:
                st.info(t("ch16.mb_none"), icon="🧮")
    st.code("python -m engine ssm-check --json", language="bash")
    st.subheader(t("ch16.book_sub"))
    with friendly_errors():
        view.show_book(view.book_view(SS["mb_dtype"]))
    notice("common.notice", t("ch16.notice_mamba"))
    quiz("16", "mamba")


@live_section
def training_section(ch) -> None:
    section_header(ch, "training")
    param("tr_task", "selective_copy", str, choices=TASKS)
    task = st.radio(t("ch16.task"), list(TASKS), key="tr_task", format_func=view.task_label, horizontal=True)
    steps_key, shipped_steps = f"tr_steps_{task}", view.default_steps(task)
    clamped(steps_key, shipped_steps, 50, MAX_TRAIN_STEPS, int)
    steps = st.slider(
        t("ch16.train_steps"),
        50,
        MAX_TRAIN_STEPS,
        key=steps_key,
        step=50,
        help=t("ch16.train_steps_help", shipped=f"{shipped_steps:,}", seconds=view.TRAIN_SECONDS),
    )
    pre = view.shipped_note(f"ch16_train_{task}")
    shipped = view.results_of(pre.data if pre else None)
    c1, c2 = st.columns(2)
    for col, arch in ((c1, "mamba"), (c2, "transformer")):
        if col.button(t(f"ch16.train_{arch}"), key=f"tr_{arch}", type="primary" if arch == "mamba" else "secondary"):
            work = lambda p, r, s, a=arch: view.train_one(a, view.train_config(task, steps), p, r, s)  # noqa: E731
            label = t("ch16.training", model=view.model_label(arch), task=view.task_label(task))
            run_and_keep(f"ch16_train_{task}_{arch}", work, label, f"ch16_tr_{task}_{arch}", heavy=True)
    mine = {a: SS[f"ch16_tr_{task}_{a}"] for a in ("mamba", "transformer") if SS.get(f"ch16_tr_{task}_{a}")}
    partial = {a: last_job(f"ch16_train_{task}_{a}").rows for a in ("mamba", "transformer") if a not in mine}
    for arch, res in mine.items():
        if res.get("status") == "diverged":
            st.warning(t("ch16.diverged", model=view.model_label(arch), message=res.get("message", "")), icon="💥")
        elif res.get("time_limited"):
            st.caption(t("ch16.deadline", model=view.model_label(arch), seconds=view.TRAIN_SECONDS, steps=res["steps"]))
    results = {**shipped, **mine}
    if mine and shipped and len(mine) < 2:
        st.caption(t("ch16.mixed_results"))
    if results or any(partial.values()):
        c1, c2 = st.columns(2)
        view.loss_chart(c1, results, partial)
        view.accuracy_chart(c2, {a: r for a, r in results.items() if r.get("accuracy_by_length")})
        view.results_table(results)
    else:
        st.info(t("ch16.no_training"), icon="🏋️")
    st.code(f"python -m engine ssm-train --task {task} --json", language="bash")
    notice("common.notice", t("ch16.notice_training"))
    quiz("16", "training")


ch = chapter_header("16")
why_section(ch)
s4_section(ch)
selection_section(ch)
mamba_section(ch)
training_section(ch)
show_code(ch)
