"""Course scale: `load-app`, a class of simulated learners against a running app (engine.course.load_app).

python -m engine load-app --url http://127.0.0.1:8501 --sessions 30 --minutes 2 --json

One JSON object per action (`action`, `count`, `p50_s`, `p95_s`, `errors`; `heavy_train` is the heavy one), then a
final object with `sessions`, `errors`, `max_rss_bytes` (the server's process tree, sampled each second; null when
the app runs on another machine), `rss_samples` and up to ten `error_examples`.
"""

from __future__ import annotations

from engine.commands._common import emit_rows


def cmd_load_app(args) -> int:
    from engine.course.load_app import LearnerPath, run_load

    path = LearnerPath(page=args.page) if args.page else None
    report = run_load(
        args.url,
        args.sessions,
        args.minutes,
        path=path,
        heavy_sessions=args.heavy_sessions,
        think_s=args.think,
        ramp_s=args.ramp,
        seed=args.seed,
    )
    lines = report.lines()
    if not args.json:
        lines[-1] = {k: v for k, v in lines[-1].items() if k != "rss_samples"}
    emit_rows(lines, args.json, style="pairs")
    return 1 if report.errors else 0


def register(sub) -> None:
    p = sub.add_parser("load-app", help="course scale: N simulated learners (real Streamlit sessions) against an app")
    p.add_argument("--url", required=True, help="the app, e.g. http://127.0.0.1:8501")
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--heavy-sessions", type=int, default=1, help="learners that also start one training run")
    p.add_argument("--think", type=float, default=2.0, help="mean think time between actions, seconds")
    p.add_argument("--ramp", type=float, default=10.0, help="seconds over which the learners arrive")
    p.add_argument("--page", default=None, help="the chapter page's url path (default: mamba)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_load_app)
