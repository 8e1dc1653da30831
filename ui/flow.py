"""Chapter 2, "one sentence through the transformer": tokens → embeddings and RoPE → attention → MLP → the residual
stream → logits → the next token, on the packaged `chat` model, with one selected token highlighted in every view.

The selected token lives in st.session_state["flow_pos"] (the token chips are an st.pills bound to it). Every chart
that shows tokens is drawn with on_select="rerun" and carries the token position in its points' customdata; at the
top of the next run a clicked point moves "flow_pos", before any widget is drawn. The chart keys end in the current
position, so once a click has moved the selection every chart starts with a fresh (empty) selection: a stale click
can never pull the selection back.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from engine.lm import flow_layer, flow_pass, logit_lens
from engine.lm.flow import MAX_CHARS, N_DIMS, TOP_NEURONS
from ui import charts
from ui.cache import causal_lm
from ui.i18n import LANGS, lang, strings, t
from ui.layout import friendly_errors, notice, quiz, section_header, truncation_note
from ui.state import param

KEY_TEXT, KEY_LAYER, KEY_HEAD, KEY_POS = "flow_text", "flow_layer", "flow_head", "flow_pos"
CHARTS = ("emb", "rope", "att", "row", "block", "stream")  # the charts whose clicks select a token
# Defaults that tell a story on each language's example: in layer 18, head 6 the last Korean token looks ~90% at
# the earlier "서" (the model copies it); in layer 17, head 5 the last English token looks at " Seoul".
DEFAULT_VIEW = {"ko": (18, 6), "en": (17, 5)}
SELECTED, OTHER, PLAIN = "#d62728", "#6baed6", "#bdbdbd"
SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
HEIGHT = 340


# ---------------------------------------------------------------------------------------------------------
# cached engine calls: the pass per text, the block per (text, layer, head), the lens per (text, position)
# ---------------------------------------------------------------------------------------------------------


@st.cache_data(max_entries=8, show_spinner=False)
def _pass(_lm, text: str):
    return flow_pass(_lm, text)


@st.cache_data(max_entries=32, show_spinner=False)
def _block(_lm, _fp, text: str, layer: int, head: int | None):
    return flow_layer(_lm, _fp, layer, head)


@st.cache_data(max_entries=64, show_spinner=False)
def _lens(_lm, _fp, text: str, position: int):
    return logit_lens(_lm, _fp, position)


# ---------------------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------------------


def chart_key(name: str, pos: int) -> str:
    return f"flow_{name}_{pos}"


def clicked_position(states: dict, pos: int) -> int | None:
    """The token a chart click asks for: the first selected point, in any chart drawn for `pos`, that names
    another position in its customdata (the chart keys of this run's `pos`)."""
    for name in CHARTS:
        state = states.get(chart_key(name, pos)) or {}
        for point in (state.get("selection") or {}).get("points") or []:
            data = point.get("customdata")
            data = data[0] if isinstance(data, list | tuple) and data else data
            if isinstance(data, int | float) and int(data) != pos:
                return int(data)
    return None


def _select_position(text: str, n_tokens: int) -> int:
    """Seed, move (chart click, new text) and clamp the selected position before the chips are drawn."""
    param(KEY_POS, n_tokens - 1, int)
    state = st.session_state
    if state.get("_flow_text_seen", text) != text:
        state[KEY_POS] = n_tokens - 1  # a new sentence: start from the token whose next token is predicted
    state["_flow_text_seen"] = text
    clicked = clicked_position(state, state[KEY_POS]) if isinstance(state[KEY_POS], int) else None
    if clicked is not None:
        state[KEY_POS] = clicked
    if not isinstance(state[KEY_POS], int) or not 0 <= state[KEY_POS] < n_tokens:
        state[KEY_POS] = n_tokens - 1
    return state[KEY_POS]


def _language_defaults() -> None:
    """Switching the language swaps an untouched example (and its layer/head) for the other language's one."""
    examples = {code: strings()["ch2flow.default_text"][code] for code in LANGS}
    current = st.session_state.get(KEY_TEXT)
    if current in examples.values() and current != examples[lang()]:
        st.session_state[KEY_TEXT] = examples[lang()]
        st.session_state[KEY_LAYER], st.session_state[KEY_HEAD] = DEFAULT_VIEW[lang()]


# ---------------------------------------------------------------------------------------------------------
# figures (pure functions of engine results)
# ---------------------------------------------------------------------------------------------------------


def short_label(tok) -> str:
    """A compact tick label: "서₂" is the 2nd byte piece of 서; a whole token keeps its text."""
    return tok.char if tok.parts == 1 else tok.char + str(tok.part).translate(SUBSCRIPT)


def chip_labels(tokens) -> list[str]:
    """Short labels made distinct: st.pills stores its value as the option's label, so two chips reading "는₃"
    would be one option; a repeat gets zero-width spaces, which change the string and nothing a learner sees."""
    seen: dict[str, int] = {}
    out = []
    for tok in tokens:
        label = short_label(tok)
        out.append(label + "\u200b" * seen.get(label, 0))
        seen[label] = seen.get(label, 0) + 1
    return out


def _token_axis(fig: go.Figure, tokens, axis: str = "xaxis", **extra) -> None:
    """One tick per token (the highlighted one must always be labelled); long sentences get upright small labels
    on x, so 48 of them fit half a page without overlapping, and y labels are never turned."""
    dense = len(tokens) > 20
    spec = {"tickmode": "array", "tickvals": list(range(len(tokens))), "ticktext": [short_label(x) for x in tokens]}
    spec["tickangle"] = (-90 if dense else -45) if axis == "xaxis" else 0
    if dense:
        spec["tickfont"] = {"size": 10}
    fig.update_layout({axis: spec})
    fig.layout[axis].update(extra)


def _columns_click(fig: go.Figure) -> None:
    """Per-token bars: hovering or clicking anywhere in a token's column picks it (a bar of weight 0.001 is too
    thin to hit)."""
    fig.update_layout(hovermode="x")


def _base(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        clickmode="event+select",
    )
    return fig


def _outline(fig: go.Figure, x0, x1, y0, y1, color: str = SELECTED, width: int = 3) -> None:
    fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line={"color": color, "width": width})


def _click_line(fig: go.Figure, n: int, along: str, hover: list[str], at: float = 0) -> None:
    """Heatmap cells are not selectable in plotly, markers are: one invisible marker per token column (along "x")
    or row ("y") carries the position in its customdata, and hovermode along that axis makes a click anywhere in
    the column or row pick it. In that hovermode a heatmap's own label would name the cell in line with the marker,
    not the one under the cursor, so the heatmap has none and the marker's label describes the whole token.
    (A marker per cell keeps per-cell labels, but thousands of SVG markers slow every redraw.)"""
    idx, fixed = list(range(n)), [at] * n
    fig.add_trace(
        go.Scatter(
            x=idx if along == "x" else fixed,
            y=fixed if along == "x" else idx,
            customdata=idx,
            text=hover,
            mode="markers",
            marker={"opacity": 0, "size": 10},
            selected={"marker": {"opacity": 0}},
            unselected={"marker": {"opacity": 0}},
            hovertemplate="%{text}<extra></extra>",
            showlegend=False,
        )
    )
    fig.data[0].hoverinfo = "skip"
    fig.update_layout(hovermode=along)


def embedding_figure(fp, pos: int) -> go.Figure:
    T = len(fp.tokens)
    fig = go.Figure(go.Heatmap(z=fp.embed_dims, colorscale="RdBu", zmid=0.0))
    hover = [
        t("ch2flow.hover_emb", label=x.label, norm=n, dims=", ".join(f"{v:+.2f}" for v in row[:4]))
        for x, n, row in zip(fp.tokens, fp.embed_norms, fp.embed_dims, strict=True)
    ]
    _click_line(fig, T, "y", hover)
    _outline(fig, -0.5, N_DIMS - 0.5, pos - 0.5, pos + 0.5)
    _token_axis(fig, fp.tokens, "yaxis", autorange="reversed", title=t("ch2flow.axis_token"))
    fig.update_xaxes(title=t("ch2flow.axis_dim", n=N_DIMS, C=fp.hidden))
    fig.data[0].colorbar.title = t("ch2flow.value")
    return _base(fig, t("ch2flow.emb_title"), height=max(HEIGHT, 16 * T + 120))


def rope_figure(fp, block, pos: int) -> go.Figure:
    keys = list(range(pos + 1))
    labels = [fp.tokens[j].label for j in keys]
    fig = go.Figure()
    for name, values, color in (
        (t("ch2flow.before_rope"), block.scores_plain[pos], PLAIN),
        (t("ch2flow.after_rope"), block.scores_rope[pos], OTHER),
    ):
        fig.add_trace(
            go.Bar(
                x=keys,
                y=values,
                name=name,
                marker_color=color,
                customdata=keys,
                text=labels,
                hovertemplate="%{text}: %{y:.2f}<extra>" + name + "</extra>",
            )
        )
    fig.add_vrect(x0=pos - 0.5, x1=pos + 0.5, fillcolor=SELECTED, opacity=0.15, line_width=0)
    _token_axis(fig, fp.tokens[: pos + 1], title=t("ch2flow.axis_key"))
    fig.update_yaxes(title=t("ch2flow.axis_score"))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.35}, showlegend=True)
    _columns_click(fig)
    return _base(fig, t("ch2flow.rope_title", label=fp.tokens[pos].label))


def attention_figure(fp, block, pos: int) -> go.Figure:
    T = len(fp.tokens)
    fig = go.Figure(go.Heatmap(z=block.attention, colorscale="Blues", zmin=0, zmax=1))
    top = [max(range(i + 1), key=row.__getitem__) for i, row in enumerate(block.attention)]
    hover = [
        t("ch2flow.hover_att", q=fp.tokens[i].label, k=fp.tokens[j].label, w=block.attention[i][j])
        for i, j in enumerate(top)
    ]
    _click_line(fig, T, "y", hover)  # a click in a row selects that row's (query) token
    _outline(fig, -0.5, pos + 0.5, pos - 0.5, pos + 0.5)  # the selected token's row: where it looks
    _outline(fig, pos - 0.5, pos + 0.5, pos - 0.5, T - 0.5, color="#ff9896", width=2)  # its column: who looks at it
    _token_axis(fig, fp.tokens, title=t("ch2flow.axis_key"))
    _token_axis(fig, fp.tokens, "yaxis", autorange="reversed", title=t("ch2flow.axis_query"))
    fig.data[0].colorbar.title = t("ch2flow.weight")
    return _base(fig, t("ch2flow.att_title"), height=max(420, 14 * T + 160))


def attention_row_figure(fp, block, pos: int) -> go.Figure:
    keys = list(range(pos + 1))
    weights = block.attention[pos][: pos + 1]
    top = max(keys, key=lambda j: weights[j])
    fig = go.Figure(
        go.Bar(
            x=keys,
            y=weights,
            customdata=keys,
            text=[fp.tokens[j].label for j in keys],
            marker_color=[SELECTED if j == top else OTHER for j in keys],
            hovertemplate="%{text}: %{y:.3f}<extra></extra>",
        )
    )
    _token_axis(fig, fp.tokens[: pos + 1], title=t("ch2flow.axis_key"))
    fig.update_yaxes(title=t("ch2flow.axis_weight"), range=[0, 1])
    _columns_click(fig)
    return _base(fig, t("ch2flow.row_title", label=fp.tokens[pos].label))


def block_figure(fp, block, pos: int) -> go.Figure:
    T = len(fp.tokens)
    xs = list(range(T))
    text = [x.label for x in fp.tokens]
    fig = go.Figure()
    for name, values, color in (
        (t("ch2flow.attn_added"), block.attn_out, OTHER),
        (t("ch2flow.mlp_added"), block.mlp_out, "#fd8d3c"),
    ):
        fig.add_trace(
            go.Bar(
                x=xs, y=values, name=name, marker_color=color, customdata=xs, text=text, textposition="none",
                hovertemplate="%{text}: %{y:.1f}<extra>" + name + "</extra>",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=xs, y=block.stream_in, name=t("ch2flow.stream_in"), mode="lines+markers", customdata=xs, text=text,
            line={"color": "#525252"}, hovertemplate="%{text}: %{y:.1f}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_vrect(x0=pos - 0.5, x1=pos + 0.5, fillcolor=SELECTED, opacity=0.15, line_width=0)
    _token_axis(fig, fp.tokens, title=t("ch2flow.axis_token"))
    fig.update_yaxes(type="log", title=t("ch2flow.axis_norm_log"))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.45}, showlegend=True)
    _columns_click(fig)
    return _base(fig, t("ch2flow.block_title", layer=block.layer), height=HEIGHT + 60)


def neurons_figure(fp, block, pos: int) -> go.Figure:
    units = [f"#{u}" for u in block.top_neurons[pos]]
    values = block.top_values[pos]
    fig = go.Figure(
        go.Bar(
            x=units,
            y=values,
            marker_color=[OTHER if v >= 0 else "#fd8d3c" for v in values],
            hovertemplate="%{x}: %{y:+.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", title=t("ch2flow.axis_unit", n=fp.intermediate))
    fig.update_yaxes(title=t("ch2flow.axis_unit_value"))
    return _base(fig, t("ch2flow.neurons_title", label=fp.tokens[pos].label, k=TOP_NEURONS))


def stream_figure(fp, pos: int, layer: int) -> go.Figure:
    T, rows = len(fp.tokens), len(fp.stream_norms)
    z = [[math.log10(max(v, 1e-6)) for v in row] for row in fp.stream_norms]
    fig = go.Figure(go.Heatmap(z=z, colorscale="Viridis"))
    norms = fp.stream_norms
    hover = [
        t("ch2flow.hover_stream", label=x.label, first=norms[0][c], layer=layer, mid=norms[layer + 1][c],
          last=norms[-1][c])
        for c, x in enumerate(fp.tokens)
    ]  # fmt: skip
    _click_line(fig, T, "x", hover)
    _outline(fig, pos - 0.5, pos + 0.5, -0.5, rows - 0.5)
    _outline(fig, -0.5, T - 0.5, layer - 0.5, layer + 1.5, color="#252525", width=2)  # the block shown above
    _token_axis(fig, fp.tokens, title=t("ch2flow.axis_token"))
    fig.update_yaxes(autorange="reversed", title=t("ch2flow.axis_layer"))
    fig.data[0].colorbar.title = "log₁₀ ‖h‖"
    return _base(fig, t("ch2flow.stream_title"), height=HEIGHT + 140)


def lens_figure(fp, lens) -> go.Figure:
    layers = [r.layer for r in lens.rows]
    hover = [" · ".join(f"{g.label} {g.prob:.1%}" for g in r.guesses) for r in lens.rows]
    fig = go.Figure(
        go.Scatter(
            x=layers,
            y=[100 * r.final_prob for r in lens.rows],
            mode="lines+markers",
            text=hover,
            hovertemplate="%{x}: %{y:.1f}%<br>%{text}<extra></extra>",
            line={"color": SELECTED},
        )
    )
    fig.update_xaxes(title=t("ch2flow.axis_layer"))
    fig.update_yaxes(title=t("ch2flow.axis_final_prob"), range=[0, 100])
    return _base(fig, t("ch2flow.lens_title", label=fp.tokens[lens.position].label))


def guesses_figure(guesses, title: str) -> go.Figure:
    ys = [f"{i + 1}. {g.label}" for i, g in enumerate(guesses)]  # distinct even when two labels read the same
    fig = go.Figure(
        go.Bar(
            x=[100 * g.prob for g in guesses],
            y=ys,
            orientation="h",
            marker_color=[SELECTED if i == 0 else OTHER for i in range(len(guesses))],
            text=[f"{g.prob:.1%}" for g in guesses],
            textposition="auto",
            customdata=[g.logit for g in guesses],
            hovertemplate="%{y}: %{x:.1f}% · logit %{customdata:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category", title=t("ch2flow.axis_candidate"))
    fig.update_xaxes(title=t("ch2flow.axis_prob"))
    return _base(fig, title, height=80 + 30 * len(guesses))


# ---------------------------------------------------------------------------------------------------------
# the section
# ---------------------------------------------------------------------------------------------------------


def _show(where, fig: go.Figure, name: str, pos: int, select: bool = True) -> None:
    if select:
        charts.show(where, fig, key=chart_key(name, pos), on_select="rerun", selection_mode="points")
    else:
        charts.show(where, fig, key=f"flow_fig_{name}")


def _controls(lm) -> tuple[str, int, int | None]:
    cfg = lm.model.config
    layer0, head0 = DEFAULT_VIEW[lang()]
    param(KEY_LAYER, layer0, int)
    param(KEY_HEAD, head0, int)
    st.session_state[KEY_LAYER] = max(0, min(int(st.session_state[KEY_LAYER]), cfg.num_hidden_layers - 1))
    st.session_state[KEY_HEAD] = max(-1, min(int(st.session_state[KEY_HEAD]), cfg.num_attention_heads - 1))
    c1, c2, c3 = st.columns([3, 2, 1])
    c1.text_input(t("ch2flow.text"), key=KEY_TEXT, max_chars=MAX_CHARS, help=t("ch2flow.text_help"))
    c2.slider(t("ch2flow.layer"), 0, cfg.num_hidden_layers - 1, key=KEY_LAYER)
    c3.selectbox(
        t("ch2flow.head"),
        list(range(-1, cfg.num_attention_heads)),
        key=KEY_HEAD,
        format_func=lambda h: t("ch2flow.mean_heads") if h < 0 else str(h),
    )
    head = st.session_state[KEY_HEAD]
    return st.session_state[KEY_TEXT], st.session_state[KEY_LAYER], None if head < 0 else head


def flow_section(ch) -> None:
    """One sentence through the transformer, one token followed through every view."""
    section_header(ch, "flow")
    _language_defaults()
    param(KEY_TEXT, t("ch2flow.default_text"), str)
    with friendly_errors():
        lm = causal_lm("chat", t("common.loading_model"))
        text, layer, head = _controls(lm)
        fp = _pass(lm, text)
        pos = _select_position(text, len(fp.tokens))
        block = _block(lm, fp, text, layer, head)
        _tokens_view(fp, pos)
        _embedding_view(fp, block, pos)
        _attention_view(fp, block, pos)
        _mlp_view(fp, block, pos)
        _stream_view(lm, fp, text, pos, layer)
        _next_token_view(fp, pos)
        st.caption(t("common.produced_by", model=fp.model, device=lm.device, source=lm.resolved.source))
    notice("common.notice", t("ch2flow.notice"))
    quiz("02", "flow")


def _tokens_view(fp, pos: int) -> None:
    st.markdown("#### " + t("ch2flow.step_tokens", n=len(fp.tokens)))
    if fp.truncated_tokens or fp.truncated_chars:
        truncation_note(t("ch2flow.cut", limit=len(fp.tokens), n=fp.truncated_tokens))
    st.pills(
        t("ch2flow.pick"),
        list(range(len(fp.tokens))),
        key=KEY_POS,
        required=True,
        format_func=chip_labels(fp.tokens).__getitem__,
        help=t("ch2flow.pick_help"),
    )
    tok = fp.tokens[pos]
    piece = t("ch2flow.piece", part=tok.part, parts=tok.parts, char=tok.char, hex=tok.hex) if tok.hex else ""
    st.caption(t("ch2flow.selected", label=tok.label, pos=pos, id=tok.id, raw=tok.raw) + piece)


def _embedding_view(fp, block, pos: int) -> None:
    st.markdown("#### " + t("ch2flow.step_embed"))
    angles = block.rope_angles[pos]
    st.caption(
        t(
            "ch2flow.embed_caption",
            V=fp.vocab,
            C=fp.hidden,
            norm=fp.embed_norms[pos],
            pos=pos,
            first=angles[0],
            last=angles[-1],
            pairs=len(angles),
            theta=f"{fp.rope_theta:,.0f}",
            layer=block.layer,
        )
    )
    c1, c2 = st.columns(2)
    _show(c1, embedding_figure(fp, pos), "emb", pos)
    _show(c2, rope_figure(fp, block, pos), "rope", pos)


def _gqa_note(fp, block) -> str:
    if block.head is None:
        return t("ch2flow.gqa_mean", n=fp.n_heads, n_kv=fp.n_kv_heads)
    return t("ch2flow.head_kv", head=block.head, kv=block.kv_head, n=fp.n_heads, n_kv=fp.n_kv_heads)


def _attention_view(fp, block, pos: int) -> None:
    head = t("ch2flow.mean_heads") if block.head is None else t("ch2flow.head_n", head=block.head)
    st.markdown("#### " + t("ch2flow.step_attention", layer=block.layer, head=head))
    c1, c2 = st.columns([3, 2])
    _show(c1, attention_figure(fp, block, pos), "att", pos)
    _show(c2, attention_row_figure(fp, block, pos), "row", pos)
    st.caption(t("ch2flow.attention_caption") + " " + _gqa_note(fp, block))


def _mlp_view(fp, block, pos: int) -> None:
    st.markdown("#### " + t("ch2flow.step_mlp", layer=block.layer))
    c1, c2 = st.columns([3, 2])
    _show(c1, block_figure(fp, block, pos), "block", pos)
    _show(c2, neurons_figure(fp, block, pos), "neurons", pos, select=False)
    st.caption(
        t(
            "ch2flow.mlp_caption",
            label=fp.tokens[pos].label,
            h_in=block.stream_in[pos],
            h_mid=block.stream_mid[pos],
            h_out=block.stream_out[pos],
            share=block.active_share[pos],
            n=fp.intermediate,
        )
    )


def _stream_view(lm, fp, text: str, pos: int, layer: int) -> None:
    st.markdown("#### " + t("ch2flow.step_stream", n=fp.n_layers))
    lens = _lens(lm, fp, text, pos)
    c1, c2 = st.columns([3, 2])
    _show(c1, stream_figure(fp, pos, layer), "stream", pos)
    _show(c2, lens_figure(fp, lens), "lens", pos, select=False)
    with c2.expander(t("ch2flow.lens_table")):
        charts.table(
            [
                (r.layer, r.guesses[0].label, round(100 * r.guesses[0].prob, 1), round(100 * r.final_prob, 1))
                for r in lens.rows
            ],
            [t("ch2flow.col_layer"), t("ch2flow.col_top"), t("ch2flow.col_top_prob"), t("ch2flow.col_final_prob")],
            height=260,
        )
    first = next((r.layer for r in lens.rows if r.guesses[0].id == lens.final_id), fp.n_layers)
    st.caption(t("ch2flow.stream_caption", first=first, n=fp.n_layers))


def _next_token_view(fp, pos: int) -> None:
    last = len(fp.tokens) - 1
    st.markdown("#### " + t("ch2flow.step_next"))
    c1, c2 = st.columns(2)
    if pos != last:
        title = t("ch2flow.after_selected", label=fp.tokens[pos].label)
        _show(c1, guesses_figure(fp.next_tokens[pos], title), "next_selected", pos, select=False)
    title = t("ch2flow.after_last", label=fp.tokens[last].label)
    _show(c2 if pos != last else c1, guesses_figure(fp.next_tokens[last], title), "next_last", pos, select=False)
    best = fp.next_tokens[last][0]
    extra = len(fp.continuation) - 1
    more = t("ch2flow.finish", n=extra, text=fp.continuation_text) if extra else ""
    (st if pos != last else c2).success(t("ch2flow.next_is", token=best.label, prob=best.prob) + more, icon="➡️")
