"""A throw-away PostgreSQL server for tests: Debian's postgresql binaries, a cluster in a temp folder, a free
loopback port, stopped and deleted afterwards. No mocks: the progress store talks to a real server.

`make db` installs Debian's `postgresql` package (root on CI); where the binaries are missing the tests that need
the server are skipped with that reason. initdb and the server refuse to run as root, so as root the cluster runs
as the `postgres` user the Debian package creates (through `runuser`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "llmlab"  # the cluster's superuser (trust authentication on loopback and the private socket only)


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running cluster: `url` (the `postgres` database), `new_database()`, `stop()` / `start()`."""

    def __init__(self, bin_dir: Path, root: Path, run_as: str | None) -> None:
        self.bin_dir, self.root, self.run_as = bin_dir, root, run_as
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.port = _free_port()
        self._names = itertools.count(1)

    def _cmd(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}\n{log}")

    def init(self) -> None:
        self.sockets.mkdir()
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.sockets, user.pw_uid, user.pw_gid)
        self._cmd("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c shared_buffers=16MB -c max_connections=60"
        )
        self._cmd("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh empty database on this server (one per test keeps tests independent); its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running throw-away cluster (skips the calling test when the server binaries are missing)."""
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): install Debian's postgresql "
            "package (`make db`, as root) to run the PostgreSQL half of these tests"
        )
    run_as = None
    root = Path(tempfile.mkdtemp(prefix="llmlab-pg-"))
    if os.geteuid() == 0:  # initdb and postgres refuse root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no `postgres` user to run the test server as")
        if shutil.which("runuser") is None:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and `runuser` is missing, so the test server cannot drop root")
        run_as = "postgres"
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_dir, root, run_as)
    started = False
    try:
        server.init()
        server.start()
        started = True
        yield server
    finally:
        if started:
            with contextlib.suppress(Exception):
                server.stop("immediate")  # the cluster is deleted next: no checkpoint needed
        shutil.rmtree(root, ignore_errors=True)
