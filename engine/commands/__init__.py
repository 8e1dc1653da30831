"""CLI subcommands, one module per chapter or area, discovered by `python -m engine`.

Each module defines `register(subparsers)` that adds its commands (with `set_defaults(func=...)`); a function
returns the process exit code. Modules are separate so chapters never edit the same file.
"""
