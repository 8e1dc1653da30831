"""What every CLI command shares: printing results and choosing the progress reporter.

JSON goes to stdout (one object per line with --json), progress to stderr, so output can be piped into other tools.
"""

from __future__ import annotations

import json

from engine.core.progress import ProgressFn, cli_progress, null_progress


def print_obj(obj, as_json: bool) -> None:
    """One result: a JSON line, or (for people) the text itself / indented JSON."""
    if as_json:
        print(json.dumps(obj, ensure_ascii=False), flush=True)
    else:
        print(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, indent=2), flush=True)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def emit_rows(rows: list[dict], as_json: bool, style: str = "table") -> None:
    """Rows as JSON lines, or for people: a header and aligned columns ("table") or `key=value` pairs ("pairs").
    Nested values (lists, dicts) appear only in the JSON."""
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return
    if style == "pairs":
        for row in rows:
            print("  ".join(f"{k}={_fmt(v)}" for k, v in row.items() if not isinstance(v, list | dict)), flush=True)
        return
    if not rows:
        print("(no rows)")
        return
    keys = [k for k in rows[0] if not isinstance(rows[0][k], dict | list)]
    print("  ".join(keys))
    for row in rows:
        print("  ".join(_fmt(row[k]) for k in keys))


def progress_for(quiet: bool) -> ProgressFn:
    """Progress lines on stderr, or nothing (with --json or --quiet)."""
    return null_progress if quiet else cli_progress
