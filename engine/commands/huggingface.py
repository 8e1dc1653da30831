"""`python -m engine hf-train`: chapter 3's classifier trained with 🤗 Trainer and with a plain PyTorch loop.

    python -m engine hf-train --epochs 12 --seed 0 --json

prints one JSON object per training step or evaluation of each loop (run, kind, step, loss / accuracy), then a
summary object (kind="summary") with both final accuracies and the largest loss gap between the two loops.
With --save-precomputed (default settings only) it also writes assets/precomputed/ch03_loops.json: what the page
shows before a learner trains anything.
With --track the run goes to MLflow (experiment llmlab-ch03: a child run per loop, the dataset version) and every
JSON line gets `run_id` (the run holding its numbers; the parent run for the summary) and `tracking_uri`.
"""

from __future__ import annotations

import json
import math
import sys


def cmd_hf_train(args) -> int:
    from engine.training.classifier import ClassifierConfig, compare_loops

    cfg = ClassifierConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, dropout=args.dropout)
    if args.save_precomputed and cfg != ClassifierConfig():  # a shipped result stands for the page's default run
        print("--save-precomputed writes the default run only (no --epochs/--lr/--dropout/--seed)", file=sys.stderr)
        return 2

    from dataclasses import asdict

    from engine.llmops.tracking import track_run

    tracked = track_run("ch03", "hf-train", asdict(cfg), enabled=args.track, command="python -m engine hf-train")

    def emit(row: dict) -> None:
        if args.json:
            line = {k: v for k, v in row.items() if isinstance(v, int | float | str)}
            print(json.dumps({**line, **tracked.fields(row)}), flush=True)
        elif row.get("kind") == "eval":
            print(f"{row['run']:>13} epoch {row['epoch']:.0f}  accuracy {row['accuracy']:.3f}", flush=True)

    with tracked:
        result = compare_loops(cfg, on_row=tracked.tee(emit, by="run"))
        if args.track:
            _track_result(tracked, result)
    summary = {
        "kind": "summary",
        "labels": result.prep.labels,
        "train_examples": len(result.prep.dataset["train"]),
        "test_examples": len(result.prep.dataset["test"]),
        "accuracy_trainer": result.final_accuracy("trainer"),
        "accuracy_loop": result.final_accuracy("loop"),
        "max_loss_gap": None if math.isnan(result.max_loss_gap) else result.max_loss_gap,
        "seconds": result.seconds,
        "status": {"trainer": result.trainer.status, "loop": result.loop.status},
        **tracked.fields(),
    }
    print(json.dumps(summary, ensure_ascii=False) if args.json else json.dumps(summary, ensure_ascii=False, indent=2))
    for log in (result.trainer, result.loop):
        if log.message:
            print(f"{log.label}: {log.message}", file=sys.stderr)
    if tracked.warning_message:
        print(f"tracking: {tracked.warning_message}", file=sys.stderr)
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed
        from engine.training.classifier_report import shipped_loops

        command = "python -m engine hf-train --save-precomputed"
        save_precomputed("ch03_loops", shipped_loops(result), command)
        print(f"ch03_loops: written ({command})", file=sys.stderr)
    return 1 if "diverged" in summary["status"].values() else 0


def _track_result(tracked, result) -> None:
    """Each loop's status, the data version (train and test paragraphs) and the final accuracies (the same record
    as the page's run: engine.llmops.run_records)."""
    from engine.llmops.run_records import classifier_record, classifier_statuses

    tracked.set_statuses(classifier_statuses(result))
    classifier_record(tracked, result)


def register(subparsers) -> None:
    p = subparsers.add_parser("hf-train", help="Constitution-chapter classifier: Trainer vs PyTorch loop (chapter 3)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per step/evaluation, then a summary")
    p.add_argument(
        "--save-precomputed", action="store_true", help="also write assets/precomputed/ch03_loops.json (the page's)"
    )
    p.add_argument("--track", action="store_true", help="log the run to MLflow (llmlab-ch03); adds run_id to the JSON")
    p.set_defaults(func=cmd_hf_train)
