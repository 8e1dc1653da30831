"""Chapter 15 commands (tools, sandbox, AutoGen, safety): `agent-injection`, `agent-sandbox`, `agent-autogen`.

python -m engine agent-injection                       every planted variant, without and with the defence
python -m engine agent-injection --variant ko_ignore   one variant
python -m engine agent-injection --save-precomputed    -> assets/precomputed/ch15_injection.json (the page's)
python -m engine agent-sandbox "print(2 ** 10)"        run code in the sandbox, print the typed result
python -m engine agent-autogen code "Print the sum of the squares of 1 to 10."   one AutoGen flow, its transcript
"""

from __future__ import annotations

import sys

from engine.commands._common import print_obj

PRECOMPUTED = "ch15_injection"


def cmd_agent_injection(args) -> int:
    from engine.agents.injection import measure

    def progress(text: str) -> None:
        print(f"running {text} ...", file=sys.stderr, flush=True)

    report = measure(args.variant or None, progress=progress).as_dict()
    if args.save_precomputed:
        from engine.core.precomputed import save_precomputed

        saved = save_precomputed(PRECOMPUTED, report, "python -m engine agent-injection --save-precomputed")
        print(f"wrote assets/precomputed/{saved.name}.json", file=sys.stderr)
    if args.json:
        print_obj(report, True)
    else:
        for r in report["runs"]:
            mark = "TOOK EFFECT" if r["succeeded"] else ("attempted" if r["attempted"] else "resisted")
            side = "defended  " if r["defended"] else "undefended"
            print(f"{r['variant']:<10} {side} {mark:<11} {r['seconds']:>6.1f}s  {r['error'] or r['answer'][:70]!r}")
        print(
            f"success rate without defence {report['success_rate_without_defence']}, "
            f"with defence {report['success_rate_with_defence']} ({report['variants']} variants, "
            f"{report['failed_runs']} runs failed)"
        )
    return 0


def cmd_agent_sandbox(args) -> int:
    from dataclasses import asdict

    from engine.agents.sandbox import run_python

    result = run_python(args.code, timeout_s=args.timeout)
    out = asdict(result)
    out["files"] = {k: len(v) for k, v in result.files.items()}  # sizes; bytes are not JSON
    print_obj(out, args.json)
    return 0 if result.ok else 1


def cmd_agent_autogen(args) -> int:
    from engine.agents import autogen_flows as flows

    def show(turn) -> None:
        if not args.json:
            print(f"--- {turn.speaker} [{turn.kind}] {turn.seconds:.1f}s\n{turn.content}", flush=True)

    common = {"max_turns": args.max_turns, "on_turn": show}
    if args.flow == "code":
        result = flows.code_flow(args.task, **common)
    elif args.flow == "rag":
        result = flows.rag_flow(args.task, **common)
    elif args.flow in ("group_round_robin", "group_selector"):
        result = flows.group_chat_flow(args.task, selector=args.flow == "group_selector", **common)
    else:
        result = flows.approval_flow(args.task, flows.scripted_replies(args.reply or []), **common)
    if args.json:
        print_obj(result.as_dict(), True)
    else:
        print(f"stopped: {result.stop_reason} ({result.seconds:.1f}s, {result.tokens} tokens)")
    return 0 if result.error is None else 1


def register(sub) -> None:
    from engine.agents.autogen_flows import FLOWS, MAX_TURNS_RANGE
    from engine.agents.injection import VARIANT_IDS

    p = sub.add_parser("agent-injection", help="ch.15: indirect prompt injection, without and with the defence")
    p.add_argument("--variant", action="append", choices=VARIANT_IDS, help="one variant (repeatable; default all)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--save-precomputed", action="store_true", help=f"write assets/precomputed/{PRECOMPUTED}.json")
    p.set_defaults(func=cmd_agent_injection)

    s = sub.add_parser("agent-sandbox", help="ch.15: run Python in the sandbox (no network, limits, temp dir)")
    s.add_argument("code", help="the program")
    s.add_argument("--timeout", type=float, default=10.0, help="wall-clock seconds (0.5-60)")
    s.add_argument("--json", action="store_true", help="one JSON object on stdout")
    s.set_defaults(func=cmd_agent_sandbox)

    a = sub.add_parser("agent-autogen", help="ch.15: one of the book's AutoGen flows on the local model")
    a.add_argument("flow", choices=FLOWS)
    a.add_argument("task")
    a.add_argument("--max-turns", type=int, default=4, help=f"message limit {MAX_TURNS_RANGE}")
    a.add_argument("--reply", action="append", help="approval flow: the human's replies in order (then APPROVE)")
    a.add_argument("--json", action="store_true", help="the transcript as one JSON object")
    a.set_defaults(func=cmd_agent_autogen)
