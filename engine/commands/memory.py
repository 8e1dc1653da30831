"""Chapter 5 commands: `memory` (estimate vs measurement), `zero` (per-GPU calculator), `finetune` (a few steps).

python -m engine memory --model chat --batch 1,4 --mode full,lora,qlora --json
python -m engine zero --params 7.5e9 --gpus 64 --json
python -m engine finetune --model tiny --mode lora --steps 5 --lr 1e-3 --json
python -m engine memory-demo accumulation --save-precomputed   (the chapter 5 page's shipped results)

`finetune --track` logs the run to MLflow (experiment llmlab-ch05: settings, loss per step, the batch's version,
the LoRA/QLoRA adapter folder as the artifact `adapter`) and adds `run_id` and `tracking_uri` to each JSON line.
"""

from __future__ import annotations

import json
import sys

from engine.commands._common import progress_for


def _lora(args):
    from engine.training.lora import LoraSpec
    from engine.training.memory.profile import parse_list

    return LoraSpec(
        r=args.lora_r, alpha=args.lora_alpha, targets=tuple(parse_list(args.lora_targets)), dropout=args.lora_dropout
    )


def _quant(args):
    from engine.training.lora import QuantSpec

    return QuantSpec(quant_type=args.quant_type, double_quant=args.double_quant)


def _print_row(row, as_json: bool) -> None:
    from engine.training.memory.estimate import COMPONENTS
    from engine.training.memory.profile import gib

    if as_json:
        print(json.dumps(row.as_dict(), ensure_ascii=False), flush=True)
        return
    head = f"{row.model} {row.mode} batch={row.batch} seq_len={row.seq_len}"
    if row.checkpointing:
        head += " checkpointing"
    print(head)
    for c in COMPONENTS:
        measured = row.measured[c] if row.measured else None
        ratio = row.ratio(c)
        print(
            f"  {c:<12} estimated {gib(row.estimated[c]):>12}   measured {gib(measured):>12}"
            + (f"   est/meas {ratio:.3f}" if ratio else "")
        )
    if row.refused:
        print(f"  refused: {row.refused}")
    if row.error:
        print(f"  {row.error}")
    sys.stdout.flush()


def cmd_memory(args) -> int:
    from engine.core.textinput import parse_numbers
    from engine.training.memory.profile import estimate_rows, memory_profile, parse_list

    modes = parse_list(args.mode)
    batches = parse_numbers(args.batch, int, name="batch")
    progress = progress_for(quiet=args.json)
    if args.estimate_only:
        rows = estimate_rows(args.model, modes, batches, args.seq_len, _lora(args), _quant(args), args.checkpointing)
        for row in rows:
            _print_row(row, args.json)
        return 0
    rows = []

    def on_row(row) -> None:
        rows.append(row)
        _print_row(row, args.json)

    try:
        result = memory_profile(
            args.model,
            modes,
            batches,
            args.seq_len,
            _lora(args),
            _quant(args),
            args.checkpointing,
            device=args.device,
            seed=args.seed,
            progress=progress,
            on_row=on_row,
        )
    except KeyboardInterrupt:  # finished rows were already printed
        print(f"cancelled after {len(rows)} of {len(modes) * len(batches)} settings", file=sys.stderr)
        return 130
    status = 0
    for row in result.rows:
        if row.refused:
            print(f"error: refused {row.mode} batch {row.batch}: {row.refused}", file=sys.stderr)
            status = 2
        elif row.error:
            print(f"error: {row.mode} batch {row.batch}: {row.error}", file=sys.stderr)
            status = 2
    return status


def cmd_zero(args) -> int:
    from engine.training.memory.zero import zero_table

    for z in zero_table(int(args.params), args.gpus, args.k):
        row = z.as_dict()
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(
                f"{row['name']:<20} {row['total'] / 1e9:10.2f} GB per GPU  (weights {row['weights'] / 1e9:.2f}, "
                f"gradients {row['gradients'] / 1e9:.2f}, optimizer {row['optimizer'] / 1e9:.2f})"
            )
    return 0


def cmd_finetune(args) -> int:
    from engine.llmops.tracking import track_run
    from engine.training.finetune import dummy_batch, load_training_model, train_steps

    progress = progress_for(quiet=args.json)
    model = load_training_model(args.model, args.mode, _lora(args), _quant(args), args.checkpointing)
    batch = dummy_batch(model.config.vocab_size, args.batch, args.seq_len, seed=args.seed)
    tracked = track_run(
        "ch05", f"finetune {args.mode}", _finetune_params(args), enabled=args.track, command="python -m engine finetune"
    )

    def on_step(log) -> None:
        row = {
            "mode": args.mode,
            "step": log.finished_steps,
            "loss": log.losses[-1],
            "seconds": round(log.seconds[-1], 4),
        }
        tracked.log_row(row)
        if args.json:
            print(json.dumps({**row, **tracked.fields()}), flush=True)

    try:
        with tracked:
            if args.track:
                _track_batch(tracked, batch, args)
            log = train_steps(model, batch, args.steps, args.lr, mode=args.mode, progress=progress, on_step=on_step)
            if args.track:
                _track_adapter(tracked, model, log)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    if tracked.warning_message:
        print(f"tracking: {tracked.warning_message}", file=sys.stderr)
    if not args.json:
        print(json.dumps(log.as_dict(), indent=2))
    if log.diverged_at is not None:
        print(
            f"error: training diverged at step {log.diverged_at} (NaN/inf loss or gradient) with lr={args.lr}; "
            f"{log.finished_steps} finished steps kept",
            file=sys.stderr,
        )
        return 3
    return 0


def _finetune_params(args) -> dict:
    keys = ("model", "mode", "steps", "lr", "batch", "seq_len", "checkpointing", "seed")
    params = {k: getattr(args, k) for k in keys}
    if args.mode != "full":
        params |= {"lora_r": args.lora_r, "lora_alpha": args.lora_alpha, "lora_targets": args.lora_targets}
        params |= {"lora_dropout": args.lora_dropout}
    if args.mode == "qlora":
        params |= {"quant_type": args.quant_type, "double_quant": args.double_quant}
    return params


def _track_batch(tracked, batch, args) -> None:
    from engine.llmops.tracking import dataset_version

    ids = batch["input_ids"].tolist()
    source = f"engine.training.finetune.dummy_batch(batch={args.batch}, seq_len={args.seq_len}, seed={args.seed})"
    tracked.log_dataset(dataset_version("dummy-batch", ids, source))


def _track_adapter(tracked, model, log) -> None:
    """The run's status; for LoRA/QLoRA the adapter folder (a few MB; a full model is not copied)."""
    import tempfile

    tracked.set_status("diverged" if log.diverged_at is not None else "cancelled" if log.cancelled else "finished")
    if hasattr(model, "peft_config"):
        with tempfile.TemporaryDirectory(prefix="llmlab-adapter-") as out:
            model.save_pretrained(out)
            tracked.log_artifacts(out, "adapter")


def cmd_memory_demo(args) -> int:
    """One (or every) run-only demo of the chapter 5 page with its default settings; printed, or shipped."""
    from engine.training.efficient_report import DEMOS, demo_record, run_demo, save_demo

    progress = progress_for(quiet=args.json)
    for demo in DEMOS if args.demo == "all" else [args.demo]:
        if args.save_precomputed:
            pre = save_demo(demo, progress)
            print(f"wrote assets/precomputed/{pre.name}.json ({pre.command})", file=sys.stderr)
        else:
            print(json.dumps({"demo": demo, "data": demo_record(demo, run_demo(demo, progress))}), flush=True)
    return 0


def _add_model_args(p) -> None:
    p.add_argument("--model", default="chat", help="chat (SmolLM2-135M-Instruct) or tiny (a small random Llama)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sequence")
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing on every decoder layer")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-targets", default="q_proj,v_proj", help="comma-separated Linear names")
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--quant-type", default="nf4", choices=["nf4", "fp4"], help="QLoRA's 4-bit type")
    p.add_argument("--double-quant", action="store_true", help="QLoRA: also quantize the block scales")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def register(sub) -> None:
    m = sub.add_parser("memory", help="training memory: weights, gradients, optimizer, activations (est. vs meas.)")
    m.add_argument("--batch", default="1,4", help="comma-separated batch sizes")
    m.add_argument("--mode", default="full", help="full, lora, qlora (comma-separated for several)")
    m.add_argument("--device", default=None, help="torch device (default: LLMLAB_DEVICE or cuda if available)")
    m.add_argument("--estimate-only", action="store_true", help="formulas only, no model is loaded")
    _add_model_args(m)
    m.set_defaults(func=cmd_memory)

    z = sub.add_parser("zero", help="ZeRO stages 0-3: model-state memory per GPU")
    z.add_argument("--params", type=float, default=7.5e9, help="parameter count Ψ")
    z.add_argument("--gpus", type=int, default=64, help="data-parallel GPUs N")
    z.add_argument("--k", type=float, default=12, help="optimizer bytes per parameter (12 = mixed-precision Adam)")
    z.add_argument("--json", action="store_true")
    z.set_defaults(func=cmd_zero)

    f = sub.add_parser("finetune", help="a few AdamW steps in full / lora / qlora mode (NaN stops the run)")
    f.add_argument("--mode", default="lora", choices=["full", "lora", "qlora"])
    f.add_argument("--steps", type=int, default=5)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--batch", type=int, default=2)
    f.add_argument("--track", action="store_true", help="log the run to MLflow (llmlab-ch05); adds run_id to the JSON")
    _add_model_args(f)
    f.set_defaults(func=cmd_finetune)

    from engine.training.efficient_report import DEMOS

    d = sub.add_parser("memory-demo", help="the chapter 5 page's run-only demos with its default settings")
    d.add_argument("demo", choices=[*DEMOS, "all"], help="; ".join(f"{k}: {v}" for k, v in DEMOS.items()))
    d.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch05_<demo>.json")
    d.add_argument("--json", action="store_true", help="no progress on stderr")
    d.set_defaults(func=cmd_memory_demo)
