"""Chapter 9 benchmarks: the `instruct` model's tokens/s through the project's path vs raw llama.cpp in the same run,
and the RAG goals on the held-out Korean questions (cited source in the top 3, key fact stated, grounded, first
token for a 5-passage prompt).

Run through `python -m tests.bench.run_bench rag` (make bench). Goals from issue 19: top-3 source ≥ .92, key fact
≥ .85, grounded ≥ .90, first token ≤ 1.5 s; DESIGN.md §6 measured 41 tok/s for raw llama.cpp on 2 cores.
"""

from __future__ import annotations

import statistics
import time

from tests.bench.rows import bench_row

BENCH = "rag"
NEW_TOKENS = 128
RUNS = 3
PROMPT = [
    {"role": "system", "content": "당신은 친절한 한국어 조수입니다."},
    {"role": "user", "content": "대한민국 헌법의 역사를 여러 문단으로 자세히 설명해 주세요."},
]


def _row(metric: str, value: float, unit: str, goal: str | None = None, ok: bool | None = None, **extra) -> dict:
    return bench_row(BENCH, metric, value, unit, goal, ok, **extra)


def _rate(stream, count) -> tuple[float, float]:
    """(tokens/s, first-token seconds) of one streamed answer; tokens counted by the model's own tokenizer."""
    pieces, first = [], None
    start = time.perf_counter()
    for piece in stream:
        if first is None:
            first = time.perf_counter() - start
        pieces.append(piece)
    elapsed = time.perf_counter() - start
    return count("".join(pieces)) / elapsed, first or elapsed


def bench_instruct_tokens() -> list[dict]:
    import llama_cpp

    from engine.core.config import get_settings
    from engine.models.registry import resolve
    from engine.serving import ensure_server
    from engine.serving.client import RESTART_MARK, stream_chat

    path = str(resolve("instruct").gguf_path())
    s = get_settings()
    raw = llama_cpp.Llama(path, n_ctx=s.server_ctx, n_threads=s.server_threads, n_batch=512, verbose=False)

    def count(text: str) -> int:
        return len(raw.tokenize(text.encode(), add_bos=False, special=True))

    def ours():
        return (
            p
            for p in stream_chat(PROMPT, max_tokens=NEW_TOKENS, temperature=0.0, seed=0, role="instruct")
            if p != RESTART_MARK
        )

    def reference():
        out = raw.create_chat_completion(PROMPT, max_tokens=NEW_TOKENS, temperature=0.0, seed=0, stream=True)
        return (c["choices"][0]["delta"].get("content") or "" for c in out)

    ensure_server(role="instruct")  # start-up is not part of the rate
    list(ours())
    list(reference())  # warm-up of both
    ours_runs = [_rate(ours(), count) for _ in range(RUNS)]
    ref_runs = [_rate(reference(), count) for _ in range(RUNS)]
    rate, ref = statistics.median(r for r, _ in ours_runs), statistics.median(r for r, _ in ref_runs)
    return [
        _row(
            "instruct tokens/s: server via engine.serving vs raw llama.cpp in-process (128 new, T=0, median of 3)",
            rate,
            "tok/s",
            ours=round(rate, 2),
            reference=round(ref, 2),
            ratio=round(rate / ref, 3),
        ),
        _row("instruct first token via engine.serving (median of 3)", statistics.median(f for _, f in ours_runs), "s"),
    ]


def run() -> list[dict]:
    rows = bench_instruct_tokens()
    try:
        from tests.bench.bench_rag_quality import rag_quality_rows
    except ImportError:
        return rows
    return rows + rag_quality_rows()
