"""Chapter 16 experiments: `ssm-train` (a tiny Mamba vs a Transformer with the same parameter count on the Mamba
paper's synthetic tasks, accuracy at the trained length and beyond) and `ssm-bench` (ms per generated token and
measured state bytes vs context length; one training forward+backward: attention vs parallel vs sequential scan).

    python -m engine ssm-train --task selective_copy --json          # one object per architecture
    python -m engine ssm-train --task induction --save-precomputed   # assets/precomputed/ch16_train_induction.json
    python -m engine ssm-bench --lengths 256,1024,4096 --json        # one object per (kind, architecture, length)
    python -m engine ssm-bench --save-precomputed                    # assets/precomputed/ch16_bench.json

`ssm-train --json` prints per architecture: arch, params, accuracy (held-out, trained length), accuracy_by_length
(token accuracy per evaluation length), accuracy_longer (mean over the longer lengths), sequence_accuracy_by_length,
seconds (training wall time), steps, status, curve (loss and batch accuracy every `log_every` steps).
`ssm-bench --json` prints decode rows (ms_per_token, state_bytes), train_step rows (ms), then a summary object with
the machine and its load average. Progress goes to stderr.
"""

from __future__ import annotations

import sys

from engine.commands._common import print_obj, progress_for


def _train_config(args):
    from engine.ssm.train import task_config

    return task_config(
        args.task,
        steps=args.steps,
        seed=args.seed,
        length=args.length,
        threads=args.threads,
        max_seconds=args.max_seconds,
        lr=args.lr,
    )


def train_command(args) -> str:
    """The exact command that reproduces a shipped training file (only the options given)."""
    line = f"python -m engine ssm-train --task {args.task} --save-precomputed"
    for flag, value in (
        ("--steps", args.steps),
        ("--seed", args.seed),
        ("--length", args.length),
        ("--threads", args.threads),
        ("--max-seconds", args.max_seconds),
        ("--lr", args.lr),
    ):
        if value is not None:
            line += f" {flag} {value}"
    return line


def train_shipped(results) -> dict:
    return {"results": [r.to_json() for r in results]}


def cmd_ssm_train(args) -> int:
    from engine.core.precomputed import save_precomputed
    from engine.ssm.bench import machine
    from engine.ssm.train import compare

    cfg = _train_config(args)
    before = machine(cfg.threads)
    results = compare(cfg, progress=progress_for(args.quiet or args.json))
    if args.save_precomputed:
        data = train_shipped(results)
        data["machine"] = {"before": before, "after": machine(cfg.threads)}
        line = train_command(args)
        saved = save_precomputed(f"ch16_train_{args.task}", data, line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
    for r in results:
        if args.json:
            print_obj(r.to_json(), True)
        else:
            by_len = "  ".join(f"L={n}: {a:.3f}" for n, a in r.accuracy_by_length.items())
            print(f"{r.arch:12s} {r.params:,} params  {r.steps} steps  {r.seconds:.1f} s  {r.status}  {by_len}")
    return 0


def cmd_ssm_bench(args) -> int:
    from engine.core.precomputed import save_precomputed
    from engine.core.textinput import parse_numbers
    from engine.ssm.bench import MAX_BENCH_LENGTHS, BenchConfig, run_bench

    lengths = tuple(parse_numbers(args.lengths, int, name="lengths", max_items=MAX_BENCH_LENGTHS))
    train_lengths = (
        tuple(parse_numbers(args.train_lengths, int, name="train_lengths", max_items=MAX_BENCH_LENGTHS))
        if args.train_lengths
        else ()
    )
    cfg = BenchConfig(lengths=lengths, train_lengths=train_lengths, repeats=args.repeats, threads=args.threads)
    report = run_bench(cfg, progress=progress_for(args.quiet or args.json))
    if args.save_precomputed:
        line = f"python -m engine ssm-bench --lengths {','.join(map(str, lengths))} --save-precomputed"
        if train_lengths:
            line += f" --train-lengths {','.join(map(str, train_lengths))}"
        saved = save_precomputed("ch16_bench", report.to_json(), line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
    if args.json:
        for row in report.decode:
            print_obj({"kind": "decode", **row}, True)
        for row in report.train_step:
            print_obj({"kind": "train_step", **row}, True)
        print_obj(
            {
                "summary": True,
                "params": report.params,
                "machine_before": report.machine_before,
                "machine_after": report.machine_after,
                "seconds": report.seconds,
            },
            True,
        )
    else:
        for row in report.decode:
            print(
                f"decode  {row['arch']:12s} N={row['length']:6d}  {row['ms_per_token']:8.3f} ms/token  "
                f"{row['state_bytes']:,} bytes"
            )
        for row in report.train_step:
            print(f"train   {row['arch']:16s} N={row['length']:6d}  {row['ms']:9.1f} ms (fwd+bwd)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("ssm-train", help="ch.16: tiny Mamba vs same-size Transformer on selective copying / induction")
    p.add_argument("--task", default="selective_copy", choices=("selective_copy", "induction"))
    p.add_argument(
        "--steps", type=int, default=None, help="training steps (default: 2000 selective_copy, 600 induction)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed for weights and batches (default 0)")
    p.add_argument("--length", type=int, default=None, help="training sequence length (default 64)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the measured run (default 1)")
    p.add_argument("--lr", type=float, default=None, help="one learning rate for both (default: each its own)")
    p.add_argument("--max-seconds", type=float, default=None, help="also stop each model's training after this time")
    p.add_argument("--json", action="store_true", help="one JSON object per architecture")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch16_train_<task>.json")
    p.set_defaults(func=cmd_ssm_train)

    b = sub.add_parser("ssm-bench", help="ch.16: ms/token and state bytes vs context; attention vs scans in training")
    b.add_argument("--lengths", default="256,1024,4096", help="context lengths, comma-separated (max 8192)")
    b.add_argument("--train-lengths", default="", help="lengths for the forward+backward timing (default: --lengths)")
    b.add_argument("--repeats", type=int, default=7)
    b.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quiet", action="store_true")
    b.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch16_bench.json")
    b.set_defaults(func=cmd_ssm_bench)
