"""Chapter 16 command: `ssm-check`, every equality of the chapter in one report.

python -m engine ssm-check --json                  float64 at the top level, float32 under "float32"
python -m engine ssm-check --dtype float32 --json  one dtype
python -m engine ssm-check --save-precomputed      both dtypes -> assets/precomputed/ch16_check.json (the page's)

Keys: conv_vs_recurrent_max_diff (S4: convolution vs recurrence), parallel_vs_sequential_max_diff (selective scan),
vs_transformers_max_diff and grad_vs_transformers_max_diff (our Mamba vs transformers' MambaModel, same weights),
book_code (the book's 16.5 code: each defect's real error, and the fixed code vs our model). Exit code 1 if a
difference is above the tolerance (1e-10 in float64, 1e-4 in float32).
"""

from __future__ import annotations

import sys

from engine.commands._common import print_obj

PRECOMPUTED = "ch16_check"

KEYS = (
    "conv_vs_recurrent_max_diff",
    "parallel_vs_sequential_max_diff",
    "vs_transformers_max_diff",
    "grad_vs_transformers_max_diff",
)


def _summary(report: dict) -> str:
    lines = [f"{report['dtype']} (tolerance {report['tolerance']:g}): {'passed' if report['passed'] else 'FAILED'}"]
    lines += [f"  {k:<34} {report[k]:.3e}" for k in KEYS]
    book = report.get("book_code") or {}
    if book:
        lines.append(f"  book 16.5 fixed ({book['fixed_variant']}) vs ours  {book['fixed_lm_vs_ours_max_diff']:.3e}")
        for d in book["defects"]:
            err = f"{d['error_type']}: {d['error']}" if d["error_type"] else d["note"]
            lines.append(f"    defect {d['defect']} ({d['name']}): {err}")
    return "\n".join(lines)


def cmd_ssm_check(args) -> int:
    from engine.ssm.check import ssm_check

    # the shipped file always holds both dtypes
    report = ssm_check(None if args.save_precomputed else args.dtype)
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        saved = save_precomputed(PRECOMPUTED, report, "python -m engine ssm-check --save-precomputed")
        print(f"wrote assets/precomputed/{saved.name}.json", file=sys.stderr)
    if args.json:
        print_obj(report, True)
    else:
        print(_summary(report))
        if "float32" in report:
            print(_summary(report["float32"]))
    return 0 if report["passed"] else 1


def register(sub) -> None:
    p = sub.add_parser(
        "ssm-check", help="ch.16: S4 conv = recurrence, parallel = sequential scan, Mamba = transformers"
    )
    p.add_argument("--dtype", choices=("float64", "float32"), default=None, help="one dtype (default: both)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{PRECOMPUTED}.json")
    p.set_defaults(func=cmd_ssm_check)
