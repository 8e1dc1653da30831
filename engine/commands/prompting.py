"""Hands-On ch.6, the prompt studio: `prompt-compare`, every prompting technique on the same Korean word problems.

python -m engine prompt-compare --json                         one JSON row per technique
python -m engine prompt-compare --limit 5 --role instruct-large --save-precomputed   the page's shipped table

Rows: technique, accuracy, n, seconds_per_item, calls_per_item, validity (structured output only).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict

from engine.commands._common import emit_rows, progress_for

PRECOMPUTED = "h6_prompting"


def register(sub) -> None:
    p = sub.add_parser("prompt-compare", help="prompting techniques on Korean word problems, measured live")
    p.add_argument("--techniques", default=None, help="comma list (default: all)")
    p.add_argument("--limit", type=int, default=10, help="problems (1-20), the same for every technique")
    p.add_argument("--samples", type=int, default=5, help="self-consistency samples")
    p.add_argument("--role", default=None, help="instruct (Qwen2.5-Coder-0.5B) or instruct-large (1.5B)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{PRECOMPUTED}.json")
    p.set_defaults(func=_compare)


def _compare(args) -> int:
    if args.role:
        os.environ["LLMLAB_PROMPT_ROLE"] = args.role
    from engine.handson import prompting

    techniques = prompting.TECHNIQUES
    if args.techniques:
        techniques = tuple(t.strip() for t in args.techniques.split(",") if t.strip())
        unknown = sorted(set(techniques) - set(prompting.TECHNIQUES))
        if unknown:
            print(f"error: unknown technique(s) {unknown}; use {list(prompting.TECHNIQUES)}", file=sys.stderr)
            return 2
    rows = prompting.compare_techniques(
        techniques, limit=args.limit, samples=args.samples, progress=progress_for(args.json)
    )
    emit_rows([{k: v for k, v in asdict(r).items() if k != "attempts"} for r in rows], args.json)
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        command = f"python -m engine prompt-compare --limit {args.limit} --role {prompting.role()} --save-precomputed"
        save_precomputed(PRECOMPUTED, {"role": prompting.role(), "rows": [asdict(r) for r in rows]}, command)
        print(f"saved {PRECOMPUTED}", file=sys.stderr)
    return 0
