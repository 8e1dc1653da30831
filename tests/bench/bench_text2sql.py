"""The Text2SQL goals of issue 17 on the 60 held-out Korean Chinook questions (assets/text2sql/chinook_ko.yaml, test
split): execution accuracy of the default pipeline (goal ≥ .60) beside zero-shot on the same model in the same run
(the ratio is what compares across machines), the median seconds per question (goal ≤ 10 s on 2 cores), and the
same two strategies on a fixed Spider dev sample (English, 20 other schemas: no train split, so no few-shot there).

    python -m tests.bench.run_bench text2sql                       # this, the judge and the fine-tuning benches
    python -m tests.bench.bench_text2sql --strategies zero-shot,few-shot --spider 0   # any strategies, one run
"""

from __future__ import annotations

import sys

from tests.bench.rows import bench_row

BENCH = "text2sql"
EX_GOAL = 0.60
SECONDS_GOAL = 10.0
SPIDER_SAMPLE = 100


def measure(strategies: list[str], spider: int = SPIDER_SAMPLE, verbose: bool = False) -> dict:
    from engine.text2sql import evaluate_set

    def show(row) -> None:
        if verbose:
            print(f"{int(row.ex)} {row.seconds:5.1f}s {row.id} {row.pred_sql[:90]}", file=sys.stderr, flush=True)

    out = {"chinook": {}, "spider": {}}
    for name in strategies:
        report = evaluate_set("chinook-test", name, on_row=show)
        out["chinook"][name] = {"n": len(report.rows), "ex": report.ex, "median_s": report.median_seconds}
        if spider:
            report = evaluate_set("spider-dev", name, limit=spider, on_row=show)
            out["spider"][name] = {"n": len(report.rows), "ex": report.ex, "em": report.em}
    return out


def run() -> list[dict]:
    from engine.text2sql import DEFAULT_STRATEGY

    m = measure(["zero-shot", DEFAULT_STRATEGY])
    best, zero = m["chinook"][DEFAULT_STRATEGY], m["chinook"]["zero-shot"]
    rows = [
        bench_row(BENCH, f"held-out Chinook EX, {DEFAULT_STRATEGY} (n={best['n']})", best["ex"], "share",
                  f"≥ {EX_GOAL:g}", best["ex"] >= EX_GOAL),
        bench_row(BENCH, f"held-out Chinook EX, zero-shot (n={zero['n']})", zero["ex"], "share"),
        bench_row(BENCH, "EX ratio: default pipeline / zero-shot (same model, same run)",
                  best["ex"] / zero["ex"] if zero["ex"] else float("inf"), "x"),
        bench_row(BENCH, f"median seconds per question, {DEFAULT_STRATEGY}", best["median_s"], "s",
                  f"≤ {SECONDS_GOAL:g} s", best["median_s"] <= SECONDS_GOAL),
    ]  # fmt: skip
    for name, r in m["spider"].items():
        rows.append(bench_row(BENCH, f"Spider dev sample EX, {name} (n={r['n']})", r["ex"], "share"))
        if r["em"] is not None:
            rows.append(bench_row(BENCH, f"Spider dev sample exact-set match, {name}", r["em"], "share"))
    return rows


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser()
    ap.add_argument("--strategies", default="zero-shot,few-shot+linking+repair")
    ap.add_argument("--spider", type=int, default=SPIDER_SAMPLE, help="Spider dev questions (0: none)")
    args = ap.parse_args()
    print(json.dumps(measure(args.strategies.split(","), args.spider, verbose=True), ensure_ascii=False, indent=1))
