"""`python -m engine align`: chapter 4's toy RLHF runs (PPO vs DPO, reward hacking, the DPO β sweep).

    python -m engine align --method dpo,ppo --steps 60 --seed 0 --json

prints one JSON object per step and method: method, step, reward_mean, kl, loss, seconds (plus judge_mean,
length and method-specific numbers). Without --json, a readable line per step and a summary at the end.

    python -m engine align-precompute [--only sft,reward,race,hacking,beta]

runs each of the page's five demos once with its default settings and writes assets/precomputed/ch04_<section>.json
(what the page shows before a learner runs anything; engine/alignment/shipped.py).
With --track the run goes to MLflow (experiment llmlab-ch04: one child run per method, the preference data's
version) and every JSON line gets `run_id` (its method's run) and `tracking_uri`.
"""

from __future__ import annotations

import json
import math
import sys

CONTRACT = ("method", "step", "reward_mean", "kl", "loss", "seconds")
SECTIONS = ("sft", "reward", "race", "hacking", "beta")  # engine.alignment.shipped.SECTIONS (tested equal)


def _methods(text: str) -> tuple[str, ...]:
    from engine.alignment.runs import METHODS
    from engine.core.textinput import InputError

    methods = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise InputError("input.unknown_choice", name="--method", value=text, choices=",".join(METHODS))
    return methods


def _clean(row: dict) -> dict:
    out = {k: row[k] for k in CONTRACT if k in row}
    for k, v in row.items():
        if k not in out and k not in ("examples", "kind", "run"):
            out[k] = v
    return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in out.items()}


def cmd_align(args) -> int:
    from engine.alignment import runs
    from engine.llmops.tracking import track_run

    methods = _methods(args.method)
    params = {"experiment": args.experiment, "methods": ",".join(methods), "steps": args.steps, "seed": args.seed}
    params |= {"beta": args.beta, "kl_coef": args.kl_coef, "lr": args.lr}
    tracked = track_run(
        "ch04", f"align {args.experiment}", params, enabled=args.track, command="python -m engine align"
    )

    def emit(row: dict) -> None:
        if row.get("kind", "train") != "train":
            return
        if args.json:
            print(json.dumps({**_clean(row), **tracked.fields(row)}, ensure_ascii=False), flush=True)
        else:
            print(
                f"{row['method']:>12} step {row['step']:>4}  reward {row['reward_mean']:7.3f}  "
                f"judge {row.get('judge_mean', float('nan')):7.3f}  kl {row['kl']:7.3f}  loss {row['loss']:8.4f}  "
                f"{row['seconds'] * 1000:6.0f} ms",
                flush=True,
            )

    with tracked:
        on_row = tracked.tee(emit, by="run")
        if args.experiment == "race":
            logs = runs.race(
                methods, args.steps, args.seed, lr=args.lr, kl_coef=args.kl_coef, beta=args.beta, on_row=on_row
            )
        else:  # hacking: PPO with the KL penalty off and on
            logs = runs.reward_hacking(args.steps, args.seed, kl_coefs=(0.0, args.kl_coef), on_row=on_row)
        if args.track:
            _track_result(tracked, logs, args.seed)
    status = 0
    for s in runs.summary(logs):
        if s["status"] == "diverged":
            status = 1
        if s["steps"]:
            print(
                f"{s['run']}: {s['status']} after {s['steps']} steps · reward {s['reward_first']:.3f} → "
                f"{s['reward_last']:.3f} · judge {s['judge_first']:.3f} → {s['judge_last']:.3f} · "
                f"KL {s['kl_last']:.3f} · {s['seconds_per_step'] * 1000:.0f} ms/step"
                + (f" · {s['message']}" if s["message"] else ""),
                file=sys.stderr,
            )
        else:
            print(f"{s['run']}: {s['status']} · {s['message']}", file=sys.stderr)
    if tracked.warning_message:
        print(f"tracking: {tracked.warning_message}", file=sys.stderr)
    return status


def _track_result(tracked, logs: dict, seed: int) -> None:
    """The preference pairs' version (the toy setup is cached per seed: no second build) and each run's status
    (the same record as the page's runs: engine.llmops.demo.toy_preferences)."""
    from engine.llmops.demo import toy_preferences

    tracked.log_dataset(toy_preferences(seed))
    tracked.set_statuses({label: log.status for label, log in logs.items()})


def cmd_align_precompute(args) -> int:
    from engine.alignment import shipped
    from engine.commands._common import precompute_sections

    return precompute_sections(args, "align-precompute", shipped.SECTIONS, shipped.make, shipped.name)


def register(subparsers) -> None:
    p = subparsers.add_parser("align", help="toy RLHF: PPO vs DPO side by side, or reward hacking (chapter 4)")
    p.add_argument("--method", default="dpo,ppo", help="comma-separated: ppo, dpo (default both)")
    p.add_argument("--steps", type=int, default=60, help="steps per method (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beta", type=float, default=0.3, help="DPO β (default 0.3)")
    p.add_argument("--kl-coef", type=float, default=0.3, help="PPO KL penalty β (default 0.3)")
    p.add_argument("--lr", type=float, default=None, help="learning rate for both (default: each method's own)")
    p.add_argument(
        "--experiment",
        choices=["race", "hacking"],
        default="race",
        help="race: the methods side by side; hacking: PPO with KL off vs on (--kl-coef)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per step on stdout")
    p.add_argument("--track", action="store_true", help="log the runs to MLflow (llmlab-ch04); adds run_id to the JSON")
    p.set_defaults(func=cmd_align)

    p = subparsers.add_parser(
        "align-precompute", help="run chapter 4's demos once and write assets/precomputed/ch04_*.json for the page"
    )
    p.add_argument(
        "--only",
        default="",
        help="comma-separated sections (default all): " + ", ".join(SECTIONS),
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_align_precompute)
