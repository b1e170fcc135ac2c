"""`govbot dispatch` as a real process: killed with SIGKILL mid-delivery, restarted, nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.support import free_port
from storage.departments import DepartmentRepository
from storage.outbox import OutboxRepository
from tests.conftest import REPO, without_govbot_settings
from tests.escalation.conftest import Dept, open_case
from tests.escalation.receiver import HANG, receiving
from tests.processes import until

CASES = 5


@asynccontextmanager
async def dispatch_process(database_url: str, *options: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`govbot dispatch` on the test database, allowed to reach 127.0.0.1 over http, with a 1 s timeout."""
    env = without_govbot_settings(dict(os.environ))
    env |= {
        "GOVBOT_DATABASE_URL": database_url,
        "GOVBOT_WEBHOOK_ALLOW_HTTP": "true",
        "GOVBOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GOVBOT_WEBHOOK_TIMEOUT_SECONDS": "1",
        "GOVBOT_DISPATCH_LEASE_SECONDS": "2",
        "GOVBOT_DISPATCH_POLL_SECONDS": "0.05",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "dispatch",
        *options,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_dispatcher_killed_mid_delivery_loses_nothing_after_a_restart(
    database_url: str, sessions: async_sessionmaker[AsyncSession], departments: dict[str, Dept]
) -> None:
    async with receiving(departments["TRANSPORT"].secret) as receiver:
        receiver.answers = [HANG]  # the first request never gets an answer
        async with sessions.begin() as session:
            await DepartmentRepository(session).update("TRANSPORT", webhook_url=receiver.url)
        for n in range(CASES):
            await open_case(sessions, user=str(n))
        expected = await webhook_ids(sessions)

        async with dispatch_process(database_url) as first:
            await receiver.wait_for(1, timeout=60)
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL

        async with dispatch_process(database_url) as second:
            await receiver.wait_until(lambda r: set(r.answered_ok) >= expected, timeout=60)
            second.send_signal(signal.SIGTERM)
            output = (await second.communicate())[0].decode()
            assert second.returncode == 0, output

    assert receiver.rejected == []
    async with sessions() as session:
        repo = OutboxRepository(session)
        counts = await repo.counts()
        attempts = [a for event in await repo.events() for a in await repo.attempts(event.id)]
    assert counts["delivered"] == CASES
    assert "interrupted" in {a.outcome for a in attempts}  # the killed process's attempt is on record
    assert "in_progress" not in {a.outcome for a in attempts}


async def test_the_dispatchers_metrics_count_every_departments_dead_letters_from_zero(
    database_url: str, departments: dict[str, Dept]
) -> None:
    port = free_port()
    zeros = {f'govbot_webhook_dead_letters_total{{department="{code}"}} 0.0' for code in departments}

    async def counted_from_zero() -> bool:  # /metrics is served from before the database is reached
        try:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as got:
                return zeros <= set((await got.text()).splitlines())
        except aiohttp.ClientError:
            return False

    async with dispatch_process(database_url, "--metrics-port", str(port)):
        await until(counted_from_zero, timeout=20)


async def webhook_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        return {event.webhook_id for event in await OutboxRepository(session).events()}
