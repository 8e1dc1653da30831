"""Chapter 16's page helpers (pages/16_mamba.py): the bench (KV cache vs SSM state), S4's two views and HiPPO, the
selective scan, the from-scratch Mamba against transformers' and the book's 16.5 code, and the synthetic-task races.

Every result is drawn from one plain dict, whichever made it: a shipped run (assets/precomputed/ch16_*.json) or a run
in this session, so a fresh page and a page after a click look the same.
"""

from __future__ import annotations

import functools
import math

import plotly.graph_objects as go
import streamlit as st

from engine.core import load_precomputed
from ui import charts
from ui.cache import cached
from ui.i18n import maybe, t
from ui.layout import precomputed_note

SS = st.session_state
MODEL_COLORS = {"mamba": "#2ca02c", "transformer": "#1f77b4"}


# -- small things --------------------------------------------------------------------------------------------------


def fmt(value, digits: int = 3) -> str:
    """A number as text; "—" for a missing one (None, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def sci(value) -> str:
    """A small difference in scientific notation (1.2e-15); exactly 0 as "0"; "—" when missing."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return "0" if value == 0 else f"{value:.1e}"


def pct(value) -> str:
    return "—" if not isinstance(value, int | float) or not math.isfinite(value) else f"{100 * value:.1f}%"


def size(nbytes) -> str:
    """Bytes as the learner reads them: B, KB, MB (decimal units, as the table's column says)."""
    if not isinstance(nbytes, int | float) or not math.isfinite(nbytes):
        return "—"
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} B"


def shipped_note(name: str):
    """The shipped result `name`, labelled; None when there is none."""
    pre = load_precomputed(name)
    if pre is not None:
        precomputed_note(pre)
    return pre


def model_label(name: str) -> str:
    return maybe(f"ch16.model_{name}", name)


# -- 16.2 S4 -------------------------------------------------------------------------------------------------------
def kernel_chart(res: dict) -> None:
    k = res["kernel"]
    fig = charts.axes(t("ch16.kernel_title", n=res["N"], step=res["step"]), t("ch16.axis_lag"), "K")
    fig.add_trace(go.Scatter(x=list(range(len(k))), y=k, mode="lines+markers", name="K", marker={"size": 4}))
    charts.show(st, fig)


def views_chart(res: dict) -> None:
    """The recurrent output and the two convolutions overlaid: they should be one line."""
    fig = charts.axes(t("ch16.views_title"), t("ch16.axis_step"), "y")
    xs = list(range(res["length"]))
    fig.add_trace(go.Scatter(x=xs, y=res["y_recurrent"], mode="lines", name=t("ch16.view_rnn"), line={"width": 6}))
    fig.add_trace(go.Scatter(x=xs, y=res["y_conv"], mode="lines", name=t("ch16.view_conv"), line={"width": 3}))
    fig.add_trace(
        go.Scatter(x=xs, y=res["y_fft"], mode="markers", name=t("ch16.view_fft"), marker={"size": 5, "symbol": "x"})
    )
    charts.show(st, fig)


def diff_metrics(res: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ch16.diff_conv"), sci(res["max_diff_conv"]))
    c2.metric(t("ch16.diff_fft"), sci(res["max_diff_fft"]))
    c3.metric(t("ch16.dtype"), res["dtype"])


def hippo_heatmap(matrix: list[list[float]]) -> None:
    n = len(matrix)
    labels = [str(i) for i in range(n)]
    fig = charts.heatmap(matrix, labels, labels, t("ch16.hippo_title", n=n), colorscale="RdBu", zmid=0.0)
    fig.update_layout(height=min(520, max(300, 20 * n + 160)))
    fig.update_xaxes(title=t("ch16.axis_k"))
    fig.update_yaxes(title=t("ch16.axis_n"))
    charts.show(st, fig)


def memory_chart(mem: dict) -> None:
    """The signal, and the past redrawn from the N numbers of the state at a few times."""
    fig = charts.axes(t("ch16.memory_title", n=mem["N"]), t("ch16.axis_time"), "u(t)", height=360)
    fig.add_trace(
        go.Scatter(x=mem["t"], y=mem["signal"], mode="lines", name=t("ch16.memory_signal"), line={"color": "#999"})
    )
    for when, rec in zip(mem["read_times"], mem["reconstructions"], strict=True):
        fig.add_trace(
            go.Scatter(x=mem["t"][: len(rec)], y=rec, mode="lines", name=t("ch16.memory_read", t=f"{when:.2f}"))
        )
    charts.show(st, fig)
    rows = [[f"{w:.2f}", fmt(e, 4)] for w, e in zip(mem["read_times"], mem["errors"], strict=True)]
    charts.table(rows, [t("ch16.col_read_time"), t("ch16.col_rms")])


# -- 16.3 selection --------------------------------------------------------------------------------------------------
def copy_demo_chart(demo: dict) -> None:
    """The two inputs (the same content token at two places among noise), the selective scan's Δ per token, and the
    value each model fetches at the end."""
    xs = list(range(demo["length"]))
    c1, c2 = st.columns(2)
    fig = charts.axes(t("ch16.copy_inputs_title"), t("ch16.axis_position"), t("ch16.axis_value"), height=300)
    for i, (p, u) in enumerate(zip(demo["positions"], demo["inputs"], strict=True)):
        name = t("ch16.copy_input", i=i + 1, p=p)
        fig.add_trace(go.Scatter(x=xs, y=u, mode="lines+markers", name=name, marker={"size": 5}))
        fig.add_trace(
            go.Scatter(
                x=[p], y=[u[p]], mode="markers", showlegend=False, marker={"size": 16, "symbol": "star"}, name=name
            )
        )
    charts.show(c1, fig)
    fig = charts.axes(t("ch16.copy_delta_title"), t("ch16.axis_position"), "Δ_t", height=300, log_y=True)
    for i, (p, d) in enumerate(zip(demo["positions"], demo["selective_deltas"], strict=True)):
        fig.add_trace(go.Scatter(x=xs, y=d, mode="lines+markers", name=t("ch16.copy_input", i=i + 1, p=p)))
    charts.show(c2, fig)
    rows = []
    for name, outs in demo["lti_outputs"].items():
        rows.append([maybe(f"ch16.copy_lti_{name}", name), *[fmt(v, 3) for v in outs], fmt(demo["value"], 2)])
    rows.append([t("ch16.copy_selective"), *[fmt(v, 3) for v in demo["selective_outputs"]], fmt(demo["value"], 2)])
    cols = [t("ch16.col_model")]
    cols += [t("ch16.col_output_of", i=i + 1, p=p) for i, p in enumerate(demo["positions"])]
    charts.table(rows, [*cols, t("ch16.col_target")])


def s4_model(a_kind: str, n: int, seed: int = 0):
    """The continuous SSM the S4 demo discretizes: the Annotated S4's random stable one, or HiPPO-LegS's A and B
    (with the same random C, so only the dynamics change between the two)."""
    import torch

    from engine.ssm import ContinuousSSM, hippo_legs, random_ssm

    rnd = random_ssm(n, seed=seed, dtype=torch.float64)
    if a_kind != "hippo":
        return rnd
    A, B = hippo_legs(n, torch.float64)
    return ContinuousSSM(A=A, B=B, C=rnd.C)


@functools.lru_cache(maxsize=512)
def s4_views(a_kind: str, n: int, step: float, method: str, length: int, dtype: str) -> dict:
    """Both views of one discretized SSM on one random input (engine.ssm.cnn_vs_rnn) as a plain dict (read-only:
    kept for the process and shared by every session; the slider's settings repeat across a class, and the
    recurrent view's Python loop was the largest share of a loaded course server's CPU)."""
    import torch

    from engine.ssm import cnn_vs_rnn

    torch_dtype = torch.float32 if dtype == "float32" else torch.float64
    return cnn_vs_rnn(s4_model(a_kind, n), length=length, step=step, method=method, dtype=torch_dtype).as_dict()


@functools.lru_cache(maxsize=512)
def copy_demo(length: int, first: int, second: int) -> dict:
    """The selective-copy demo (engine.ssm.selective_copy_demo) as a plain, read-only dict, shared like s4_views."""
    from engine.ssm import selective_copy_demo

    return selective_copy_demo(length, (first, second)).as_dict()


def signal_label(name: str) -> str:
    return maybe(f"ch16.signal_{name}", name)


def hippo(n: int, signal: str) -> dict:
    """HiPPO-LegS's memory of one signal (1,000 steps, about 0.3 s): computed once per process for each setting."""
    from engine.ssm import hippo_memory

    return cached(
        ("ch16", "hippo", n, signal), lambda p: hippo_memory(n, 1000, signal).as_dict(), t("ch16.hippo_running")
    )


def scan_view(dtype: str) -> dict:
    """Parallel (Hillis–Steele) vs sequential selective scan on one random batch: outputs and gradients."""
    import torch

    from engine.ssm.check import scan_check

    # pure and the same for every learner: computed once per process, not on every rerun of the page
    work = lambda p: scan_check(torch.float32 if dtype == "float32" else torch.float64)  # noqa: E731
    return cached(("ch16", "scan_check", dtype), work, t("ch16.computing"))


def scan_metrics(res: dict, dtype: str) -> None:
    b, length, d, n = res["shape"]
    c1, c2 = st.columns(2)
    c1.metric(t("ch16.scan_diff"), sci(res["max_diff"]))
    c2.metric(t("ch16.scan_grad_diff"), sci(res["grad_max_diff"]))
    st.caption(t("ch16.scan_caption", b=b, length=length, d=d, n=n, dtype=dtype, rounds=math.ceil(math.log2(length))))


# -- 16.4 Mamba vs transformers, the book's code ----------------------------------------------------------------------
def mamba_check(dtype: str) -> dict:
    """Our MambaLM vs transformers' MambaModel with the same weights (engine.ssm.check): computed once per process
    and number format, the first time with transformers' import (several seconds)."""

    def work(progress) -> dict:
        import torch

        from engine.ssm.check import TINY, mamba_vs_transformers

        out = mamba_vs_transformers(torch.float32 if dtype == "float32" else torch.float64)
        return {**out, "config": dict(TINY), "dtype": dtype}

    return cached(("ch16", "mamba_check", dtype), work, t("ch16.mamba_checking"))


def mamba_metrics(res: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ch16.mb_forward"), sci(res["vs_transformers_max_diff"]))
    c2.metric(t("ch16.mb_grad"), sci(res["grad_vs_transformers_max_diff"]), help=t("ch16.mb_grad_help"))
    c3.metric(t("ch16.mb_step"), sci(res["step_vs_forward_max_diff"]), help=t("ch16.mb_step_help"))
    rows = [
        [t("ch16.mb_row_hidden"), sci(res["vs_transformers_max_diff"])],
        [t("ch16.mb_row_grad"), sci(res["grad_vs_transformers_max_diff"])],
        [t("ch16.mb_row_lm"), sci(res["vs_transformers_lm_logits_max_diff"])],
        [t("ch16.mb_row_scans"), sci(res["model_parallel_vs_sequential_max_diff"])],
        [t("ch16.mb_row_step"), sci(res["step_vs_forward_max_diff"])],
    ]
    if "pure_float64_vs_transformers_max_diff" in res:
        rows.append([t("ch16.mb_row_pure64"), sci(res["pure_float64_vs_transformers_max_diff"])])
    charts.table(rows, [t("ch16.col_comparison"), t("ch16.col_max_diff")])
    cfg = res.get("config", {})
    path = res.get("hf_path", {})
    st.caption(
        t(
            "ch16.mb_caption",
            d_model=cfg.get("d_model", "—"),
            layers=cfg.get("n_layer", "—"),
            n=cfg.get("d_state", "—"),
            params=f"{res.get('n_parameters', 0):,}",
            grads=res.get("n_grads_compared", "—"),
            path=t("ch16.mb_path_torch") if path.get("torch_fallback") else t("ch16.mb_path_kernels"),
            state=size(res.get("state_bytes")),
        )
    )
    if res.get("hf_casts"):
        st.caption(t("ch16.mb_casts"))


def defect_diff(defect: int) -> str:
    """The defect as a unified-diff fragment: the fixed lines (-) and the lines as printed (+)."""
    from engine.ssm.book165 import DEFECTS

    _, good, bad = DEFECTS[defect]
    minus = "\n".join("- " + line for line in good.rstrip("\n").split("\n") if line.strip())
    plus = "\n".join("+ " + line for line in bad.rstrip("\n").split("\n") if line.strip())
    return f"{minus}\n{plus}"


def book_view(dtype: str) -> dict:
    import torch

    from engine.ssm.book165 import run_book_code

    work = lambda p: run_book_code(dtype=torch.float32 if dtype == "float32" else torch.float64).as_dict()  # noqa: E731
    return cached(("ch16", "book", dtype), work, t("ch16.computing"))


def stage_label(stage: str) -> str:
    return maybe(f"ch16.stage_{stage.replace(' ', '_')}", stage)


def show_book(run: dict) -> None:
    """The code as printed, each defect alone (its diff and the error really raised), and the fixed code's result."""
    from engine.ssm.book165 import BOOK_CODE

    first = run["as_printed"]
    st.markdown(t("ch16.book_as_printed", error=f"{first['error_type']}: {first['error']}", line=first["line"] or "—"))
    with st.expander(t("ch16.book_code_title")):
        st.code(BOOK_CODE, language="python", line_numbers=True)
    rows = []
    for d in run["defects"]:
        k = d["defect"]
        with st.container(border=True):
            st.markdown(f"**{t('ch16.book_defect', k=k)}** · {t(f'ch16.defect_{k}')}")
            st.code(defect_diff(k), language="diff")
            if d["error_type"]:  # the error the code raised, as Python printed it (a result here, not a page error)
                st.markdown(f"🐞 `{d['error_type']}: {d['error']}`")
            note = book_note(d, run["einops_available"])
            if note:
                st.caption(note)
        if d["error_type"]:
            error = f"{d['error_type']}: {d['error']}"
        else:
            error = "—" if d["stage"] == "not run" else t("ch16.book_no_error")
        rows.append([str(k), t(f"ch16.defect_{k}"), stage_label(d["stage"]), error, str(d["line"] or "—")])
    cols = [t("ch16.col_defect"), t("ch16.col_what"), t("ch16.col_stage"), t("ch16.col_error"), t("ch16.col_line")]
    charts.table(rows, cols)
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ch16.book_block_diff"), sci(run["fixed_vs_ours_max_diff"]))
    c2.metric(t("ch16.book_lm_diff"), sci(run["fixed_lm_vs_ours_max_diff"]))
    c3.metric(t("ch16.book_alog_diff"), sci(run["a_log_max_diff"]))
    variant = t("ch16.book_variant_einops") if run["fixed_variant"] == "einops" else t("ch16.book_variant_torch")
    st.caption(t("ch16.book_fixed_caption", variant=variant, dtype=run["dtype"]))


def book_note(defect: dict, einops: bool) -> str:
    """Why a defect could not be shown here, or where it was shown (a translated sentence; "" when nothing to add)."""
    k = defect["defect"]
    if defect["stage"] == "not run":
        return maybe(f"ch16.book_not_run_{k}", "")
    if defect["note"] and not einops and defect["stage"] == "run":
        return t("ch16.book_torch_note")
    return ""


# -- 16.1 why: the bench -----------------------------------------------------------------------------------------------
ARCH_ORDER = ("transformer", "mamba", "mamba_parallel", "mamba_sequential")


def arch_label(arch: str) -> str:
    return maybe(f"ch16.arch_{arch}", arch)


def _series(rows: list[dict], x: str, y: str) -> dict[str, tuple[list, list]]:
    """{arch: (xs, ys)} sorted by x, finite values only, archs in a fixed order (the colours stay put)."""
    out: dict[str, tuple[list, list]] = {}
    for arch in sorted({r["arch"] for r in rows}, key=lambda a: ARCH_ORDER.index(a) if a in ARCH_ORDER else 99):
        pts = sorted((r[x], r[y]) for r in rows if r["arch"] == arch and isinstance(r.get(y), int | float))
        pts = [(a, b) for a, b in pts if math.isfinite(b)]
        out[arch] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def _lines(where, rows: list[dict], x: str, y: str, title: str, y_title: str, log_y: bool = False) -> None:
    fig = charts.axes(title, t("ch16.axis_context"), y_title, log_x=True, log_y=log_y)
    for arch, (xs, ys) in _series(rows, x, y).items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=arch_label(arch)))
    fig.update_layout(legend_title_text=t("ch16.legend_model"))
    charts.show(where, fig)


def show_bench(data: dict) -> None:
    """Generation (ms per token and the bytes kept) and one training step, per context length."""
    decode, train = data.get("decode") or [], data.get("train_step") or []
    if decode:
        c1, c2 = st.columns(2)
        _lines(c1, decode, "length", "ms_per_token", t("ch16.bench_decode_title"), t("ch16.axis_ms_token"))
        _lines(c2, decode, "length", "state_bytes", t("ch16.bench_state_title"), t("ch16.axis_bytes"), log_y=True)
    if train:
        _lines(st, train, "length", "ms", t("ch16.bench_train_title"), t("ch16.axis_ms_step"), log_y=True)
    rows = [
        [
            arch_label(r["arch"]),
            f"{r['length']:,}",
            fmt(r["ms_per_token"], 2),
            f"{r['state_bytes']:,}",
            size(r["state_bytes"]),
        ]
        for r in sorted(decode, key=lambda r: (r["length"], r["arch"]))
    ]
    if rows:
        cols = [t("ch16.col_model"), t("ch16.col_context"), t("ch16.col_ms_token"), t("ch16.col_bytes")]
        charts.table(rows, [*cols, t("ch16.col_size")])
    params = data.get("params") or {}
    if params:
        st.caption(
            t(
                "ch16.bench_params",
                mamba=f"{params.get('mamba', 0):,}",
                transformer=f"{params.get('transformer', 0):,}",
                seconds=fmt(data.get("seconds"), 0),
            )
        )


def bench_rows_view(rows: list[dict]) -> dict:
    """A bench that was stopped halfway: its finished rows in the shape `show_bench` draws."""
    return {
        "decode": [r for r in rows if r.get("kind") == "decode"],
        "train_step": [r for r in rows if r.get("kind") == "train_step"],
    }


def live_bench(length: int, progress, on_row, should_stop) -> dict:
    """One context length measured now: generation for both models, one training step for each way of scanning."""
    from engine.ssm.bench import BenchConfig, run_bench

    cfg = BenchConfig(lengths=(length,), repeats=5, train_repeats=2)
    return run_bench(cfg, progress, on_row, should_stop).to_json()


def same_bytes(live: dict, shipped: dict | None) -> None:
    """The state bytes measured now against the shipped ones at the same length: shapes, not time, so equal."""
    if not shipped:
        return
    ship = {(r["arch"], r["length"]): r["state_bytes"] for r in shipped.get("decode") or []}
    for r in live.get("decode") or []:
        other = ship.get((r["arch"], r["length"]))
        if other is not None:
            key = "ch16.bench_same" if other == r["state_bytes"] else "ch16.bench_differs"
            st.caption(t(key, model=arch_label(r["arch"]), length=f"{r['length']:,}", bytes=f"{r['state_bytes']:,}"))


# -- live training: the synthetic tasks -----------------------------------------------------------------------------
# Settings a test (or a slow machine) may shrink: merged into the page's TrainConfig after the widgets' values.
TRAIN_OVERRIDES: dict = {}


def task_label(task: str) -> str:
    return maybe(f"ch16.task_{task}", task)


def train_config(task: str, steps: int):
    """The chapter's configuration for `task` (engine.ssm.train.task_config) with the learner's step count and the
    page's time limit."""
    from engine.ssm.train import task_config

    return task_config(task, **{"steps": steps, "max_seconds": float(TRAIN_SECONDS), **TRAIN_OVERRIDES})


def default_steps(task: str) -> int:
    from engine.ssm.train import TASK_DEFAULTS

    return int(TASK_DEFAULTS.get(task, {}).get("steps", 1000))


def results_of(data) -> dict[str, dict]:
    """{arch: result dict} from a shipped file's data (a list of results, {"results": [...]}, or {arch: result})."""
    if not data:
        return {}
    if isinstance(data, dict) and "results" in data:
        data = data["results"]
    if isinstance(data, list):
        return {r["arch"]: r for r in data if isinstance(r, dict) and "arch" in r}
    return {k: v for k, v in data.items() if isinstance(v, dict) and "curve" in v}


def by_length(result: dict) -> list[tuple[int, float]]:
    acc = result.get("accuracy_by_length") or {}
    return sorted((int(k), v) for k, v in acc.items() if isinstance(v, int | float))


def loss_chart(where, results: dict[str, dict], partial: dict[str, list[dict]]) -> None:
    """Loss per step for each model (a stopped run's finished rows drawn dashed)."""
    fig = charts.axes(t("ch16.loss_title"), t("ch16.axis_train_step"), t("ch16.axis_loss"), log_y=True)
    for arch in ("mamba", "transformer"):
        curve = (results.get(arch) or {}).get("curve") or []
        dash = None
        if not curve and partial.get(arch):
            curve, dash = partial[arch], "dash"
        pts = [(r["step"], r["loss"]) for r in curve if isinstance(r.get("loss"), int | float) and r["loss"] > 0]
        if pts:
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    mode="lines",
                    name=model_label(arch),
                    line={"color": MODEL_COLORS[arch], "dash": dash},
                )
            )
    fig.update_layout(legend_title_text=t("ch16.legend_model"))
    charts.show(where, fig)


def accuracy_chart(where, results: dict[str, dict]) -> None:
    """Token accuracy per evaluation length; the trained length marked."""
    fig = charts.axes(t("ch16.acc_title"), t("ch16.axis_eval_length"), t("ch16.axis_accuracy"), log_x=True)
    trained = None
    for arch in ("mamba", "transformer"):
        res = results.get(arch)
        if not res:
            continue
        pts = by_length(res)
        trained = trained or res.get("length")
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                mode="lines+markers",
                name=model_label(arch),
                line={"color": MODEL_COLORS[arch]},
            )
        )
    if trained:
        # a shape on a log axis takes log10 of the value (x=64 would put the line at 10^64 and squash the data)
        fig.add_vline(x=math.log10(trained), line_dash="dot", annotation_text=t("ch16.trained_here"))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    fig.update_layout(legend_title_text=t("ch16.legend_model"))
    charts.show(where, fig)


def results_table(results: dict[str, dict]) -> None:
    lengths = sorted({n for r in results.values() for n, _ in by_length(r)})
    rows = []
    for arch in ("mamba", "transformer"):
        r = results.get(arch)
        if not r:
            continue
        acc = dict(by_length(r))
        status = maybe(f"ch16.status_{r.get('status')}", str(r.get("status")))
        if r.get("time_limited"):
            status += " ⏱"
        rows.append(
            [model_label(arch), f"{r.get('params', 0):,}", str(r.get("steps", "—")), fmt(r.get("seconds"), 1), status]
            + [pct(acc.get(n)) for n in lengths]
        )
    if not rows:
        return
    trained = next(iter(results.values())).get("length")
    cols = [t("ch16.col_model"), t("ch16.col_params"), t("ch16.col_steps"), t("ch16.col_seconds"), t("ch16.col_status")]
    cols += [t("ch16.col_acc_at", n=f"{n:,}") + (" ★" if n == trained else "") for n in lengths]
    charts.table(rows, cols)
    st.caption(t("ch16.acc_caption", length=trained or "—"))


TRAIN_SECONDS = 90  # a page run trains at most this long, then is evaluated as it is (engine: max_seconds)


def train_one(arch: str, cfg, progress, on_row, should_stop) -> dict:
    """One model trained on the page's task (engine.ssm.train.train_one) as a plain dict."""
    from engine.ssm.train import train_one as run

    return run(arch, cfg, progress, on_row, should_stop).to_json()


def shipped_mamba(data: dict, dtype: str) -> dict | None:
    """The Mamba-vs-transformers part of the shipped ssm-check report for one number format."""
    report = data if data.get("dtype") == dtype else data.get(dtype)
    if not isinstance(report, dict):
        return None
    mamba = (report.get("details") or {}).get("mamba")
    if not mamba:
        return None
    from engine.ssm.check import TINY

    return {**mamba, "config": dict(TINY), "dtype": dtype}
