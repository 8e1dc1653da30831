"""`python -m engine <command>`: the CLI used by instructors, benchmarks and checks.

JSON goes to stdout, progress to stderr, so `--json` output can be piped straight into other tools.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="LLM Practice Lab engine CLI")
    sub = p.add_subparsers(dest="command", required=True)

    # Every command lives in engine/commands/<area>.py with register(subparsers); _private modules are helpers.
    import engine.commands

    for info in pkgutil.iter_modules(engine.commands.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"engine.commands.{info.name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # the CLI answers with one clear line, not a traceback
        from engine.core.textinput import InputError
        from engine.models import ModelUnavailable
        from engine.serving import ModelServerError

        if isinstance(exc, ModelUnavailable | ModelServerError | InputError | ValueError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
