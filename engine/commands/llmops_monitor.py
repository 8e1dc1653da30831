"""Chapter 13 commands: `monitor` (the RAG traces' latency, tokens, cost, errors, cache hits, rails, drift) and
`label-agreement` (how far the learners' human labels agree: Cohen's and Fleiss' kappa).

    python -m engine monitor --json                      # one summary object of the current tracing store
    python -m engine monitor --json --bucket hour --drift  # + a second line: drift of the questions
    python -m engine label-agreement --json              # one object per kind (pairwise, likert)
    python -m engine label-agreement --kind pairwise --learners kim,lee --json
    python -m engine monitor-precompute   # the page's shipped result (real traffic, ≈ minutes; own LLMLAB_CACHE)

`monitor` reads the store chapter 9 writes (`sqlite:///<LLMLAB_CACHE>/mlflow/mlflow.db`, or LLMLAB_TRACKING_URI).
Its object: `traces`, `first`, `last`, `bucket`, the overall figures (`latency_p50_s`, `latency_p95_s`,
`input_tokens`, `output_tokens`, `cost_usd`, `error_rate`, `cache_hit_rate`, `rail_triggers`, …), `series` (the
same per time bucket), `costs` (per model and tier, with the price's source) and `projections`, and `notes`
(codes). `--drift` adds `{"drift": {...}}`: centroid distance, permutation p, topic mix and its shift.
`label-agreement` reads `<LLMLAB_CACHE>/llmops/labels.sqlite` (or `--labels-file`).
"""

from __future__ import annotations

import sys
from datetime import datetime

from engine.commands._common import print_obj


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    from engine.core.textinput import InputError

    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError("input.invalid", f"--since: not an ISO date/time: {text!r}") from exc


def cmd_monitor(args) -> int:
    from engine.llmops.monitoring import load_records, question_drift, summarize
    from engine.rag.tracing import tracking_uri

    records = load_records(limit=args.limit, since=_since(args.since))
    report = summarize(records, args.bucket, uri=tracking_uri())
    if args.json:
        print_obj(report.to_json(), True)
    else:
        o = report.overall
        print(f"{report.uri}: {report.n_traces} traces, {report.first} → {report.last}")
        if report.n_traces:
            print(
                f"  latency p50 {o.latency_p50_s:.3f} s, p95 {o.latency_p95_s:.3f} s · tokens in {o.input_tokens:,}"
                f" out {o.output_tokens:,} · cost ${o.cost_usd:.6f} · errors {o.errors} ({o.error_rate:.1%})"
            )
            rate = "—" if o.cache_hit_rate is None else f"{o.cache_hit_rate:.1%}"
            print(f"  cache hits {o.cache_hits}/{o.cache_lookups} ({rate}) · rails {o.rail_triggers}")
            for c in report.costs:
                cost = "unknown" if c.cost_usd is None else f"${c.cost_usd:.6f}"
                print(f"  {c.tier:9s} {c.model}: {c.calls} calls, {c.input_tokens:,}+{c.output_tokens:,} tok, {cost}")
        for b in report.series if args.series else []:
            s = b.stats
            p50 = "—" if s.latency_p50_s is None else f"{s.latency_p50_s:.3f} s"
            print(f"  {b.start.isoformat()}  n={s.n:4d}  p50 {p50}  errors {s.errors}  cache hits {s.cache_hits}")
        for note in report.notes:
            print(f"  note: {note}")
    if args.drift:
        drift = question_drift(records, embedder_name=args.embedder, permutations=args.permutations)
        if args.json:
            print_obj({"drift": drift.to_json()}, True)
        else:
            print(
                f"drift ({drift.embedder}): centroid distance {drift.centroid_distance:.4f} "
                f"(permutation p {drift.permutation_p:.3f}), topic shift {drift.topic_shift:.3f}"
            )
            for t in drift.topics:
                print(f"  {t.topic:20s} {t.reference:.2f} → {t.recent:.2f}")
    return 0


def cmd_label_agreement(args) -> int:
    from engine.llmops.human_eval import KINDS, LabelStore, agreement

    kinds = KINDS if args.kind == "all" else (args.kind,)
    learners = [x.strip() for x in args.learners.split(",") if x.strip()] if args.learners else None
    with LabelStore(args.labels_file) as store:
        for kind in kinds:
            report = agreement(store, kind, learners)
            if args.json:
                print_obj(report.to_json(), True)
                continue
            print(f"{kind}: {len(report.learners)} learners, {report.labels} labels")
            for p in report.pairs:
                k = p.kappa
                value = "undefined" if k.value is None else f"{k.value:.3f}"
                print(f"  Cohen {p.rater_a} vs {p.rater_b}: kappa {value} on {k.n_items} items ({k.code or 'ok'})")
            f = report.fleiss
            value = "undefined" if f.value is None else f"{f.value:.3f}"
            print(f"  Fleiss: kappa {value} on {f.n_items} items × {f.n_raters} raters ({f.code or 'ok'})")
            for r in report.vs_reference:
                acc = "—" if r.accuracy is None else f"{r.accuracy:.1%}"
                print(f"  {r.learner} vs reference: {acc} on {r.n_items} items")
            for note in report.notes:
                print(f"  note: {note}", file=sys.stderr)
    return 0


def cmd_monitor_precompute(args) -> int:
    from engine.commands._common import precompute_sections
    from engine.llmops.monitoring import shipped_monitoring

    return precompute_sections(args, "monitor-precompute", ("ch13_monitoring",), lambda _s, p: shipped_monitoring(p))


def register(sub) -> None:
    from engine.llmops.monitoring import BUCKETS, EMBEDDERS, MAX_TRACES, PERMUTATIONS

    p = sub.add_parser("monitor", help="ch.13: latency, tokens, cost, errors, cache hits, rails, drift of RAG traces")
    p.add_argument("--bucket", default="auto", choices=["auto", *BUCKETS])
    p.add_argument("--since", help="only traces from this ISO time on (UTC if no zone)")
    p.add_argument("--limit", type=int, default=MAX_TRACES, help="read at most this many of the newest traces")
    p.add_argument("--series", action="store_true", help="print the time series in text mode (always in --json)")
    p.add_argument("--drift", action="store_true", help="also measure drift of the questions (older vs newer half)")
    p.add_argument("--embedder", default="ko-morph", choices=list(EMBEDDERS))
    p.add_argument("--permutations", type=int, default=PERMUTATIONS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_monitor)

    pc = sub.add_parser(
        "monitor-precompute", help="ch.13: real traffic through the ch.9 pipeline -> assets/precomputed/ch13_monitoring"
    )
    pc.add_argument("--only", help="ch13_monitoring (the only section)")
    pc.add_argument("--quiet", action="store_true")
    pc.set_defaults(func=cmd_monitor_precompute)

    a = sub.add_parser("label-agreement", help="ch.13: agreement of human labels (Cohen's and Fleiss' kappa)")
    a.add_argument("--kind", default="all", choices=["all", "pairwise", "likert"])
    a.add_argument("--learners", help="comma-separated learner ids (default: everyone with labels)")
    a.add_argument("--labels-file", help="the labels SQLite file (default <LLMLAB_CACHE>/llmops/labels.sqlite)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_label_agreement)
