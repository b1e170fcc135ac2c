"""govbot as operators run it: the `govbot run` command in a process of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from benchmarks.support import free_port, worker_pids
from tests.conftest import REPO, without_govbot_settings


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.2)


async def listening(url: str) -> bool:
    """Whether a server accepts connections at ``url``: one that has begun its graceful stop does not."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz"):
            return True
    except aiohttp.ClientConnectorError:
        return False


@asynccontextmanager
async def govbot_run(database_url: str, workers: int, log: Path,
                     **settings: str) -> AsyncIterator[tuple[Process, str]]:
    """`govbot run --workers N` on a free port, ``settings`` as GOVBOT_ variables (``public_url="{url}"``
    is filled in with its address); its log in a file: workers that outlive it would keep a pipe open."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = without_govbot_settings(dict(os.environ)) | {
        "GOVBOT_DATABASE_URL": database_url, "GOVBOT_HTTP_HOST": "127.0.0.1", "GOVBOT_HTTP_PORT": str(port),
        **{f"GOVBOT_{name.upper()}": value.replace("{url}", url) for name, value in settings.items()},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--workers", str(workers), cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        yield process, url
    finally:
        await kill_left_behind(process)


async def kill_left_behind(process: asyncio.subprocess.Process) -> None:
    """A supervisor still running when its test ends (the test failed): no server is left behind."""
    if process.returncode is None:
        for pid in worker_pids(process.pid):
            os.kill(pid, signal.SIGKILL)
        process.kill()
        await process.wait()


async def run_on_a_taken_port(database_url: str, workers: int) -> tuple[int, str, int]:
    """`govbot run --workers N` on a port another server listens on: its exit code, what it printed,
    and the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        env = without_govbot_settings(dict(os.environ)) | {"GOVBOT_DATABASE_URL": database_url,
                                                          "GOVBOT_HTTP_HOST": "127.0.0.1",
                                                          "GOVBOT_HTTP_PORT": str(port)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--workers", str(workers), cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, printed = await asyncio.wait_for(process.communicate(), 60)
        finally:
            await kill_left_behind(process)
    assert process.returncode is not None
    return process.returncode, printed.decode(), port
