"""What the benchmark scripts share: a scratch PostgreSQL database, local ports, PostgreSQL's CPU."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage import db

SAMPLE_SECONDS = 0.5
"""How often server_cpu reads the server processes' CPU."""


def run_benchmark(main: Coroutine[Any, Any, None]) -> None:
    """Run a benchmark's main coroutine. SIGTERM (``pkill``, ``timeout``) cancels it, so that its ``finally``
    blocks run: child processes stop and the scratch database is dropped instead of being left behind."""

    async def cancelled_by_sigterm() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main

    try:
        asyncio.run(cancelled_by_sigterm())
    except asyncio.CancelledError:
        print("stopped by SIGTERM; cleaned up", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)


@asynccontextmanager
async def scratch_postgres(admin_url: str, prefix: str = "govbot_bench") -> AsyncIterator[str]:
    """The URL of a fresh, migrated database on ``admin_url``'s server; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = db.create_engine(url)
        await db.upgrade(engine)
        await engine.dispose()
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def local_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1 (kept bound, so no one else takes the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago, for a child process to listen on."""
    with local_socket() as sock:
        return int(sock.getsockname()[1])


def process_cpu(pid: int) -> float:
    """CPU seconds so far (user + system) of process ``pid`` (Linux); OSError once it is gone."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def worker_pids(supervisor: int) -> set[int]:
    """The worker processes of `govbot run --workers N` (Linux; not multiprocessing's resource tracker)."""
    found = set()
    for child in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
        except OSError:
            continue  # gone meanwhile
    return found


def backend_cpu(database: str, others: set[int]) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL server process serving ``database`` (Linux; else empty).

    ``others`` collects the processes found not to serve it, whose command lines are then not read again:
    reading every process's on each sample stalled the bot's event loop for milliseconds.
    """
    found: dict[int, float] = {}
    for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
        if pid in others:
            continue
        try:
            if f" {database} " not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                others.add(pid)
                continue
            found[pid] = process_cpu(pid)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found


@asynccontextmanager
async def server_cpu(database: str | None) -> AsyncIterator[list[float]]:
    """The CPU seconds PostgreSQL spends for ``database`` during the block, in the list's one item.

    Sampled every SAMPLE_SECONDS too, because the pool closes surplus connections during a run and the CPU
    of a process that has exited can no longer be read.
    """
    result: list[float] = []
    if database is None:
        yield result
        return
    others: set[int] = set()  # Linux hands out process ids in rising order: none is reused in a run
    before = backend_cpu(database, others)
    latest = dict(before)

    async def sample() -> None:
        while True:  # until cancelled at the end of the block
            latest.update(backend_cpu(database, others))
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.create_task(sample())
    try:
        yield result
    finally:
        sampler.cancel()
        latest.update(backend_cpu(database, others))
        result.append(sum(latest.values()) - sum(before.values()))
