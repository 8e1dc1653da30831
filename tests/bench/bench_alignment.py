"""Chapter 4 goals, measured (a benchmark, not a timed test): `make bench` collects `run()`.

- both toy runs raise the mean reward (mean of the last fifth of the steps above the first fifth) within 60 s;
- seconds per step of each method;
- reward hacking: with the KL penalty off, the proxy reward goes up while the held-out judge goes down.

    .venv/bin/python -m tests.bench.bench_alignment      # prints the rows as JSON lines
"""

from __future__ import annotations

import json
import time

STEPS = 60
SEED = 0


def run() -> list[dict]:
    from engine.alignment import runs
    from engine.alignment.toy import ToyConfig, toy_setup

    rows: list[dict] = []
    start = time.perf_counter()
    toy_setup(ToyConfig(seed=SEED))
    setup_seconds = time.perf_counter() - start
    logs = runs.race(("ppo", "dpo"), STEPS, SEED)
    race_seconds = time.perf_counter() - start  # setup + both runs, as a learner waits for them
    rows.append(
        {
            "bench": "alignment.race",
            "metric": "wall_seconds_both_methods",
            "value": round(race_seconds, 2),
            "unit": "s",
            "goal": "<= 60",
            "ok": race_seconds <= 60,
        }
    )
    rows.append(
        {
            "bench": "alignment.race",
            "metric": "toy_setup_seconds",
            "value": round(setup_seconds, 2),
            "unit": "s",
            "goal": "part of the 60 s",
            "ok": True,
        }
    )
    for s in runs.summary(logs):
        m = s["run"]
        raised = s["status"] == "finished" and s["reward_last"] > s["reward_first"]
        rows += [
            {
                "bench": f"alignment.{m}",
                "metric": "reward_first_fifth",
                "value": round(s["reward_first"], 4),
                "unit": "proxy reward",
                "goal": "baseline",
                "ok": True,
            },
            {
                "bench": f"alignment.{m}",
                "metric": "reward_last_fifth",
                "value": round(s["reward_last"], 4),
                "unit": "proxy reward",
                "goal": "> first fifth",
                "ok": raised,
            },
            {
                "bench": f"alignment.{m}",
                "metric": "seconds_per_step",
                "value": round(s["seconds_per_step"], 4),
                "unit": "s",
                "goal": "reported",
                "ok": True,
            },
            {
                "bench": f"alignment.{m}",
                "metric": "kl_last",
                "value": round(s["kl_last"], 4),
                "unit": "nats",
                "goal": "reported",
                "ok": True,
            },
        ]
    hack = runs.summary(runs.reward_hacking(STEPS, SEED, kl_coefs=(0.0, 0.5)))
    off, on = hack
    rows += [
        {
            "bench": "alignment.hacking",
            "metric": "kl_off_reward_first_to_last",
            "value": [round(off["reward_first"], 3), round(off["reward_last"], 3)],
            "unit": "proxy reward",
            "goal": "goes up",
            "ok": off["reward_last"] > off["reward_first"],
        },
        {
            "bench": "alignment.hacking",
            "metric": "kl_off_judge_first_to_last",
            "value": [round(off["judge_first"], 3), round(off["judge_last"], 3)],
            "unit": "judge score",
            "goal": "goes down",
            "ok": off["judge_last"] < off["judge_first"],
        },
        {
            "bench": "alignment.hacking",
            "metric": "kl_on_judge_first_to_last (β=0.5)",
            "value": [round(on["judge_first"], 3), round(on["judge_last"], 3)],
            "unit": "judge score",
            "goal": "reported",
            "ok": True,
        },
    ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row, ensure_ascii=False))
