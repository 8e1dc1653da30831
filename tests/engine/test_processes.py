"""engine.core.processes: a child started from a short-lived thread (a Streamlit script run) outlives that thread."""

from __future__ import annotations

import subprocess
import threading
import time

from engine.core.processes import spawn_owned


def _from_a_thread(start) -> subprocess.Popen:
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("p", start(["sleep", "30"])))
    t.start()
    t.join()  # the "script run" is over
    time.sleep(0.5)
    return box["p"]


def test_child_outlives_the_thread_that_started_it():
    proc = _from_a_thread(spawn_owned)
    try:
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_plain_pdeathsig_would_have_killed_it():
    # the bug this module fixes: PR_SET_PDEATHSIG fires when the parent *thread* ends
    from engine.core.processes import _die_with_parent

    proc = _from_a_thread(lambda cmd: subprocess.Popen(cmd, preexec_fn=_die_with_parent))
    assert proc.wait(timeout=5) != 0
