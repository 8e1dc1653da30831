"""Small results shipped with the app, so a section whose demo needs a run never opens empty.

A section that needs a training run (chapters 4, 5) shows a result computed once on the reference machine,
labelled as such, with "run it yourself" beside it. Each file records the exact command that made it, so anyone
can make it again: `python -m engine <command>` writes `assets/precomputed/<name>.json`.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from typing import Any

from engine.core.assets import asset

FOLDER = "precomputed"


@dataclass(frozen=True)
class Precomputed:
    name: str
    data: Any  # what the section draws: rows, a curve, a table (plain JSON)
    command: str  # the command that made it, e.g. "python -m engine alignment-sft --steps 30 --save-precomputed"
    made: str  # ISO date
    machine: str  # "x86_64, 2 cores" - where the figures come from


def path_of(name: str):
    return asset(FOLDER, f"{name}.json")


def load_precomputed(name: str) -> Precomputed | None:
    """The shipped result `name`, or None when there is none (the section then only offers the run)."""
    path = path_of(name)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Precomputed(name, raw["data"], raw["command"], raw["made"], raw.get("machine", ""))


def save_precomputed(name: str, data: Any, command: str) -> Precomputed:
    """Write a shipped result (JSON, sorted keys, so a regenerated file diffs cleanly)."""
    import os

    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    made = time.strftime("%Y-%m-%d")
    path = path_of(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"name": name, "command": command, "made": made, "machine": machine, "data": data}
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return Precomputed(name, data, command, made, machine)
