"""Chapter 13 commands: tracked runs and the model registry (engine.llmops.tracking, engine.llmops.registry).

    python -m engine runs [--chapter ch04] [--limit 50] --json        # one object per run, newest first
    python -m engine runs-compare --runs ID1,ID2 --metric loss --json  # curves to overlay, then the params table
    python -m engine register-model --run RUN_ID --name text2sql-chat [--path adapter] --json
    python -m engine promote --name text2sql-chat --version 2 --alias champion --who kim --why "EX 4/60 > 2/60"
    python -m engine registered-models [--name text2sql-chat] --json   # models, or versions + promotions
    python -m engine runs-precompute [--save-precomputed]              # the page's shipped runs and registry

Training commands log with `--track` (hf-train, align, finetune, text2sql-finetune, mnr-train) and then add
`run_id` and `tracking_uri` to their JSON lines. Everything reads the store `LLMLAB_TRACKING_URI` names (default:
`<LLMLAB_CACHE>/mlflow/mlflow.db`); `runs` without --json ends with the command that opens it in MLflow's UI.
"""

from __future__ import annotations

import getpass
import sys

from engine.commands._common import emit_rows, print_obj


def cmd_runs(args) -> int:
    from engine.llmops.tracking import list_runs, mlflow_ui_command, tracking_uri

    runs = list_runs(args.chapter, args.limit)
    if args.json:
        for run in runs:
            print_obj({**run.as_dict(), "tracking_uri": tracking_uri()}, True)
    else:
        rows = []
        for run in runs:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.metrics.items())[:4])
            data = run.datasets[0].label if run.datasets else "—"
            rows.append(
                {
                    "run_id": run.run_id,
                    "chapter": run.chapter,
                    "name": run.name,
                    "status": run.status,
                    "started": run.started.strftime("%Y-%m-%d %H:%M:%S"),
                    "data": data,
                    "metrics": shown,
                }
            )
        emit_rows(rows, False)
        print(f"store: {tracking_uri()}\nopen it: {mlflow_ui_command()}", file=sys.stderr)
    return 0


def cmd_runs_compare(args) -> int:
    from engine.llmops.tracking import metric_curves, params_table

    ids = [r.strip() for r in args.runs.split(",") if r.strip()]
    keys = [k.strip() for k in args.keys.split(",") if k.strip()] if args.keys else [args.metric]
    for curve in metric_curves(ids, keys):
        row = {"kind": "curve", "run_id": curve.run_id, "name": curve.run_name, "key": curve.key}
        row.update(steps=curve.steps, values=curve.values)
        print_obj(row, args.json)
    table = params_table(ids, args.metric)
    print_obj(
        {"kind": "params", "metric": table.metric, "varying": table.varying, "constant": table.constant}
        | {"rows": table.rows},
        args.json,
    )
    return 0


def cmd_register_model(args) -> int:
    from engine.llmops.registry import register_model

    info = register_model(args.name, args.run, args.path, args.description or "")
    print_obj(info.as_dict(), args.json)
    return 0


def cmd_promote(args) -> int:
    from engine.llmops.registry import promote

    done = promote(args.name, args.version, args.alias, args.who or _user(), args.why)
    print_obj({**done.as_dict(), "uri": f"models:/{done.name}@{done.alias}"}, args.json)
    return 0


def cmd_models(args) -> int:
    from engine.llmops.registry import model_versions, promotions, registered_models

    if not args.name:
        for model in registered_models():
            print_obj(model, args.json)
        return 0
    for version in model_versions(args.name):
        print_obj({"kind": "version", **version.as_dict()}, args.json)
    for p in promotions(args.name):
        print_obj({"kind": "promotion", **p.as_dict()}, args.json)
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


RUNS_COMMAND = "python -m engine runs-precompute --save-precomputed"


def cmd_runs_precompute(args) -> int:
    from engine.commands._common import progress_for
    from engine.llmops.snapshot import runs_snapshot

    data = runs_snapshot(progress=progress_for(args.quiet))
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        saved = save_precomputed("ch13_runs", data, RUNS_COMMAND)
        print(f"{saved.name}: written ({RUNS_COMMAND})", file=sys.stderr)
    if args.json:
        print_obj(data, True)
    else:
        for r in data["runs"]:
            print(f"{r['run_id'][:8]}  β={r['params'].get('beta')}  loss={r['metrics'].get('loss', float('nan')):.4f}")
        for p in data["registry"]["promotions"]:
            print(f"{p['alias']:10s} v{p['version']}  {p['why']}")
    return 0


def register(sub) -> None:
    r = sub.add_parser("runs", help="ch.13: tracked training runs in the MLflow store, newest first")
    r.add_argument("--chapter", default=None, help="ch03, ch04, ch05, ch06, ch11 (default: all)")
    r.add_argument("--limit", type=int, default=50)
    r.add_argument("--json", action="store_true", help="one JSON object per run")
    r.set_defaults(func=cmd_runs)

    c = sub.add_parser("runs-compare", help="ch.13: metric curves of runs (overlay) and parameters vs a metric")
    c.add_argument("--runs", required=True, help="comma-separated run ids")
    c.add_argument("--metric", default="loss", help="the final metric of the parameters table (default loss)")
    c.add_argument("--keys", default="", help="comma-separated curves to return (default: --metric)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_runs_compare)

    g = sub.add_parser("register-model", help="ch.13: register a run's artifact folder as a new model version")
    g.add_argument("--run", required=True, help="the run id (a training command's `run_id` with --track)")
    g.add_argument("--name", required=True, help="the registered model's name, e.g. text2sql-chat")
    g.add_argument("--path", default="adapter", help="the artifact folder in the run (default: adapter)")
    g.add_argument("--description", default="")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_register_model)

    p = sub.add_parser("promote", help="ch.13: point an alias (champion/challenger) at a version, with who and why")
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True, type=int)
    p.add_argument("--alias", required=True, choices=["champion", "challenger"])
    p.add_argument("--who", default=None, help="who decides (default: the login name)")
    p.add_argument("--why", required=True, help="the reason, recorded on the version (e.g. the measured gain)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)

    m = sub.add_parser("registered-models", help="ch.13: registered models; --name: versions, aliases, promotions")
    m.add_argument("--name", default=None)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("runs-precompute", help="ch.13: the page's shipped runs (toy DPO β sweep) and registry")
    s.add_argument("--save-precomputed", action="store_true", help="write assets/precomputed/ch13_runs.json")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    s.set_defaults(func=cmd_runs_precompute)
