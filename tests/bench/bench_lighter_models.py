"""Chapter 7 goals, measured (a benchmark, not a timed test): `make bench` collects `run()`.

- KV cache: greedy decoding with vs without the cache at 64 and 256 new tokens on `chat`; speed-up ≥ 4× at 256;
  the cache's measured bytes equal 2 · layers · kv_heads · head_dim · tokens · bytes exactly.
- Quantization: fp32 / int8 / NF4 / FP4 through bitsandbytes: NF4 footprint ≤ 35% of fp32; tokens/s and the
  perplexity change on the Korean and the English text reported for every precision.
- GPTQ and AWQ beat round-to-nearest on a real layer (held-out output error); distillation: the soft-label
  student beats the hard-label one on unseen essays within 60 s.

    .venv/bin/python -m tests.bench.bench_lighter_models      # prints the rows as JSON lines (several minutes)
"""

from __future__ import annotations

import json

BENCH = "lighter_models"
KV_COUNTS = (64, 256)
KV_GOAL = 4.0
NF4_GOAL = 0.35


def _row(bench: str, metric: str, value, unit: str, goal: str, ok: bool) -> dict:
    return {"bench": f"{BENCH}.{bench}", "metric": metric, "value": value, "unit": unit, "goal": goal, "ok": ok}


def bench_kv(lm) -> list[dict]:
    from engine.inference.kv_cache import kv_bench

    rows = []
    for r in kv_bench(lm, KV_COUNTS):
        goal_ok = r.speedup >= KV_GOAL if r.new_tokens == 256 else True
        rows += [
            _row(
                "kv_cache",
                f"speedup_at_{r.new_tokens}",
                r.speedup,
                "×",
                f">= {KV_GOAL}" if r.new_tokens == 256 else "reported",
                goal_ok,
            ),
            _row("kv_cache", f"with_cache_s_at_{r.new_tokens}", r.with_cache_s, "s", "reported", True),
            _row("kv_cache", f"without_cache_s_at_{r.new_tokens}", r.without_cache_s, "s", "reported", True),
            _row(
                "kv_cache",
                f"bytes_measured_vs_formula_at_{r.new_tokens}",
                [r.kv_bytes_measured, r.kv_bytes_formula],
                "bytes",
                "equal",
                r.kv_bytes_measured == r.kv_bytes_formula,
            ),
        ]
    return rows


def bench_quant() -> list[dict]:
    from engine.compression.quantization import quant_bench, relative_to

    results = quant_bench()
    rows = []
    for rel in relative_to(results):
        p = rel["precision"]
        rows += [
            _row("quant", f"{p}_bytes", round(rel["MB"] * 1e6), "bytes", "reported", True),
            _row(
                "quant",
                f"{p}_memory_vs_fp32",
                round(rel["memory_vs_fp32"], 4),
                "ratio",
                f"<= {NF4_GOAL}" if p == "nf4" else "reported",
                rel["memory_vs_fp32"] <= NF4_GOAL if p == "nf4" else True,
            ),
            _row("quant", f"{p}_tokens_per_s", rel["tokens_per_s"], "tok/s", "reported", True),
            _row("quant", f"{p}_perplexity_ko", rel["perplexity_ko"], "ppl", "reported", rel["perplexity_ko"] > 0),
            _row("quant", f"{p}_perplexity_en", rel["perplexity_en"], "ppl", "reported", rel["perplexity_en"] > 0),
            _row("quant", f"{p}_ppl_change_ko_pct", round(rel["ppl_ko_change_pct"], 2), "%", "reported", True),
            _row("quant", f"{p}_ppl_change_en_pct", round(rel["ppl_en_change_pct"], 2), "%", "reported", True),
        ]
    return rows


def bench_layer_quant(lm) -> list[dict]:
    from engine.compression.gptq_awq import calibration_texts, compare_methods, heldout_texts

    r = compare_methods(lm, calibration_texts(), heldout_texts(), layer=5, projection="q_proj", bits=4)
    e = r.errors
    return [
        _row("gptq_awq", "rtn_output_error_l5_q_proj_4bit", round(e["RTN"], 6), "relative", "baseline", True),
        _row(
            "gptq_awq",
            "gptq_output_error_l5_q_proj_4bit",
            round(e["GPTQ"], 6),
            "relative",
            "< RTN",
            e["GPTQ"] < e["RTN"],
        ),
        _row(
            "gptq_awq", "awq_output_error_l5_q_proj_4bit", round(e["AWQ"], 6), "relative", "< RTN", e["AWQ"] < e["RTN"]
        ),
    ]


def bench_distillation(lm) -> list[dict]:
    import time

    from engine.compression.distillation import distill

    start = time.perf_counter()
    r = distill(lm)
    seconds = time.perf_counter() - start
    soft, hard = r.final["soft"], r.final["hard"]
    return [
        _row(
            "distillation",
            "soft_vs_hard_heldout_accuracy",
            [round(soft.test_accuracy, 4), round(hard.test_accuracy, 4)],
            "accuracy",
            "soft > hard",
            soft.test_accuracy > hard.test_accuracy,
        ),
        _row(
            "distillation",
            "soft_vs_hard_agreement_with_teacher",
            [round(soft.test_agreement, 4), round(hard.test_agreement, 4)],
            "fraction",
            "soft > hard",
            soft.test_agreement > hard.test_agreement,
        ),
        _row(
            "distillation",
            "soft_vs_hard_heldout_nll",
            [round(soft.test_nll, 3), round(hard.test_nll, 3)],
            "nats",
            "soft < hard",
            soft.test_nll < hard.test_nll,
        ),
        _row("distillation", "teacher_heldout_accuracy", round(r.teacher_accuracy, 4), "accuracy", "reported", True),
        _row("distillation", "training_seconds", round(r.seconds, 2), "s", "<= 60", r.seconds <= 60),
        _row("distillation", "total_seconds_with_teacher_pass", round(seconds, 2), "s", "reported", True),
    ]


def run() -> list[dict]:
    from engine.models.loading import load_causal_lm

    lm = load_causal_lm("chat")
    return bench_kv(lm) + bench_quant() + bench_layer_quant(lm) + bench_distillation(lm)


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row, ensure_ascii=False), flush=True)
