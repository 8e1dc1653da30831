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


def precompute_sections(args, command: str, known, make, name=lambda section: section) -> int:
    """The `--only a,b` loop every `*-precompute` command shares: check the names, run each section with the page's
    defaults (`make(section, progress)`), write assets/precomputed/<name(section)>.json recording its own command."""
    import sys

    from engine.core.precomputed import save_precomputed
    from engine.core.textinput import InputError

    known = tuple(known)
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else known
    if not sections or any(s not in known for s in sections):
        raise InputError("input.unknown_choice", name="--only", value=args.only, choices=",".join(known))
    for section in sections:
        line = f"python -m engine {command} --only {section}"
        saved = save_precomputed(name(section), make(section, progress_for(args.quiet)), line)
        print(f"{saved.name}: written ({line})", file=sys.stderr)
    return 0
