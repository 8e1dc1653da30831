"""Chapter 15 commands: `agent` (run the agent on tasks) and `agent-eval` (the task suite, scored).

python -m engine agent --json --tasks-file F       one Korean task per line -> one JSON object per line:
                                                    task, answer, steps [{tool, arguments, observation_chars}],
                                                    seconds, error (null or a code; `message` says it in English)
python -m engine agent "17 곱하기 23은?" --trace    one task, the whole trace (thought, call, observation, tokens)
python -m engine agent-eval --split dev --json      success rate, steps, tokens, median latency, trajectory matches
python -m engine agent-eval --split heldout --save-precomputed   -> assets/precomputed/ch15_eval.json (the page's)
"""

from __future__ import annotations

import sys

from engine.commands._common import print_obj, progress_for

PRECOMPUTED = "ch15_eval"  # the held-out report (the evaluation section)
TRACES = "ch15_traces"  # the dev report, whose traces the loop section shows on a fresh page
MEMORY = "ch15_memory"


ROLE_HELP = "the serving role (default: instruct-large where installed, else instruct)"
ROUTE_HELP = "a router picks the tool when the first turn is not a usable call (auto: the server model)"
PLAN_HELP = "ask first for the question's parts and carry out a plan of two or more (auto: the server model)"


def _auto(value: str) -> bool | None:
    return {"auto": None, "on": True, "off": False}[value]


def _tools(names: str | None):
    from engine.agents.tools import default_tools

    return default_tools([n.strip() for n in names.split(",") if n.strip()] if names else None)


def cmd_agent(args) -> int:
    from engine.agents.evaluation import read_tasks_file
    from engine.agents.loop import run_agent

    tasks = read_tasks_file(args.tasks_file) if args.tasks_file else [args.task] if args.task else []
    if not tasks:
        print("error: give a task or --tasks-file F (one task per line)", file=sys.stderr)
        return 2
    tools = _tools(args.tools)
    failed = 0
    for task in tasks:
        try:
            run = run_agent(
                task,
                tools,
                mode=args.mode,
                role=args.role,
                max_steps=args.max_steps,
                route=_auto(args.route),
                plan=_auto(args.plan),
            )
            out = run.as_dict() if args.trace else run.contract()
        except Exception as exc:
            from engine.core.errors import UserError

            code = exc.code if isinstance(exc, UserError) else type(exc).__name__
            out = {"task": task, "answer": None, "steps": [], "seconds": 0.0, "error": code, "message": str(exc)}
        failed += out["error"] is not None
        print_obj(out, args.json or len(tasks) > 1)
    return 0 if failed == 0 else 1


def cmd_agent_eval(args) -> int:
    from engine.agents.evaluation import EvalReport, evaluate
    from engine.core.precomputed import save_precomputed

    command = f"python -m engine agent-eval --split {args.split} --mode {args.mode} --save-precomputed"
    name = PRECOMPUTED if args.split == "heldout" else TRACES
    rows = []

    def on_row(row) -> None:
        rows.append(row)
        if args.verbose:
            answer = (row.answer or "")[:80]
            print(
                f"{row.id} {'ok ' if row.success else 'BAD'} {row.seconds:6.1f}s {row.calls} {answer!r}",
                file=sys.stderr,
            )
        if args.save_precomputed:  # after every task, so a run cut short still leaves its finished rows
            partial = EvalReport(args.split, args.mode, list(rows))
            save_precomputed(name, {**partial.as_dict(), "complete": False}, command)

    report = evaluate(
        args.split,
        tools=_tools(args.tools),
        mode=args.mode,
        role=args.role,
        max_steps=args.max_steps,
        limit=args.limit,
        ids=[i.strip() for i in args.ids.split(",")] if args.ids else None,
        progress=progress_for(args.json or args.verbose),
        on_row=on_row,
        route=_auto(args.route),
        plan=_auto(args.plan),
    )
    from engine.agents.loop import default_role

    data = {**report.as_dict(), "complete": True, "role": args.role or default_role()}
    if args.save_precomputed:
        saved = save_precomputed(name, data, command)
        print(f"wrote assets/precomputed/{saved.name}.json", file=sys.stderr)
    if args.json:
        print_obj(data, True)
    else:
        s = data["summary"]
        print(
            f"{args.split} ({s['tasks']} tasks, {args.mode}): success {s['success_rate']:.2f}, "
            f"median {s['median_seconds']:.1f} s, steps {s['mean_steps']:.2f}, tokens {s['mean_tokens']:.0f}"
        )
        print("trajectory match: " + ", ".join(f"{k} {v:.2f}" for k, v in s["match_rates"].items()))
    return 0


def cmd_agent_memory(args) -> int:
    from engine.agents.memory import memory_demo

    data = {lang: {str(k): memory_demo(lang, k) for k in (1, 2, 3)} for lang in ("ko", "en")}
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        save_precomputed(MEMORY, data, "python -m engine agent-memory --save-precomputed")
        print(f"wrote assets/precomputed/{MEMORY}.json", file=sys.stderr)
    print_obj(data, args.json)
    return 0


def register(sub) -> None:
    from engine.agents.loop import MAX_STEPS_LIMIT, MODES

    p = sub.add_parser("agent", help="ch.15: run the tool-calling agent on a task (or one task per line of a file)")
    p.add_argument("task", nargs="?", help="one task (Korean); or use --tasks-file")
    p.add_argument("--tasks-file", help="a text file, one task per line")
    p.add_argument("--mode", choices=MODES, default="native", help="native tool calls or ReAct text")
    p.add_argument("--role", default=None, help=ROLE_HELP)
    p.add_argument("--max-steps", type=int, default=6, help=f"step limit, 1 to {MAX_STEPS_LIMIT}")
    p.add_argument("--tools", help="comma-separated tool names (default: calculator, constitution_search, sql_query)")
    p.add_argument("--route", choices=("auto", "on", "off"), default="auto", help=ROUTE_HELP)
    p.add_argument("--plan", choices=("auto", "on", "off"), default="auto", help=PLAN_HELP)
    p.add_argument("--trace", action="store_true", help="the whole trace instead of the contract's fields")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.set_defaults(func=cmd_agent)

    e = sub.add_parser("agent-eval", help="ch.15: score the agent on the task suite (dev or heldout)")
    e.add_argument("--split", choices=("dev", "heldout"), default="dev")
    e.add_argument("--mode", choices=MODES, default="native")
    e.add_argument("--role", default=None, help=ROLE_HELP)
    e.add_argument("--max-steps", type=int, default=6)
    e.add_argument("--tools", help="comma-separated tool names (default: the default tools)")
    e.add_argument("--route", choices=("auto", "on", "off"), default="auto", help=ROUTE_HELP)
    e.add_argument("--plan", choices=("auto", "on", "off"), default="auto", help=PLAN_HELP)
    e.add_argument("--limit", type=int, help="only the first N tasks")
    e.add_argument("--ids", help="only these task ids, comma-separated (e.g. d01,d05)")
    e.add_argument("--verbose", action="store_true", help="one line per task on stderr")
    e.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    e.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{PRECOMPUTED}.json")
    e.set_defaults(func=cmd_agent_eval)

    m = sub.add_parser("agent-memory", help="ch.15: window vs running-summary memory on the demo conversation")
    m.add_argument("--json", action="store_true", help="one JSON object on stdout")
    m.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{MEMORY}.json")
    m.set_defaults(func=cmd_agent_memory)
