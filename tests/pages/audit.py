"""The Korean audit: what a learner reads in a page's charts and tables, checked for English and garbled values.

Used by the smoke test on every Korean page run (no extra page runs), and from the shell for one page:

    .venv/bin/python -m tests.pages.audit pages/02_transformer.py [ko|en]

Reads what the page sent to the browser: every plotly figure's spec (title, axis titles, legend title, trace
names, annotations, colour-bar titles, tick texts) and every table (headers and cells). Technical identifiers
(model names, units such as tok/s or MiB, metric names such as recall@10) are in ALLOW, a short list that is
reviewed like code: a plain word there needs a reason in its comment.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# Words that stay English on a Korean page: identifiers a learner types or meets in code and papers.
_ALLOW = """
    # units and rates
    ms tok MiB GiB GB MB KB kB B s it
    # metrics and their short names as written in papers and libraries
    mrr ndcg MRR nDCG p KL softmax logit logits top_k top_p cos
    # library and tokenizer names, model families
    pipeline Trainer Kiwi MiniLM SmolLM Gemma Qwen BERT GPT WordPiece
    SentencePiece hnswlib faiss numpy torch bm25 rank_bm25 llama cpp vLLM
    transformers Chroma Qdrant LanceDB Pinecone pgvector Instruct
    # algorithm identifiers
    HNSW IVF PQ RoPE ALiBi LoRA QLoRA GPTQ AWQ RTN ZeRO SDPA MLM CLM
    BPE DPO PPO SFT RLHF TF-IDF IDF TF BoW RRF KV FP INT
    """
ALLOW = {w for line in _ALLOW.splitlines() if not line.strip().startswith("#") for w in line.split()}
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
HANGUL = re.compile(r"[\uac00-\ud7a3]")
CALL = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\(")  # `count(` in `count(*)`: code, not a word


@dataclass(frozen=True)
class Finding:
    where: str  # "chart 3 · xaxis.title" or "table 2 · header"
    text: str


def english_words(text: str) -> list[str]:
    """Plain-English words in a label: letters only, not an allowed identifier, not an acronym or a camel-case
    name (LoRA, SmolLM2), not part of a token with digits (recall@10, Q4_K_M), not a function called in code
    (`count(*)`: the column name SQLite gives a query's result)."""
    words = []
    text = CALL.sub("(", str(text))
    for token in re.split(r"[\s/()\[\],:;·=+|<>{}\"]+", str(text)):
        if not token or any(ch.isdigit() for ch in token) or "_" in token or "@" in token or "." in token:
            continue
        for w in WORD.findall(token):
            w = w.strip("'’-")
            if len(w) < 2 or w in ALLOW or w.lower() in ALLOW:
                continue
            if w.isupper() or (w[0].isupper() and any(c.isupper() for c in w[1:])) or any(c.isupper() for c in w[1:]):
                continue  # acronym or camel-case identifier
            words.append(w.lower())
    return words


def _text(value) -> str:
    if isinstance(value, dict):
        return str(value.get("text") or "")
    return "" if value is None else str(value)


def chart_labels(spec: dict) -> list[tuple[str, str]]:
    """(place, text) for every label a learner reads in one plotly figure spec."""
    layout = spec.get("layout", {})
    out = [("title", _text(layout.get("title")))]
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            out.append((f"{name}.title", _text(axis.get("title"))))
            out += [(f"{name}.ticktext", str(x)) for x in axis.get("ticktext") or []]
    legend = layout.get("legend") or {}
    out.append(("legend.title", _text(legend.get("title"))))
    out += [("annotation", _text(a)) for a in layout.get("annotations") or []]
    for trace in spec.get("data", []):
        if trace.get("showlegend", True) is not False:
            out.append(("trace.name", str(trace.get("name") or "")))
        out.append(("colorbar.title", _text((trace.get("colorbar") or {}).get("title"))))
    return [(w, x) for w, x in out if x]


def garbled(value) -> bool:
    """A cell a learner cannot read: a replacement character, or a missing value shown as None/NaN."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    text = str(value)
    return "\ufffd" in text or text in {"None", "nan", "NaN"}


def audit(at) -> tuple[list[Finding], list[Finding]]:
    """(English labels, garbled cells) on a page an AppTest has run."""
    english: list[Finding] = []
    bad: list[Finding] = []
    for i, chart in enumerate(at.get("plotly_chart")):
        for place, text in chart_labels(json.loads(chart.proto.spec)):
            english += [Finding(f"chart {i} · {place}", f"{w} ← {text!r}") for w in english_words(text)]
            if "\ufffd" in text:
                bad.append(Finding(f"chart {i} · {place}", text))
    tables = [x.value for x in at.dataframe] + [x.value for x in at.table]
    for i, frame in enumerate(tables):
        if [str(c) for c in frame.columns] == ["0"]:  # one unnamed column: rows given as a frame's column names
            bad.append(Finding(f"table {i} · header", "one unnamed column (a table drawn from its column names?)"))
        for col in frame.columns:
            english += [Finding(f"table {i} · header", f"{w} ← {col!r}") for w in english_words(col)]
        for col in frame.columns:
            for row, value in enumerate(frame[col].tolist()):
                if garbled(value):
                    bad.append(Finding(f"table {i} · {col!r} row {row}", repr(value)))
    return english, bad


def english_defaults(at) -> list[Finding]:
    """Default texts in text boxes that carry no Hangul on a Korean page (an English example sentence)."""
    boxes = list(at.text_input) + list(at.text_area)
    return [
        Finding(f"text box {b.label!r}", str(b.value)[:80])
        for b in boxes
        if b.value and WORD.search(str(b.value)) and not HANGUL.search(str(b.value)) and english_words(b.value)
    ]


def main(path: str, lang: str = "ko") -> int:
    from streamlit.testing.v1 import AppTest

    import ui.i18n

    ui.i18n.DEFAULT_LANG = lang
    at = AppTest.from_file(str(Path(path).resolve()), default_timeout=600)
    at.session_state["lang"] = lang
    at.run()
    for e in at.exception:
        print("EXCEPTION", e.value)
    english, bad = audit(at)
    defaults = english_defaults(at)
    for f in english:
        print("english ", f.where, "·", f.text)
    for f in bad:
        print("garbled ", f.where, "·", f.text)
    for f in defaults:
        print("default ", f.where, "·", f.text)
    words = sorted({f.text.split(" ← ")[0] for f in english})
    print(f"{path}: {len(words)} distinct English words {words}, {len(bad)} garbled cells, {len(defaults)} defaults")
    return 1 if (english or bad or defaults) else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
