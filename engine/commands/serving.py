"""Chapter 8 commands: serve-bench (load test), spec-bench, sdpa-bench, paged-waste, batch-sim.

python -m engine serve-bench --concurrency 1,4,8 --requests 16 --max-tokens 64 --json
python -m engine spec-bench --json
python -m engine sdpa-bench --lengths 256,1024,2048 --json
python -m engine paged-waste --trace ShareGPT --json
python -m engine batch-sim --measure --json
python -m engine serving-demo offline --save-precomputed   (the chapter 8 page's shipped results)
"""

from __future__ import annotations

import argparse
import sys

from engine.commands._common import emit_rows, progress_for
from engine.core.progress import Cancelled


def _ints(text: str) -> list[int]:
    from engine.core.textinput import InputError, parse_numbers

    try:
        return parse_numbers(text, int, name="values")
    except InputError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {exc}") from exc


def _progress(args):
    return progress_for(quiet=args.quiet)


def _threads(args) -> None:
    """--threads N: torch's intra-op threads for this CLI process only (on a busy 2-core machine one thread is
    often several times faster than two, because the two spin-wait for each other)."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def cmd_serve_bench(args) -> int:
    from engine.serving.load_test import run_load_test

    try:
        rows = run_load_test(
            args.concurrency,
            requests=args.requests,
            max_tokens=args.max_tokens,
            allow_remote=args.allow_remote,
            progress=_progress(args),
            on_level=lambda row: emit_rows([row], args.json, style="pairs"),
        )
    except (Cancelled, KeyboardInterrupt):
        print("stopped; the levels above are complete", file=sys.stderr)
        return 130
    return 0 if all(r["errors"] == 0 for r in rows) else 1


def cmd_spec_bench(args) -> int:
    _threads(args)
    from engine.inference.speculative import COPY_PROMPT, compare_methods
    from engine.models.loading import load_causal_lm

    lm = load_causal_lm("chat", _progress(args))
    rows = compare_methods(
        lm,
        args.prompt or COPY_PROMPT,
        max_new_tokens=args.max_tokens,
        k=args.k,
        exit_layers=args.exit_layers,
        repeats=args.repeats,
        progress=_progress(args),
    )
    for r in rows:
        r["text"] = r["text"][:120]
    emit_rows(rows, args.json, style="pairs")
    return 0 if all(r["same_as_plain"] for r in rows) else 1


def cmd_sdpa_bench(args) -> int:
    _threads(args)
    import torch

    from engine.inference.flash_attention import measure_sdpa_memory, time_sdpa_backends

    rows = time_sdpa_backends(
        args.lengths,
        heads=args.heads,
        D=args.head_dim,
        causal=not args.no_causal,
        repeats=args.repeats,
        include_scratch=not args.no_scratch,
        progress=_progress(args),
    )
    for r in rows:
        r.update(torch=torch.__version__, threads=torch.get_num_threads())
    emit_rows(rows, args.json, style="pairs")
    if args.memory:
        emit_rows(measure_sdpa_memory(max(args.lengths), heads=args.heads, D=args.head_dim), args.json, style="pairs")
    return 0


def cmd_paged_waste(args) -> int:
    from engine.inference.paged_attention import PAPER_FIG2, allocation_usage, synthetic_lengths

    reqs = synthetic_lengths(args.requests, args.trace, args.max_len, seed=args.seed)
    rows = allocation_usage(reqs, args.max_len, args.block_size)
    for r in rows:
        r.update(trace=f"{args.trace} (synthetic lengths)", requests=args.requests)
    rows += [
        {"policy": f"paper: {k}", "token_states_pct": v["token_states"], "waste_pct": 100 - v["token_states"]}
        for k, v in PAPER_FIG2.items()
    ]
    emit_rows(rows, args.json, style="pairs")
    return 0


def cmd_batch_sim(args) -> int:
    _threads(args)
    from engine.inference.batching import POLICIES, default_costs, make_workload, measure_costs, simulate

    if args.measure:
        from engine.models.loading import load_causal_lm

        cost = measure_costs(load_causal_lm("chat", _progress(args)), progress=_progress(args))
    else:
        cost = default_costs()
    work = make_workload(args.requests, args.rate, seed=args.seed)
    rows = [
        {
            "cost_model": cost.source,
            "prefill_base_ms": 1000 * cost.prefill_base_s,
            "prefill_per_token_ms": 1000 * cost.prefill_per_token_s,
            "decode_base_ms": 1000 * cost.decode_base_s,
            "decode_per_seq_ms": 1000 * cost.decode_per_seq_s,
            "samples": list(cost.samples),
        }
    ]
    for policy in POLICIES:
        m = simulate(work, policy, cost, max_batch=args.max_batch, max_wait_s=args.max_wait).metrics()
        m.update(costs=cost.source, simulated=True)
        rows.append(m)
    emit_rows(rows, args.json, style="pairs")
    return 0


def cmd_serving_demo(args) -> int:
    import json

    from engine.inference.shipped import run_demo, save_demo

    if args.save_precomputed:
        pre = save_demo(args.demo, args.prompt, args.lang, _progress(args))
        print(f"wrote assets/precomputed/{pre.name}.json ({pre.command})", file=sys.stderr)
    else:
        print(json.dumps(run_demo(args.demo, args.prompt, _progress(args)), ensure_ascii=False))
    return 0


def register(sub) -> None:
    s = sub.add_parser("serve-bench", help="load test the OpenAI-compatible server at several concurrency levels")
    s.add_argument("--concurrency", type=_ints, default=[1, 4, 8], help="comma-separated levels (1-64)")
    s.add_argument("--requests", type=int, default=16, help="requests per level (1-512)")
    s.add_argument("--max-tokens", type=int, default=64)
    s.add_argument("--allow-remote", action="store_true", help="allow a non-loopback server (your own vLLM)")
    s.add_argument("--json", action="store_true", help="one JSON object per level")
    s.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    s.set_defaults(func=cmd_serve_bench)

    p = sub.add_parser("spec-bench", help="plain vs prompt-lookup vs early-exit speculative decoding on `chat`")
    p.add_argument("--prompt", default=None, help="default: a copy task (where prompt lookup shines)")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("-k", type=int, default=4, help="draft tokens per step")
    p.add_argument("--exit-layers", type=int, default=24, help="layers the early-exit drafter keeps (of 30)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads for this run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_spec_bench)

    a = sub.add_parser("sdpa-bench", help="time torch SDPA backends (math vs flash) and the scratch versions")
    a.add_argument("--lengths", type=_ints, default=[256, 1024, 2048])
    a.add_argument("--heads", type=int, default=9)
    a.add_argument("--head-dim", type=int, default=64)
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--no-causal", action="store_true")
    a.add_argument("--no-scratch", action="store_true", help="skip the slow tiled Python version")
    a.add_argument("--memory", action="store_true", help="also measure allocated bytes with torch.profiler")
    a.add_argument("--threads", type=int, default=None, help="torch threads for this run")
    a.add_argument("--json", action="store_true")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_sdpa_bench)

    w = sub.add_parser("paged-waste", help="KV memory usage: contiguous (Max/Pow2/Oracle) vs paged, vs the paper")
    w.add_argument("--trace", choices=["ShareGPT", "Alpaca"], default="ShareGPT")
    w.add_argument("--requests", type=int, default=1000)
    w.add_argument("--max-len", type=int, default=2048)
    w.add_argument("--block-size", type=int, default=16)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--json", action="store_true")
    w.add_argument("--quiet", action="store_true")
    w.set_defaults(func=cmd_paged_waste)

    b = sub.add_parser("batch-sim", help="static vs dynamic vs continuous batching (simulated, measured costs)")
    b.add_argument("--measure", action="store_true", help="measure prefill/decode costs on `chat` first")
    b.add_argument("--requests", type=int, default=16)
    b.add_argument("--rate", type=float, default=0.5, help="arrivals per second (Poisson)")
    b.add_argument("--max-batch", type=int, default=4)
    b.add_argument("--max-wait", type=float, default=1.0, help="dynamic batching: longest wait (s)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=int, default=None, help="torch threads for this run")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_batch_sim)

    from engine.inference.shipped import DEMOS

    d = sub.add_parser("serving-demo", help="the chapter 8 page's run-only demos with its default settings")
    d.add_argument("demo", choices=list(DEMOS), help="; ".join(f"{k}: {v}" for k, v in DEMOS.items()))
    d.add_argument("--prompt", default="", help="speculative: the page's default prompt in --lang")
    d.add_argument("--lang", default="", choices=["", "ko", "en"], help="speculative: the page language")
    d.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch08_<demo>.json")
    d.add_argument("--quiet", action="store_true", help="no progress on stderr")
    d.set_defaults(func=cmd_serving_demo)
