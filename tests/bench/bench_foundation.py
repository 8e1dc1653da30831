"""Foundation benchmarks: warm model loads, server tokens/s, tokenizing 10k characters, a 64-token heatmap.

Run through `python -m tests.bench.run_bench` (make bench). Goals come from README/DESIGN.md: a warm load well
under 2 s, ≥ 40 tok/s from the llama.cpp server on SmolLM2-135M (44 measured on 2 cores), ≤ 1 s for the
interactive tokenizer and heatmap demos. The conversion cache is used as it is (a missing one is built once,
untimed); nothing here clears it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import yaml

from tests.bench.rows import bench_row

BENCH = "foundation"
ROOT = Path(__file__).resolve().parents[2]

LOAD_GOAL_S = 2.0
TOKS_GOAL = 40.0
TOKS_REFERENCE = 44.0  # DESIGN.md §4, llama.cpp server on SmolLM2-135M, 2 cores
INTERACTIVE_GOAL_S = 1.0
NEW_TOKENS = 128
RUNS = 3
CHAT_PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a long, detailed story about a robot who learns to paint. Use many paragraphs."},
]


def _row(metric: str, value: float, unit: str, goal: str | None = None, ok: bool | None = None, **extra) -> dict:
    return bench_row(BENCH, metric, value, unit, goal, ok, **extra)


def _timed(fn, runs: int = RUNS) -> tuple[float, object]:
    """Median wall time of `runs` calls (after the caller's warm-up) and the last result."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_loads() -> list[dict]:
    from engine.models.loading import converted_dir, load_causal_lm, load_seconds
    from engine.models.registry import ROLES

    rows = []
    # Library imports are process start-up, paid once per process whichever model comes first: timed on their own
    # so that each warm load below is the model's alone.
    start = time.perf_counter()
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    rows.append(_row("import transformers + sentence_transformers (per process)", time.perf_counter() - start, "s"))
    for role in ("chat", "base-ko", "embed"):
        if ROLES[role].kind == "causal-lm" and not (converted_dir(role) / "config.json").exists():
            load_causal_lm(role)  # builds the conversion cache once; the warm load below is what is measured
        seconds = load_seconds(role)
        rows.append(_row(f"warm load [{role}]", seconds, "s", f"≤ {LOAD_GOAL_S:g} s", seconds <= LOAD_GOAL_S))
    return rows


def bench_server() -> list[dict]:
    from engine.models.loading import load_tokenizer
    from engine.serving import ensure_server
    from engine.serving.client import RESTART_MARK, stream_chat

    ensure_server()  # start-up is not part of the rate
    tokenizer = load_tokenizer("chat")
    list(stream_chat(CHAT_PROMPT, max_tokens=8, temperature=0.0, seed=0))  # warm-up: prompt cache, page-in

    rates, counts, first_token = [], [], []
    for _ in range(RUNS):
        pieces, first = [], None
        start = time.perf_counter()
        for piece in stream_chat(CHAT_PROMPT, max_tokens=NEW_TOKENS, temperature=0.0, seed=0):
            if piece == RESTART_MARK:
                continue
            if first is None:
                first = time.perf_counter() - start
            pieces.append(piece)
        elapsed = time.perf_counter() - start
        # stream_chat yields text only (no usage), so count the answer with the model's own tokenizer
        n = len(tokenizer("".join(pieces), add_special_tokens=False)["input_ids"])
        rates.append(n / elapsed)
        counts.append(n)
        first_token.append(first or elapsed)
    rate = statistics.median(rates)
    return [
        _row(
            "server tokens/s (stream_chat, 128 new, T=0, median of 3)",
            rate,
            "tok/s",
            f"≥ {TOKS_GOAL:g} tok/s",
            rate >= TOKS_GOAL,
            ours=round(rate, 2),
            reference=TOKS_REFERENCE,
            ratio=round(rate / TOKS_REFERENCE, 3),
            tokens=counts,
        ),
        _row("server time to first token (median of 3)", statistics.median(first_token), "s"),
    ]


def _text_10k() -> str:
    pairs = yaml.safe_load((ROOT / "assets" / "parallel_ko_en.yaml").read_text(encoding="utf-8"))
    block = "\n".join(f"{p['ko']} {p['en']}" for p in pairs)
    return (block + "\n") * (10_000 // (len(block) + 1) + 1)


def bench_tokenizers() -> list[dict]:
    from engine.lm.tokenization import compare_tokenizers, load_tokenizers

    text = _text_10k()[:10_000]
    tokenizers = load_tokenizers()
    compare_tokenizers(text, tokenizers)  # warm-up
    seconds, (results, _) = _timed(lambda: compare_tokenizers(text, tokenizers))
    rows = [
        _row(
            "tokenize 10k chars, all four tokenizers (median of 3)",
            seconds,
            "s",
            f"≤ {INTERACTIVE_GOAL_S:g} s",
            seconds <= INTERACTIVE_GOAL_S,
        )
    ]
    rows += [_row(f"tokenize 10k chars [{r.name}]", r.seconds, "s", tokens=r.count) for r in results]
    return rows


def bench_heatmap() -> list[dict]:
    from engine.lm.attention_maps import model_attention
    from engine.models.loading import load_causal_lm

    rows = []
    text = _text_10k()
    for role in ("base-ko", "chat"):
        lm = load_causal_lm(role)
        # a text of exactly 64 tokens for this tokenizer (special tokens included, as the page sends it)
        ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        n_special = len(lm.tokenizer("x", add_special_tokens=True)["input_ids"]) - len(
            lm.tokenizer("x", add_special_tokens=False)["input_ids"]
        )
        snippet = lm.tokenizer.decode(ids[: 64 - n_special])
        model_attention(lm, snippet, layer=0, head=None)  # warm-up
        seconds, am = _timed(lambda lm=lm, s=snippet: model_attention(lm, s, layer=0, head=None))
        rows.append(
            _row(
                f"attention heatmap, {len(am.tokens)} tokens [{role}] (median of 3)",
                seconds,
                "s",
                f"≤ {INTERACTIVE_GOAL_S:g} s",
                seconds <= INTERACTIVE_GOAL_S,
            )
        )
    return rows


def run() -> list[dict]:
    return [*bench_loads(), *bench_server(), *bench_tokenizers(), *bench_heatmap()]
