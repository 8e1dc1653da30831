"""Child processes that live as long as this process, and not longer (llama.cpp servers, the capstone's API).

Linux's PR_SET_PDEATHSIG sends the child a signal when its parent *thread* ends, not its parent process. Streamlit
runs every script run in a new thread that ends with the run, so a server started from a page died a moment after
the page finished drawing (measured: `tests/engine/test_processes.py`), and the next click started it again. Here
every such child is started from one long-lived thread (a one-worker executor that lives until the process exits):
the signal then means what it should — "this Python process is gone".
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmlab-spawner")


def _die_with_parent() -> None:  # runs in the child before exec (Linux only)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn_owned(cmd: list[str], **popen_kwargs) -> subprocess.Popen:
    """`subprocess.Popen(cmd, **popen_kwargs)` from the long-lived thread; the child gets SIGTERM when we exit."""
    if sys.platform.startswith("linux"):
        popen_kwargs["preexec_fn"] = _die_with_parent
    return _spawner.submit(subprocess.Popen, cmd, **popen_kwargs).result()
