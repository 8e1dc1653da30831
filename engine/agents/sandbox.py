"""A Python sandbox for code an agent writes: a child process with limits, a fresh directory, and no network.

The model's code is untrusted. It runs as `python -I -B -c <guard> <dir>` (isolated mode: no PYTHON* variables, no
user site, the current directory not on sys.path; no .pyc writes) in a fresh temporary directory, with:

- resource limits (set in the child before exec): RLIMIT_CPU (seconds of CPU, then SIGXCPU/SIGKILL), RLIMIT_AS
  (address space: a memory bomb gets MemoryError or is killed), RLIMIT_FSIZE (no file over the limit), RLIMIT_NOFILE,
  RLIMIT_NPROC (only binds for a non-root user; as root the kernel ignores it, so the guard below denies fork);
- a wall-clock timeout: the child leads its own process group, killed as a group (SIGKILL) at the deadline;
- an output cap: stdout and stderr are read as they come, the first `max_output` bytes kept, and the child killed
  once it has written 4x the cap (`while True: print(...)` stops in milliseconds, not at the timeout);
- an environment of a few fixed variables (PATH, HOME and TMPDIR = the sandbox, one BLAS thread) — none of ours;
- a guard (a `sys.addaudithook` hook installed before the user code is even compiled) that denies: socket
  connect/bind/sendto/getaddrinfo and name lookups; subprocess, os.system, exec*, spawn*, fork, kill; importing
  `ctypes`, `_posixsubprocess` or `cffi` (they reach C code no hook sees: ctypes.memmove writes any memory, the
  hook included; an ImportError, so numpy, which tries ctypes, still imports); chdir (so a relative path is
  always relative to the sandbox); symlinks and hard links; and opening for writing, creating,
  renaming, removing or chmod-ing any path outside the sandbox directory (or with a `..` in it), sqlite files
  outside it, and SQLite extensions;
- and, as defence in depth when the machine allows it, `unshare --net`: a network namespace with only a down
  loopback, so even code that got past the guard has no network. Detected once (`network_isolation()`), never
  required.

What this is not: audit hooks are not a security boundary in CPython's own words, and C extensions that write
files with their own `fopen` are not seen. The kernel-level walls here are the limits and the network namespace;
a hardened deployment adds a separate user, a read-only mount namespace or a container. Dropping to `nobody` is not
done here because this machine's interpreter lives under /root (mode 700), which `nobody` cannot read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.agents.tool import Tool, ToolOutput

MAX_CODE_CHARS = 20_000
TIMEOUT_RANGE = (0.5, 60.0)  # seconds of wall time
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CPU_S = 5
DEFAULT_MEMORY_MB = 512  # address space: Python + numpy import need ~350 MB of it
DEFAULT_MAX_OUTPUT = 20_000  # bytes of stdout (and, separately, stderr) kept
MAX_FILE_BYTES = 5_000_000  # RLIMIT_FSIZE: one file the code writes
MAX_OPEN_FILES = 64
MAX_PROCESSES = 64  # RLIMIT_NPROC (threads count too; binds only for non-root)
MAX_RETURNED_FILES = 20
MAX_RETURNED_BYTES = 1_000_000  # contents of the files the code wrote that come back with the result
KILLED_REASONS = ("timeout", "cpu", "memory", "output", "signal")

# Runs in the child before the user's code. The hook keeps everything it needs as default arguments bound when it
# is defined, so the user cannot swap it out through module globals or builtins (os.stat = ..., builtins.any = ...);
# the hook object itself is unreachable: its name is deleted and gc.get_objects/get_referrers (the only way to find
# it again) are denied, as are tracing/profiling hooks that could edit its locals and replacing its __code__.
# Paths are only trusted as exact str/bytes/int (a PathLike could answer differently the second time it is asked).
# The user's code is read and compiled before the hook goes in, then runs with a fresh globals dict.
GUARD = r"""
import sys, os
_ROOT = os.path.realpath(sys.argv[1])
_SRC = open(os.path.join(_ROOT, "main.py"), encoding="utf-8").read()
_CODE = compile(_SRC, "main.py", "exec")
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_DENY = frozenset((
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.startfile", "os.chdir", "os.chroot",
    "os.symlink", "os.link", "os.mkfifo", "os.mknod", "os.setuid", "os.setgid", "webbrowser.open",
    "ctypes.dlsym", "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.call_function", "ctypes.string_at",
    "ctypes.wstring_at", "ctypes.set_errno", "ctypes.set_exception",
    "sqlite3.enable_load_extension", "sqlite3.load_extension",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
    "sys._current_frames", "sys._current_exceptions", "code.__new__", "function.__new__",
))
_BANNED_IMPORTS = frozenset(("_posixsubprocess", "ctypes", "_ctypes", "cffi", "_cffi_backend", "_gdbm", "_dbm"))
_PATH_EVENTS = (  # (event, indices of its path arguments), checked against the root; a tuple: nothing to mutate
    ("os.rename", (0, 1)), ("os.replace", (0, 1)), ("os.remove", (0,)), ("os.rmdir", (0,)), ("os.mkdir", (0,)),
    ("os.chmod", (0,)), ("os.chown", (0,)), ("os.truncate", (0,)), ("os.utime", (0,)), ("os.chflags", (0,)),
    ("os.setxattr", (0,)), ("os.removexattr", (0,)), ("shutil.rmtree", (0,)), ("shutil.copyfile", (1,)),
    ("shutil.copymode", (1,)), ("shutil.copystat", (1,)), ("shutil.copytree", (1,)), ("shutil.move", (1,)),
)


def _hook(event, args, _root=_ROOT, _deny=_DENY, _banned=_BANNED_IMPORTS, _paths=_PATH_EVENTS, _write=_WRITE,
          _stat=os.stat, _str=str, _bytes=bytes, _int=int, _type=type, _len=len, _function=type(lambda: 0),
          _PermissionError=PermissionError, _ImportError=ImportError, _OSError=OSError):
    def where(p):
        # an absolute, '..'-free text path for p (relative to the root, the only working directory), or None
        if _type(p) is _int:
            return _root + "/<fd>"
        if _type(p) is _bytes:
            p = p.decode("utf-8", "surrogateescape")
        elif _type(p) is not _str:
            return None
        if not p.startswith("/"):
            p = _root + "/" + p
        parts = [x for x in p.split("/") if x != "" and x != "."]
        if ".." in parts:
            return None
        return "/" + "/".join(parts)

    def inside(p):
        w = where(p)
        return w is not None and (w == _root or w.startswith(_root + "/"))

    def shown(p):
        return repr(p) if _type(p) in (_str, _bytes) else "a path object"

    if event in _deny:
        raise _PermissionError("sandbox: " + event + " is not allowed")
    if event == "import" and args[0] in _banned:
        # ImportError, not PermissionError: numpy imports ctypes inside `try: ... except ImportError` and works on
        raise _ImportError("sandbox: import " + args[0] + " is not allowed")
    if event == "ctypes.dlopen" and args[0] is not None:
        raise _PermissionError("sandbox: loading a native library is not allowed")
    if event == "object.__setattr__" and _type(args[0]) is _function and args[1] == "__code__":
        code = args[0].__code__
        if code.co_name == "_hook" and code.co_filename == "<string>":
            raise _PermissionError("sandbox: the guard cannot be changed")
        return
    if event == "open":
        path, mode, flags = args
        writing = False
        if mode is not None:
            for c in _str(mode):
                if c in "wax+":
                    writing = True
        if _type(flags) is _int and flags & _write:
            writing = True
        if writing and not inside(path):
            raise _PermissionError("sandbox: writing outside the sandbox directory is not allowed: " + shown(path))
        if not writing and _type(path) in (_str, _bytes) and not inside(path):
            # a directory opened outside would serve as dir_fd= for a relative open the hook cannot place
            try:
                is_dir = (_stat(path).st_mode & 0o170000) == 0o040000
            except _OSError:
                is_dir = False
            if is_dir:
                raise _PermissionError("sandbox: opening a directory outside the sandbox is not allowed")
        return
    if event == "sqlite3.connect":
        db = args[0]
        if db not in (":memory:", b":memory:", "", b"") and not inside(db):
            raise _PermissionError("sandbox: sqlite files live in the sandbox directory only")
        return
    for name, indices in _paths:
        if name == event:
            for i in indices:
                if i < _len(args) and not inside(args[i]):
                    raise _PermissionError("sandbox: " + event + " outside the sandbox directory is not allowed")


sys.addaudithook(_hook)
del _hook, _SRC
sys.argv = ["main.py"]
sys.path.insert(0, _ROOT)
exec(_CODE, {"__name__": "__main__", "__builtins__": __builtins__, "__file__": "main.py"})
"""


@dataclass(frozen=True)
class SandboxResult:
    stdout: str  # at most max_output bytes, decoded (a cut is noted at the end)
    stderr: str
    returncode: int | None  # None when it never exited by itself (killed by us)
    timed_out: bool  # the wall-clock limit killed it
    killed_reason: str | None  # None, or one of KILLED_REASONS
    seconds: float
    files: dict[str, bytes] = field(default_factory=dict)  # what the code wrote or changed there (≤ 1 MB in all)
    network_isolated: bool = False  # ran inside `unshare --net` (defence in depth on top of the guard)
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.killed_reason is None


@functools.cache
def network_isolation() -> bool:
    """Whether `unshare --net` works here (root, or unprivileged user namespaces): detected once, never required."""
    exe = shutil.which("unshare")
    if not exe:
        return False
    for args in ([exe, "--net", "true"], [exe, "--map-root-user", "--net", "true"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run(args, capture_output=True, timeout=5).returncode == 0:
                _UNSHARE[:] = args[:-1]
                return True
    return False


_UNSHARE: list[str] = []


def _limits(cpu_s: int, memory_mb: int):
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))

    return apply


def _check(code: str, timeout_s: float, cpu_s: int, memory_mb: int) -> None:
    from engine.core.textinput import InputError

    if not isinstance(code, str) or not code.strip():
        raise InputError("agents.sandbox.empty_code")
    if len(code) > MAX_CODE_CHARS:
        raise InputError("input.too_large", name="code", limit=MAX_CODE_CHARS, value=len(code))
    low, high = TIMEOUT_RANGE
    if not low <= float(timeout_s) <= high:
        raise InputError("input.out_of_range", name="timeout_s", low=low, high=high, value=timeout_s)
    if not 1 <= int(cpu_s) <= 60:
        raise InputError("input.out_of_range", name="cpu_s", low=1, high=60, value=cpu_s)
    if not 128 <= int(memory_mb) <= 4096:
        raise InputError("input.out_of_range", name="memory_mb", low=128, high=4096, value=memory_mb)


def run_python(
    code: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cpu_s: int = DEFAULT_CPU_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    max_output: int = DEFAULT_MAX_OUTPUT,
    files: dict[str, str | bytes] | None = None,
    isolate_network: bool | None = None,
    should_stop=None,
) -> SandboxResult:
    """Run `code` in the sandbox and return what happened; bad code is a result (returncode, stderr), not an error.

    `files` are written into the directory first (name -> content; plain names only). `isolate_network`: None =
    use `unshare --net` when it works here, False = the guard alone. `should_stop()` is polled every 50 ms; True
    kills the run (killed_reason "signal"). Raises InputError only for unusable arguments (empty code, limits out of
    range)."""
    _check(code, timeout_s, cpu_s, memory_mb)
    use_netns = network_isolation() if isolate_network is None else (isolate_network and network_isolation())
    root = Path(tempfile.mkdtemp(prefix="llmlab-sandbox-")).resolve()
    try:
        (root / "main.py").write_text(code, encoding="utf-8")
        for name, content in (files or {}).items():
            _put(root, name, content)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(root),
            "TMPDIR": str(root),
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLCONFIGDIR": str(root),
        }
        argv = [*(_UNSHARE if use_netns else []), sys.executable, "-I", "-B", "-c", GUARD, str(root)]
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as a whole
            preexec_fn=_limits(int(cpu_s), int(memory_mb)),
            close_fds=True,
        )
        out, err, reason = _collect(proc, started + float(timeout_s), max(1, int(max_output)), should_stop)
        seconds = time.perf_counter() - started
        rc = proc.returncode
        stderr_text = err.text
        if reason is None and rc is not None and rc < 0:
            sig = -rc
            reason = "cpu" if sig in (signal.SIGXCPU, signal.SIGKILL) and _cpu_spent(seconds, cpu_s) else "signal"
        if reason is None and "MemoryError" in stderr_text[-2_000:]:
            reason = "memory"
        return SandboxResult(
            stdout=out.text,
            stderr=stderr_text,
            returncode=None if reason in ("timeout", "output") or (reason == "signal" and rc is None) else rc,
            timed_out=reason == "timeout",
            killed_reason=reason,
            seconds=round(seconds, 4),
            files=_written(root, {n: _bytes(c) for n, c in (files or {}).items()}),
            network_isolated=use_netns,
            stdout_truncated=out.cut,
            stderr_truncated=err.cut,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _cpu_spent(seconds: float, cpu_s: int) -> bool:
    # SIGXCPU/SIGKILL from RLIMIT_CPU come after cpu_s seconds of CPU, so never before that much wall time
    return seconds >= cpu_s * 0.9


def _put(root: Path, name: str, content: str | bytes) -> None:
    from engine.core.textinput import InputError

    if not name or "/" in name or "\\" in name or name in (".", "..", "main.py") or name.startswith("."):
        raise InputError("input.invalid", detail=f"file name {name!r}: use a plain name such as data.csv")
    (root / name).write_bytes(_bytes(content))


def _bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def _written(root: Path, given: dict[str, bytes]) -> dict[str, bytes]:
    """The files the code wrote or changed (not main.py, not the inputs it left as they were)."""
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        if len(out) >= MAX_RETURNED_FILES:
            break
        if path.is_symlink() or not path.is_file() or (path.name == "main.py" and path.parent == root):
            continue
        size = path.stat().st_size
        if total + size > MAX_RETURNED_BYTES:
            continue
        name, data = str(path.relative_to(root)), path.read_bytes()
        if given.get(name) == data:
            continue
        out[name] = data
        total += size
    return out


class _Stream:
    """One pipe read on a thread: the first `limit` bytes kept, the total counted."""

    def __init__(self, pipe, limit: int):
        self.limit, self.kept, self.total = limit, bytearray(), 0
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := pipe.read1(65536):
                self.total += len(chunk)
                room = self.limit - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]

    @property
    def cut(self) -> bool:
        return self.total > self.limit

    @property
    def text(self) -> str:
        text = self.kept.decode("utf-8", "replace")
        if self.cut:
            text += f"\n[... output cut: kept {self.limit:,} of {self.total:,}+ bytes]"
        return text


def _collect(proc: subprocess.Popen, deadline: float, max_output: int, should_stop):
    out, err = _Stream(proc.stdout, max_output), _Stream(proc.stderr, max_output)
    reason = None
    while proc.poll() is None:
        if time.perf_counter() > deadline:
            reason = "timeout"
        elif out.total > 4 * max_output or err.total > 4 * max_output:
            reason = "output"
        elif should_stop is not None and should_stop():
            reason = "signal"
        if reason:
            _kill(proc)
            break
        time.sleep(0.02)
    proc.wait()
    out.thread.join(timeout=2)
    err.thread.join(timeout=2)
    for pipe in (proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            pipe.close()
    if reason is None and (out.total > 4 * max_output or err.total > 4 * max_output):
        reason = "output"
    return out, err, reason


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


# -- the tool ----------------------------------------------------------------------------------------------------
def _format(result: SandboxResult) -> str:
    parts = []
    if result.stdout:
        parts.append(result.stdout.rstrip())
    if result.killed_reason:
        why = {
            "timeout": "stopped: it ran past the time limit",
            "cpu": "stopped: it used up its CPU time",
            "memory": "stopped: it ran out of memory",
            "output": "stopped: it printed too much",
            "signal": "stopped",
        }[result.killed_reason]
        parts.append(f"[{why}]")
    if result.returncode not in (0, None) and result.stderr:
        parts.append("stderr:\n" + result.stderr.strip()[-1_200:])  # the end: the traceback's last lines say why
    if result.files:
        parts.append("files written: " + ", ".join(result.files))
    return "\n".join(parts) or "(no output; use print() to show a result)"


def _python_sandbox(code: str) -> ToolOutput:
    from engine.agents.observations import cap, error_output
    from engine.core.errors import UserError

    try:
        result = run_python(code)
    except UserError as exc:
        return error_output(getattr(exc, "code", "agents.sandbox.bad_code"), str(exc))
    text, cut = cap(_format(result))
    error = None if result.ok else f"sandbox.{result.killed_reason or 'error'}"
    return ToolOutput(text, artifact=result, error=error, truncated=cut, seconds=result.seconds)


@functools.cache
def python_sandbox_tool() -> Tool:
    """`python_sandbox`: run Python code (print the result) in the sandbox; 10 s, 512 MB, no network."""
    return Tool(
        name="python_sandbox",
        description=(
            "Run a short Python 3 program and return what it prints. Use print() to show results. numpy is "
            "available; there is no network and no internet, and files can only be written in the current directory."
        ),
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "description": "a complete Python program"}},
            "required": ["code"],
        },
        fn=_python_sandbox,
        labels={"ko": "파이썬 샌드박스", "en": "Python sandbox"},
    )
