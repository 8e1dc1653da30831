"""Chapter 7 commands: kv-bench, quant-bench, batch-bench, decode, layer-quant, distill, and lighter-demo (the
page's run-only demos with its defaults; --save-precomputed ships them in assets/precomputed/ch07_*.json).

JSON lines on stdout with --json (one object per measured row), progress on stderr.
"""

from __future__ import annotations

import sys

from engine.commands._common import emit_rows


def _setup(args):
    import torch

    from engine.core.progress import cli_progress, null_progress

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return null_progress if args.quiet else cli_progress


def cmd_kv_bench(args) -> int:
    from engine.inference.kv_cache import kv_bench, parse_counts
    from engine.models.loading import load_causal_lm

    counts = parse_counts(args.new_tokens)  # bad input fails before the model loads
    progress = _setup(args)
    lm = load_causal_lm(args.model, progress)
    if args.json:  # one line per count as soon as it is measured
        kv_bench(lm, counts, progress=progress, on_result=lambda r: emit_rows([r.as_dict()], True))
    else:
        emit_rows([r.as_dict() for r in kv_bench(lm, counts, progress=progress)], False)
    return 0


def cmd_quant_bench(args) -> int:
    from engine.compression.quantization import PRECISIONS, quant_bench

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        print(f"error: unknown precision(s) {unknown}: use {','.join(PRECISIONS)}", file=sys.stderr)
        return 2
    progress = _setup(args)
    if args.json:  # one line per precision as soon as it is measured
        quant_bench(
            precisions,
            args.model,
            args.speed_tokens,
            progress=progress,
            on_result=lambda r: emit_rows([r.as_dict()], True),
        )
    else:
        emit_rows(
            [r.as_dict() for r in quant_bench(precisions, args.model, args.speed_tokens, progress=progress)], False
        )
    return 0


def cmd_batch_bench(args) -> int:
    from engine.inference.batching_throughput import batch_sweep, parse_batch_sizes
    from engine.models.loading import load_causal_lm

    sizes = parse_batch_sizes(args.batch_sizes)
    progress = _setup(args)
    lm = load_causal_lm(args.model, progress)
    if args.json:
        batch_sweep(lm, sizes, args.new_tokens, progress=progress, on_result=lambda r: emit_rows([r.as_dict()], True))
    else:
        emit_rows([r.as_dict() for r in batch_sweep(lm, sizes, args.new_tokens, progress=progress)], False)
    return 0


def cmd_decode(args) -> int:
    from engine.inference.generation import DecodingConfig, generate, validate
    from engine.models.loading import load_causal_lm

    cfg = DecodingConfig(
        strategy=args.strategy,
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        num_beams=args.beams,
        seed=args.seed,
    )
    validate(cfg, prompt_tokens=1, context_window=10**9)  # settings first: no model load for a bad value
    progress = _setup(args)
    lm = load_causal_lm(args.model, progress)
    r = generate(lm, args.prompt, cfg, use_chat_template=not args.raw, progress=progress)
    steps = [
        {
            "step": s.index,
            "token": s.chosen_label,
            "kept": s.kept,
            "top": [[c.label, round(c.prob_raw, 4), round(c.prob_final, 4)] for c in s.candidates[:5]],
        }
        for s in r.steps
    ]
    emit_rows(
        [
            {
                "strategy": r.strategy,
                "text": r.text,
                "new_tokens": len(r.new_ids),
                "finish": r.finish,
                "seconds": round(r.seconds, 3),
                "notes": r.notes,
                "steps": steps,
            }
        ],
        args.json,
    )
    return 0


def cmd_layer_quant(args) -> int:
    from engine.compression.gptq_awq import calibration_texts, compare_methods, heldout_texts
    from engine.models.loading import load_causal_lm

    progress = _setup(args)
    lm = load_causal_lm("chat", progress)
    r = compare_methods(
        lm,
        calibration_texts(),
        heldout_texts(),
        args.layer,
        args.projection,
        args.bits,
        args.group_size,
        progress=progress,
    )
    emit_rows(
        [
            {
                "method": m,
                "output_error": r.errors[m],
                "calibration_error": r.calib_errors[m],
                "weight_error": r.weight_errors[m],
                "layer": r.layer,
                "projection": r.projection,
                "bits": r.bits,
                "group_size": r.group_size,
                **({"awq_alpha": r.awq_alpha} if m == "AWQ" else {}),
            }
            for m in r.errors
        ],
        args.json,
    )
    return 0


def cmd_distill(args) -> int:
    from engine.compression.distillation import distill
    from engine.models.loading import load_causal_lm

    progress = _setup(args)
    lm = load_causal_lm("chat", progress)
    r = distill(
        lm, progress=progress, epochs=args.epochs, temperature=args.temperature, alpha=args.alpha, seed=args.seed
    )
    emit_rows(
        [
            {
                "student": k,
                "test_accuracy": v.test_accuracy,
                "test_agreement_with_teacher": v.test_agreement,
                "test_nll": v.test_nll,
                "train_loss": v.train_loss,
                "epochs": v.epoch,
                "teacher_accuracy": r.teacher_accuracy,
                "student_params": r.student_params,
                "train_positions": r.train_positions,
                "test_positions": r.test_positions,
                "seconds": round(r.seconds, 2),
            }
            for k, v in r.final.items()
        ],
        args.json,
    )
    return 0


def cmd_lighter_demo(args) -> int:
    import json

    from engine.compression.shipped import DEMOS, demo_record, run_demo, save_demo

    progress = _setup(args)
    for demo in [d for d in DEMOS if d != "generation"] if args.demo == "all" else [args.demo]:
        if args.save_precomputed:
            pre = save_demo(demo, args.prompt, args.lang, progress)
            print(f"wrote assets/precomputed/{pre.name}.json ({pre.command})", file=sys.stderr)
        else:
            print(json.dumps({"demo": demo, "data": demo_record(demo, run_demo(demo, args.prompt, progress))}))
    return 0


def register(sub) -> None:
    def common(p, model=True):
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
        if model:
            p.add_argument("--model", choices=["chat", "base-ko"], default="chat")

    k = sub.add_parser("kv-bench", help="greedy generation with vs without the KV cache; cache bytes vs formula")
    k.add_argument("--new-tokens", default="64,256", help="comma-separated new-token counts")
    common(k)
    k.set_defaults(func=cmd_kv_bench)

    q = sub.add_parser("quant-bench", help="fp32 vs bitsandbytes int8/NF4/FP4: bytes, tokens/s, perplexity")
    q.add_argument("--precisions", default="fp32,int8,nf4,fp4")
    q.add_argument("--speed-tokens", type=int, default=24, help="new tokens timed per precision")
    common(q)
    q.set_defaults(func=cmd_quant_bench)

    b = sub.add_parser("batch-bench", help="tokens/s of batched greedy generation per batch size")
    b.add_argument("--batch-sizes", default="1,2,4,8")
    b.add_argument("--new-tokens", type=int, default=32)
    common(b)
    b.set_defaults(func=cmd_batch_bench)

    d = sub.add_parser("decode", help="one decoding strategy, step by step")
    d.add_argument("prompt")
    d.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="greedy")
    d.add_argument("--max-tokens", type=int, default=16)
    d.add_argument("--temperature", type=float, default=1.0)
    d.add_argument("--top-k", type=int, default=0)
    d.add_argument("--top-p", type=float, default=1.0)
    d.add_argument("--repetition-penalty", type=float, default=1.0)
    d.add_argument("--beams", type=int, default=3)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--raw", action="store_true", help="no chat template")
    common(d)
    d.set_defaults(func=cmd_decode)

    lq = sub.add_parser("layer-quant", help="RTN vs GPTQ vs AWQ on one linear layer of chat (output error)")
    lq.add_argument("--layer", type=int, default=5)
    lq.add_argument("--projection", default="q_proj")
    lq.add_argument("--bits", type=int, default=4)
    lq.add_argument("--group-size", type=int, default=0)
    common(lq, model=False)
    lq.set_defaults(func=cmd_layer_quant)

    kd = sub.add_parser("distill", help="tiny student on chat's soft labels vs on hard labels")
    kd.add_argument("--epochs", type=int, default=100)
    kd.add_argument("--temperature", type=float, default=1.0)
    kd.add_argument("--alpha", type=float, default=1.0)
    kd.add_argument("--seed", type=int, default=0)
    common(kd, model=False)
    kd.set_defaults(func=cmd_distill)

    from engine.compression.shipped import DEMOS

    ld = sub.add_parser("lighter-demo", help="the chapter 7 page's run-only demos with its default settings")
    ld.add_argument("demo", choices=[*DEMOS, "all"], help="; ".join(f"{k}: {v}" for k, v in DEMOS.items()))
    ld.add_argument("--prompt", default="", help="generation: the page's default prompt in --lang")
    ld.add_argument("--lang", default="", choices=["", "ko", "en"], help="generation: the page language")
    ld.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch07_<demo>.json")
    common(ld, model=False)
    ld.set_defaults(func=cmd_lighter_demo)
