"""`govbot run --workers N`: several server processes on one port, restarted when one dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.support import worker_pids
from bot.cli import main
from bot.config import Settings
from bot.supervisor import METRICS_PREFIX, _Supervisor, metrics_folder, refusal
from bot.webhooks import new_secret
from storage.departments import DepartmentRepository
from storage.outbox import OutboxRepository
from tests.escalation.conftest import open_case
from tests.escalation.receiver import Receiver, receiving
from tests.processes import alive, govbot_run, listening, run_on_a_taken_port, until

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SLOW_ANSWER = 4.0
"""Seconds a department's endpoint takes to answer: long enough for every stop signal to arrive meanwhile."""


def test_one_worker_is_always_allowed() -> None:
    sqlite_polling = Settings(database_url="sqlite+aiosqlite:///x.db", telegram_token=SecretStr("1:a"))
    assert refusal(sqlite_polling, 1) is None


def test_several_workers_need_postgresql() -> None:
    problem = refusal(Settings(database_url="sqlite+aiosqlite:///x.db"), 2)
    assert "PostgreSQL" in str(problem)


def test_several_workers_need_telegram_in_webhook_mode() -> None:
    polling = Settings(database_url=PG, telegram_token=SecretStr("1:a"))
    problem = refusal(polling, 2)
    assert "GOVBOT_PUBLIC_URL" in str(problem)
    webhook = polling.model_copy(update={"public_url": "https://bot.example.gov"})
    assert refusal(webhook, 2) is None
    assert refusal(Settings(database_url=PG), 2) is None  # no Telegram at all


def test_run_refuses_several_workers_on_sqlite_with_a_clear_message(
        cli_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--workers", "3"]) == 2
    assert "needs PostgreSQL" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "65"])
def test_run_refuses_a_number_of_workers_outside_what_govbot_workers_allows(
    cli_database: str, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    assert main(["run", "--workers", workers]) == 2
    assert "--workers must be between 1 and 64" in capsys.readouterr().err


def test_a_supervisor_removes_the_metrics_folders_of_supervisors_that_are_gone(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead, living = int(ended.stdout), os.getppid()
    for name in (f"{dead}-k1ll3d", f"{os.getpid()}-s4m3id", f"{living}-l1v1ng", "n0p1d", "x-y"):
        (tmp_path / f"{METRICS_PREFIX}{name}").mkdir()
        (tmp_path / f"{METRICS_PREFIX}{name}" / "counter_1.db").write_bytes(b"")
    with metrics_folder(str(tmp_path)) as mine:
        assert Path(mine).name.startswith(f"{METRICS_PREFIX}{os.getpid()}-")
        left = {path.name.removeprefix(METRICS_PREFIX) for path in tmp_path.iterdir()}
        assert left == {f"{living}-l1v1ng", "n0p1d", "x-y", Path(mine).name.removeprefix(METRICS_PREFIX)}
    assert not Path(mine).exists()


@pytest.mark.postgres
async def test_workers_share_a_port_are_restarted_when_killed_and_stop_on_sigterm(
        postgres_url: str, tmp_path: Path) -> None:
    log = tmp_path / "govbot.log"
    async with govbot_run(postgres_url, 2, log) as (process, url), aiohttp.ClientSession() as http:

        async def ready() -> bool:
            try:
                async with http.get(f"{url}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        async def two_workers() -> bool:
            return len(worker_pids(process.pid)) == 2

        await until(two_workers)
        await until(ready)
        first = worker_pids(process.pid)
        for _ in range(20):  # new connections each time: the kernel spreads them over both workers
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{url}/healthz") as response:
                assert response.status == 200

        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            now = worker_pids(process.pid)
            return len(now) == 2 and victim not in now

        await until(replaced)
        await until(ready)
        workers = worker_pids(process.pid)

        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=60)
        printed = log.read_text()
        assert process.returncode == 0, printed
        assert "exited with code -9; starting it again" in printed
        assert not any(alive(pid) for pid in workers)


@pytest.mark.postgres
async def test_workers_stop_by_themselves_when_the_supervisor_is_killed(
        postgres_url: str, tmp_path: Path) -> None:
    async with govbot_run(postgres_url, 2, tmp_path / "govbot.log") as (process, _):

        async def two_workers() -> bool:
            return len(worker_pids(process.pid)) == 2

        await until(two_workers)
        workers = worker_pids(process.pid)
        process.kill()
        await process.wait()

        async def all_gone() -> bool:
            return not any(alive(pid) for pid in workers)

        await until(all_gone, timeout=30)


@pytest.mark.postgres
async def test_workers_on_a_port_in_use_are_not_started_again_and_again(postgres_url: str) -> None:
    code, printed, port = await run_on_a_taken_port(postgres_url, workers=2)
    assert code == 1, printed
    assert f"govbot: cannot listen on 127.0.0.1:{port}" in printed
    assert "Traceback" not in printed
    assert "starting it again" not in printed


@pytest.mark.postgres
async def test_ctrl_c_while_the_workers_start_stops_them_without_a_traceback(
        postgres_url: str, tmp_path: Path) -> None:
    log = tmp_path / "govbot.log"
    async with govbot_run(postgres_url, 2, log) as (process, _):

        async def two_workers() -> bool:
            return len(worker_pids(process.pid)) == 2

        await until(two_workers)  # still importing, for a second or so: not yet in a group of their own
        for pid in worker_pids(process.pid) | {process.pid}:  # a terminal's Ctrl-C reaches its whole group
            os.kill(pid, signal.SIGINT)
        await asyncio.wait_for(process.wait(), timeout=60)
        printed = log.read_text()
        assert process.returncode == 0, printed
        assert "Traceback" not in printed
        assert "KeyboardInterrupt" not in printed


@asynccontextmanager
async def delivering_slowly(
    database_url: str, sessions: async_sessionmaker[AsyncSession], folder: Path, workers: int,
    answer_after: float,
) -> AsyncIterator[tuple[Process, str, Receiver, Path]]:
    """`govbot run --workers N` (its log in ``folder``) with a delivery to a department's endpoint in flight,
    which answers only after ``answer_after`` seconds."""
    log = folder / "govbot.log"
    secret = new_secret()
    async with (
        receiving(secret) as receiver,
        govbot_run(database_url, workers, log, webhook_allow_http="true",
                   webhook_allowed_networks="127.0.0.0/8") as (process, url),
    ):

        async def all_listening() -> bool:
            return log.read_text().count("govbot listening on") == workers

        await until(all_listening)
        async with sessions.begin() as session:
            transport = DepartmentRepository(session)
            await transport.update("TRANSPORT", webhook_url=receiver.url, secrets=[secret])
        receiver.before_answer = lambda: asyncio.sleep(answer_after)
        await open_case(sessions)
        await receiver.wait_for(1, timeout=30)
        yield process, url, receiver, log


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("workers", [1, 2])
async def test_a_second_sigterm_does_not_cut_short_the_stop_of_a_delivery_in_flight(
        database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path, workers: int) -> None:
    # systemd's default KillMode signals every process and the supervisor signals its workers again: the
    # second SIGTERM ended the graceful stop at once, and the delivery in flight, left in progress, went
    # out again after its lease.
    slow = delivering_slowly(database_url, sessions, tmp_path, workers, SLOW_ANSWER)
    async with slow as (process, url, receiver, log):

        async def stopped_listening() -> bool:
            return not await listening(url)

        for pid in worker_pids(process.pid) | {process.pid}:  # systemd's default, KillMode=control-group
            os.kill(pid, signal.SIGTERM)
        if workers == 1:  # the supervisor of --workers signals each worker again; a lone server gets it here
            await until(stopped_listening)  # its graceful stop has begun
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    printed = log.read_text()
    assert process.returncode == 0, printed
    assert "Traceback" not in printed
    assert len(receiver.received) == 1
    async with sessions() as session:
        outbox = OutboxRepository(session)
        [event] = await outbox.events()
        attempts = await outbox.attempts(event.id)
    assert (event.status, [a.outcome for a in attempts]) == ("delivered", ["delivered"]), printed


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("workers", [1, 2])
async def test_a_third_stop_signal_stops_at_once(
        database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path, workers: int) -> None:
    # The second signal is ignored (above); an operator pressing Ctrl-C a third time had no way out but
    # SIGKILL while a department's endpoint kept a delivery waiting.
    async with delivering_slowly(database_url, sessions, tmp_path, workers, 60.0) as (process, _, _, log):
        pids = worker_pids(process.pid)
        for _ in range(3):  # a terminal's Ctrl-C reaches the supervisor (workers have a group of their own)
            process.send_signal(signal.SIGINT)
            await asyncio.sleep(0.3)
        await asyncio.wait_for(process.wait(), timeout=10)
    printed = log.read_text()
    assert process.returncode != 0, printed
    assert "a third time" in printed
    assert "Traceback" not in printed
    assert not [pid for pid in pids if alive(pid)]


def _dies_at_once(settings: Settings, reuse_port: bool) -> None:
    """A worker's server that fails as it starts (run in the worker process: picklable by name)."""
    sys.exit(3)


def test_a_stop_signal_as_a_dead_worker_is_restarted_starts_no_new_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The signal lands between the loop's look at `_stopping` and the restart: the supervisor started a
    # worker after its stop had begun, and a third signal could not kill it (not yet in its list).
    supervisor = _Supervisor(Settings(database_url=PG), 1, _dies_at_once)
    dead: list[object] = []

    def dies_and_is_stopped() -> bool:
        dead.extend(supervisor._workers)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, before the restart
        return False

    monkeypatch.setattr(supervisor, "_too_many_deaths", dies_and_is_stopped)
    previous = signal.signal(signal.SIGTERM, supervisor.stop)
    try:
        assert supervisor.run() == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(dead) == 1
    assert supervisor._workers == dead  # the worker that died, and no new one
