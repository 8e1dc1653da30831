"""Chapter 13 quantitative evaluation commands: `mc-eval` (multiple-choice scoring by log-likelihood on the Korean
Constitution cloze items, checked item by item against lm-evaluation-harness) and `text-metrics` (exact match,
token F1, BLEU, chrF, ROUGE on whitespace tokens and on Kiwi morphemes, side by side).

    python -m engine mc-eval --json [--limit 10] [--no-harness] [--role chat]
    python -m engine mc-eval --save-precomputed          # assets/precomputed/ch13_mc_eval.json
    python -m engine mc-eval --build-items               # rewrite assets/llmops/constitution_cloze.jsonl (seeded)
    python -m engine text-metrics --json                 # the built-in Korean example pairs
    python -m engine text-metrics --json --prediction "..." --reference "..."
    python -m engine text-metrics --json --pairs-file pairs.jsonl   # {"prediction": ..., "reference": ...} per line

`mc-eval --json` prints one object per item: `item_id`, `acc`, `acc_norm`, `acc_bytes`, `lm_eval_acc`,
`lm_eval_acc_norm`, `lm_eval_acc_bytes` (the harness's own per-item result; null with --no-harness), `max_ll_diff`
(largest |difference| of a choice's log-likelihood between us and the harness), `same_requests` (the scored strings
are the harness's), `equal`; then one summary object (`"summary": true`) with `n_items`, the accuracy of each,
`n_equal`, seconds and the harness version. Exit code 1 if any item differs from the harness.
`text-metrics --json` prints one object per pair (`whitespace` and `morpheme` score dicts, the tokens, and
`rouge_default_tokenizer`), then a `corpus` object. Progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.commands._common import print_obj, progress_for

MC_COMMAND = "python -m engine mc-eval --save-precomputed"


def cmd_mc_eval(args) -> int:
    from engine.llmops import mc_eval as mc

    if args.build_items:
        items = mc.build_cloze_items()
        path = mc.write_items(items)
        print(f"wrote {len(items)} items to {path}", file=sys.stderr)
        return 0
    report = mc.run_mc_eval(
        items=mc.load_items(args.items, limit=args.limit) if args.items else None,
        limit=args.limit,
        harness=not args.no_harness,
        role=args.role,
        progress=progress_for(args.quiet),
    )
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        line = MC_COMMAND if not args.limit else f"{MC_COMMAND} --limit {args.limit}"
        saved = save_precomputed("ch13_mc_eval", mc.shipped_data(report), line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
    summary = report.summary()
    if args.json:
        for row in report.rows:
            print_obj(row.to_json(), True)
        print_obj(summary, True)
    else:
        for row in report.rows:
            h = "" if row.lm_eval_acc is None else f"  lm-eval {row.lm_eval_acc:.0f}/{row.lm_eval_acc_norm:.0f}"
            print(f"{row.item_id}  acc {row.acc:.0f}  acc_norm {row.acc_norm:.0f}{h}")
        print(
            f"{summary['n_items']} items · {summary['model']}: acc {summary['acc']:.3f}, "
            f"acc_norm {summary['acc_norm']:.3f}, acc_bytes {summary['acc_bytes']:.3f} "
            f"(chance {summary['chance']:.3f}), {summary['seconds']:.1f} s"
        )
        if report.harness is not None:
            print(
                f"lm-eval {summary['harness_version']}: acc {summary['lm_eval_acc']:.3f}, "
                f"acc_norm {summary['lm_eval_acc_norm']:.3f}; equal on {summary['n_equal']}/{summary['n_items']} "
                f"items, max |Δ log-likelihood| {summary['max_ll_diff']:.2e}, {summary['harness_seconds']:.1f} s"
            )
    if report.harness is not None and summary["n_equal"] != summary["n_items"]:
        return 1
    return 0


def _pairs(args) -> tuple[list[str], list[str]]:
    from engine.core.textinput import InputError
    from engine.llmops.metrics import EXAMPLE_PAIRS

    if args.prediction is not None or args.reference is not None:
        return [args.prediction or ""], [args.reference or ""]
    if not args.pairs_file:
        return [p for p, _ in EXAMPLE_PAIRS], [r for _, r in EXAMPLE_PAIRS]
    preds, refs = [], []
    for n, line in enumerate(Path(args.pairs_file).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            preds.append(raw["prediction"])
            refs.append(raw["reference"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("llmops.metrics.bad_line", line=n, reason=str(exc)) from exc
    return preds, refs


def cmd_text_metrics(args) -> int:
    from engine.llmops.metrics import TOKENIZATIONS, evaluate_pairs

    preds, refs = _pairs(args)
    report = evaluate_pairs(preds, refs)
    for i, pair in enumerate(report.pairs):
        row = {
            "pair": i,
            "prediction": pair.prediction,
            "reference": pair.reference,
            **{tok: {k: round(v, 2) for k, v in pair.scores[tok].as_dict().items()} for tok in TOKENIZATIONS},
            "tokens": {tok: {"prediction": p, "reference": r} for tok, (p, r) in pair.tokens.items()},
            "rouge_default_tokenizer": round(pair.rouge_default_tokenizer, 2),
        }
        if args.json:
            print_obj(row, True)
        else:
            print(f"[{i}] {pair.prediction} | {pair.reference}")
            for tok in TOKENIZATIONS:
                scores = "  ".join(f"{k} {v:5.1f}" for k, v in pair.scores[tok].as_dict().items())
                print(f"    {tok:10s} {scores}")
    corpus = {
        "corpus": True,
        "pairs": len(report.pairs),
        **{tok: {k: round(v, 2) for k, v in report.corpus[tok].as_dict().items()} for tok in TOKENIZATIONS},
        "libraries": report.libraries,
    }
    if args.json:
        print_obj(corpus, True)
    else:
        for tok in TOKENIZATIONS:
            print(f"corpus {tok:10s} " + "  ".join(f"{k} {v:5.1f}" for k, v in report.corpus[tok].as_dict().items()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("mc-eval", help="ch.13: multiple-choice log-likelihood scoring vs lm-evaluation-harness")
    p.add_argument("--limit", type=int, default=None, help="only the first N items")
    p.add_argument("--no-harness", action="store_true", help="only our scoring (no lm-evaluation-harness run)")
    p.add_argument("--role", default="chat", help="packaged causal-LM role (default chat: SmolLM2-135M-Instruct)")
    p.add_argument("--items", help="a JSONL of items (id, context, choices, label); default: the shipped cloze set")
    p.add_argument("--json", action="store_true", help="one JSON object per item, then a summary object")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch13_mc_eval.json")
    p.add_argument("--build-items", action="store_true", help="rebuild the shipped cloze items (seeded) and exit")
    p.set_defaults(func=cmd_mc_eval)

    m = sub.add_parser("text-metrics", help="ch.13: EM, token F1, BLEU, chrF, ROUGE on whitespace vs morpheme tokens")
    m.add_argument("--prediction")
    m.add_argument("--reference")
    m.add_argument("--pairs-file", help='JSONL: {"prediction": ..., "reference": ...} per line')
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_text_metrics)
