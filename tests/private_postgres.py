"""A PostgreSQL server of a test's own, to stop and start as a restart, a failover or an outage would.

The shared server (GOVBOT_TEST_POSTGRES_URL) serves every other test at once and must never be stopped.
This one is made with the installed binaries in a scratch folder, on a port in 55433–55439, and removed
afterwards. Without the binaries its tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import IN_CI

PORTS = range(55433, 55440)


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # initdb beside it, not a symbolic link's folder
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: past TIME_WAIT
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1} for a private PostgreSQL")


class PrivatePostgres:
    """A running server with trust authentication; ``url`` names its database ``govbot``."""

    def __init__(self, binaries: Path, folder: Path, port: int) -> None:
        self._bin, self._folder, self.port = binaries, folder, port
        self._data = folder / "data"
        # initdb and postgres refuse to run as root: as root, they run as the postgres user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/govbot"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self._as, str(self._bin / program), *args], check=True,  # noqa: S603 - fixed arguments
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "govbot")

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._folder / "server.log"), "-w",
                  "-o", f"-p {self.port} -k {self._folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self) -> None:
        """Stop the server as a restart for an upgrade does: every connection is closed."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def freeze(self) -> None:
        """Make the server stop answering without closing anything: a host that hangs, or a network that
        drops packets (a failover whose old primary is cut off)."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, number: signal.Signals) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):  # a backend that ended meanwhile
                os.kill(pid, number)

    def _processes(self) -> list[int]:
        """The postmaster and its children (the backends, the checkpointer …)."""
        postmaster = int((self._data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def kill(self) -> None:
        """Stop the server at once if it runs (at the end of a test, whatever state it left it in)."""
        if (self._data / "postmaster.pid").exists():
            self.thaw()  # a frozen server would not stop
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new server, stopped and removed on exit whatever state the test left it in."""
    binaries = _binaries()
    if binaries is None:
        message = "PostgreSQL's server binaries (pg_ctl, initdb) are not installed"
        if IN_CI:
            pytest.fail(message + " (CI=true: the database outage tests must run)")
        pytest.skip(message)
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="govbot-private-pg-"))
    if os.geteuid() == 0:
        os.chown(folder, pwd.getpwnam("postgres").pw_uid, -1)
    server = PrivatePostgres(binaries, folder, port)
    try:
        server.init()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
