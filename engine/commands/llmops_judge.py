"""Chapter 13 evaluation commands: `judge-bias` (an LLM judge's position and length bias and its agreement with the
reference labels) and `rag-eval` (context precision/recall, faithfulness, answer relevance of ch.9 configurations).

    python -m engine judge-bias --json [--pairs assets/llmops/pairs.jsonl] [--limit 50] [--role instruct]
    python -m engine judge-bias --save-precomputed        # assets/precomputed/ch13_judge_bias.json
    python -m engine rag-eval --configs best,chroma --json [--questions 15] [--judge-role instruct]
    python -m engine rag-eval --configs best,chroma --save-precomputed   # assets/precomputed/ch13_rag_eval.json

`judge-bias --json` prints one object: `pairs`, `flip_rate`, `length_bias`, `agreement_with_humans` (numbers), each
with `<name>_ci` ([low, high], 95 %), `<name>_n` and `<name>_method` (wilson or bootstrap), plus `reversal_rate`,
`first_slot_rate`, `judge_longer_rate`, `human_longer_rate`, `agreement_first_order`, `length_buckets`, `invalid`
and `invalid_codes` (engine/llmops/judge.py says what each counts). `--verdicts` adds every verdict.
`rag-eval --json` prints one object per configuration: `config`, `n`, `context_precision`, `context_recall`,
`faithfulness`, `answer_relevance`, `phrase_found`, `seconds`, `invalid`, `ci` (bootstrap over questions).
Progress goes to stderr.
"""

from __future__ import annotations

import sys

from engine.commands._common import print_obj, progress_for

JUDGE_COMMAND = "python -m engine judge-bias --save-precomputed"
RAG_COMMAND = "python -m engine rag-eval --configs best,chroma --save-precomputed"


def cmd_judge_bias(args) -> int:
    from engine.llmops.judge import load_judge_pairs, measure_bias

    pairs = load_judge_pairs(args.pairs)
    report = measure_bias(pairs, role=args.role, limit=args.limit, progress=progress_for(args.quiet))
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        data = report.to_json(with_verdicts=True)
        data["pairs_file"] = str(args.pairs or "default")
        saved = save_precomputed("ch13_judge_bias", data, JUDGE_COMMAND)
        print(f"{saved.name}: written ({JUDGE_COMMAND})", file=sys.stderr)
    out = report.to_json(with_verdicts=args.verdicts)
    if args.json:
        print_obj(out, True)
    else:
        for name in ("flip_rate", "reversal_rate", "first_slot_rate", "length_bias", "agreement_with_humans"):
            low, high = out[f"{name}_ci"]
            print(f"{name:24s} {_num(out[name])}  95% [{_num(low)}, {_num(high)}]  n={out[f'{name}_n']}")
        codes = out["invalid_codes"] or ""
        print(f"pairs {out['pairs']}, invalid {out['invalid']}, unanswered {out['unanswered']} {codes}")
        print(f"judge {out['model']} ({out['role']}), {out['seconds']:.0f} s")
    return 0


def cmd_rag_eval(args) -> int:
    from engine.llmops.rag_eval import compare_configs, parse_configs

    names = parse_configs(args.configs)
    scores = compare_configs(names, args.questions, args.judge_role, progress=progress_for(args.quiet))
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        data = {"configs": [s.to_json(with_samples=True) for s in scores], "questions": args.questions}
        line = f"python -m engine rag-eval --configs {','.join(names)} --questions {args.questions} --save-precomputed"
        saved = save_precomputed("ch13_rag_eval", data, line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
    for s in scores:
        row = s.to_json(with_samples=args.samples)
        if args.json:
            print_obj(row, True)
        else:
            print(
                f"{s.config:8s} n={s.n:3d} context_precision={_num(s.context_precision)} "
                f"context_recall={_num(s.context_recall)} faithfulness={_num(s.faithfulness)} "
                f"answer_relevance={_num(s.answer_relevance)} phrase_found={_num(s.phrase_found)} "
                f"invalid={s.invalid} {s.seconds:.0f}s"
            )
    return 0


def _num(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def register(sub) -> None:
    from engine.llmops.judge import JUDGE_ROLES
    from engine.llmops.rag_eval import CONFIGS, DEFAULT_QUESTIONS

    p = sub.add_parser("judge-bias", help="ch.13: an LLM judge's position and length bias, agreement with labels")
    p.add_argument("--pairs", default=None, help="JSON-lines pairs (default assets/llmops/pairs.jsonl)")
    p.add_argument("--limit", type=int, default=None, help="judge only the first N pairs")
    p.add_argument("--role", default="instruct", choices=JUDGE_ROLES, help="the judge (openai needs OPENAI_API_KEY)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--verdicts", action="store_true", help="with --json: every verdict too")
    p.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch13_judge_bias.json")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_judge_bias)

    r = sub.add_parser("rag-eval", help="ch.13: context precision/recall, faithfulness, relevance of ch.9 configs")
    r.add_argument("--configs", default="best,chroma", help="comma-separated: " + ", ".join(CONFIGS))
    r.add_argument("--questions", type=int, default=DEFAULT_QUESTIONS, help="held-out questions (1-42)")
    r.add_argument("--judge-role", default="instruct", choices=JUDGE_ROLES, help="the model that scores")
    r.add_argument("--json", action="store_true", help="one JSON object per configuration")
    r.add_argument("--samples", action="store_true", help="with --json: every question's scores too")
    r.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch13_rag_eval.json")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.set_defaults(func=cmd_rag_eval)
