"""Progress reporting for long work: one callback the page turns into st.progress and the CLI into a bar.

A callback returns nothing; to cancel, it raises `Cancelled` (or the caller's own `should_stop` returns True).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

# fraction in [0, 1], a short human message
ProgressFn = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised when the user cancels a long run; finished partial results stay with the caller."""


def null_progress(fraction: float, message: str) -> None:
    """The default: report nothing."""


def cli_progress(fraction: float, message: str) -> None:
    """A one-line progress bar on stderr, so --json output on stdout stays clean."""
    width = 30
    done = round(max(0.0, min(1.0, fraction)) * width)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {fraction:5.0%} {message[:60]:<60}")
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()
