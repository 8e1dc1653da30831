"""Run every benchmark module and write bench-results/bench.json and bench-results/bench.md.

    python -m tests.bench.run_bench               # all tests/bench/bench_*.py (what `make bench` runs)
    python -m tests.bench.run_bench foundation    # only bench_foundation.py

Each module has `run() -> list[dict]`; a row has at least bench, metric, value, unit and may add ours,
reference, ratio, goal and ok. Benchmarks report numbers, they are not tests: a missed goal is shown (and listed
at the end) but only a module that crashes makes the exit code non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REQUIRED = ("bench", "metric", "value", "unit")
COLUMNS = ("bench", "metric", "value", "unit", "reference", "ratio", "goal", "ok")


def discover(only: list[str] | None = None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in only}
        unknown = wanted - set(names)
        if unknown:
            raise SystemExit(f"no such benchmark module: {', '.join(sorted(unknown))} (have {', '.join(names)})")
        names = [n for n in names if n in wanted]
    return names


def _meminfo_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict:
    try:
        import torch

        torch_version, threads = torch.__version__, torch.get_num_threads()
    except ImportError:
        torch_version, threads = None, None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": _meminfo_gib(),
        "load_average": _load_average(),  # 1/5/15-minute; far above the core count = numbers are not comparable
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch_version,
        "torch_threads": threads,
        "git_commit": _git_commit(),
    }


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run_module(name: str) -> tuple[list[dict], float, str | None]:
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"tests.bench.{name}")
        rows = list(module.run())
    except Exception:
        return [], time.perf_counter() - start, traceback.format_exc()
    seconds = time.perf_counter() - start
    bad = [r for r in rows if not isinstance(r, dict) or any(k not in r for k in REQUIRED)]
    if bad:
        return rows, seconds, f"{name}: rows without {', '.join(REQUIRED)}: {bad[:3]}"
    return rows, seconds, None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✅" if value else "❌"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _module_note(name: str, info: dict) -> str:
    return f"`{name}` {info['seconds']} s" + ("" if info["ok"] else " (crashed)")


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"`{report['command']}` · {report['timestamp']} · commit {m.get('git_commit') or '?'}",
        "",
        f"{m['cpu']} · {m['usable_cores']} of {m['cores']} cores · {m['ram_gib']} GiB RAM · torch {m['torch']} "
        f"({m['torch_threads']} threads) · Python {m['python']} · load average at start {m['load_average']}",
        "",
        "Modules: " + ", ".join(_module_note(n, v) for n, v in report["modules"].items()),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |" for row in report["rows"]]
    if report["errors"]:
        lines += ["", "## Errors", ""]
        lines += [f"- `{name}`: {err.strip().splitlines()[-1]}" for name, err in report["errors"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run_bench", description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", help="module names (bench_foundation or foundation); default all")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="output folder")
    parser.add_argument("--threads", type=int, help="torch/OpenMP threads for in-process work (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        # On a machine shared with other jobs an oversubscribed OpenMP pool spin-waits; one thread per job is
        # then the honest setting. Set before any module imports torch's kernels.
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(args.threads)

    names = discover(args.only)
    report = {
        "command": " ".join(["python -m tests.bench.run_bench", *(argv if argv is not None else sys.argv[1:])]),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "modules": {},
        "errors": {},
        "rows": [],
    }
    for name in names:
        print(f"== {name}", flush=True)
        load_before = _load_average()
        rows, seconds, error = run_module(name)
        report["modules"][name] = {
            "seconds": round(seconds, 1),
            "rows": len(rows),
            "ok": error is None,
            "load_average": {"start": load_before, "end": _load_average()},
        }
        report["rows"] += rows
        for row in rows:
            mark = {True: "ok  ", False: "MISS", None: "    "}[row.get("ok")]
            goal = f"  (goal {row['goal']})" if row.get("goal") else ""
            print(f"  {mark} {row['metric']}: {_cell(row['value'])} {row['unit']}{goal}", flush=True)
        if error:
            report["errors"][name] = error
            print(error, file=sys.stderr, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "bench.md").write_text(to_markdown(report), encoding="utf-8")
    missed = [r["metric"] for r in report["rows"] if r.get("ok") is False]
    print(
        f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}"
        + (f"; goals missed: {len(missed)}" if missed else "")
    )
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
