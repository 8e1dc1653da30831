"""Hands-On LLM commands: `classify-compare` (ch.4, text classification five ways).

python -m engine classify-compare --json                        one JSON object per method: method, macro_f1,
                                                                 accuracy, seconds_per_item, train_seconds, n_test
                                                                 (+ status, subset, error_code, error)
python -m engine classify-compare --methods encoder,zero_shot    some of encoder (from scratch), finetuned (Gemma +
                                                                 LoRA), embed_lr, zero_shot, generative
python -m engine classify-compare --finetune-epochs 2            passes of the Gemma fine-tuning (default 3)
python -m engine classify-compare --limit-generative 20          test items the generative method classifies
python -m engine classify-compare --save-precomputed             -> assets/precomputed/h4_classify.json (the page's)

A method that cannot run (the generative one when the model server is down, the fine-tuned one without the packaged
Gemma) is a row with status "unavailable" and
the reason; the others still run, and the exit code is 0. Exit code 2 for a bad option.
"""

from __future__ import annotations

import sys

from engine.commands._common import emit_rows, progress_for

PRECOMPUTED = "h4_classify"


def cmd_classify_compare(args) -> int:
    from engine.handson.classification import CompareConfig, compare_methods, parse_methods

    methods = parse_methods(args.methods)
    cfg = CompareConfig(limit_generative=args.limit_generative, seed=args.seed, finetune_epochs=args.finetune_epochs)
    comparison = compare_methods(methods, cfg, progress=progress_for(args.json or args.quiet))
    if args.save_precomputed:
        import os

        from engine.core.precomputed import save_precomputed

        command = "python -m engine classify-compare --save-precomputed"
        if os.environ.get("LLMLAB_SERVER_THREADS"):  # it changes the generative timing: recorded with the figures
            command = f"LLMLAB_SERVER_THREADS={os.environ['LLMLAB_SERVER_THREADS']} {command}"
        if args.limit_generative != CompareConfig.limit_generative:
            command += f" --limit-generative {args.limit_generative}"
        if args.finetune_epochs != CompareConfig.finetune_epochs:
            command += f" --finetune-epochs {args.finetune_epochs}"
        saved = save_precomputed(PRECOMPUTED, comparison.as_dict(), command)
        print(f"wrote assets/precomputed/{saved.name}.json", file=sys.stderr)
    emit_rows(comparison.rows(), args.json)
    for r in comparison.methods:
        if r.status != "ok":
            print(f"{r.method}: unavailable: {r.error}", file=sys.stderr)
    return 0


def register(sub) -> None:
    from engine.handson.classification import MAX_GENERATIVE, METHODS, CompareConfig

    p = sub.add_parser("classify-compare", help="Hands-On ch.4: text classification five ways, one table")
    p.add_argument("--methods", default=None, help=f"comma list of {','.join(METHODS)} (default: all)")
    p.add_argument(
        "--limit-generative",
        type=int,
        default=CompareConfig.limit_generative,
        help=f"test items for the generative method, 1-{MAX_GENERATIVE} (a stratified subset; default %(default)s)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=CompareConfig.finetune_epochs,
        help="passes over the training paragraphs when fine-tuning Gemma, 1-20 (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="split, training and subset seed (default 0)")
    p.add_argument("--json", action="store_true", help="one JSON object per method on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{PRECOMPUTED}.json")
    p.set_defaults(func=cmd_classify_compare)
