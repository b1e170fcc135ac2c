"""The HTTP server: health, readiness, metrics, first start, and `govbot run` as a real process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from bot.app import create_app, seed_knowledge
from bot.config import load_settings
from bot.keys import ENGINE, KNOWLEDGE, SESSIONS
from knowledge.formats import KnowledgeLoadError
from storage import db
from storage.departments import DepartmentRepository
from storage.knowledge import KnowledgeRepository
from tests.conftest import REPO, admin, without_govbot_settings
from tests.processes import run_on_a_taken_port

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    settings = load_settings(database_url=database_url, kb_refresh_seconds=0.05)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_healthz_answers_while_the_process_is_up(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_first_start_migrates_and_loads_the_sample_knowledge_base(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"] == {"database": "ok", "knowledge": "ok"}
    assert len(client.app[KNOWLEDGE].matcher) >= 60


SEEDED = """\
departments:
  - code: TAX
    name: {{en: Tax Bureau}}
entries:
  - id: tax-pay
    category: tax
    department: {department}
    {question}answer: {{en: Pay online.}}
"""


@pytest.mark.parametrize(("department", "question", "refusal"), [
    ("NOWHERE", "question: {en: How do I pay tax?}\n    ", "department: unknown department 'NOWHERE'"),
    ("TAX", "", "question: missing: an entry needs its question"),
])
async def test_the_first_seed_refuses_files_as_kb_import_does(
    tmp_path: Path, department: str, question: str, refusal: str
) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text(SEEDED.format(department=department, question=question), encoding="utf-8")
    async with db.connected(f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}", create=True) as engine:
        sessions = db.sessionmaker(engine)
        with pytest.raises(KnowledgeLoadError) as refused:
            await seed_knowledge(sessions, [kb])
        async with sessions() as session:
            assert await KnowledgeRepository(session).is_empty()
    [error] = refused.value.errors
    assert str(error).startswith(f"{kb}:5: {refusal}")


async def test_metrics_are_served_in_prometheus_format(client: Client) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert "govbot_updates_handled" in await response.text()


async def test_every_known_departments_dead_letters_are_counted_from_zero(client: Client) -> None:
    """An alert on a rise sees a department's first dead letter only if its series was there at 0."""
    async with client.app[SESSIONS]() as session:
        codes = [department.code for department in await DepartmentRepository(session).all()]
    text = await (await client.get("/metrics")).text()
    assert codes
    for code in codes:
        assert f'govbot_webhook_dead_letters_total{{department="{code}"}} 0.0' in text


@pytest.mark.postgres
async def test_readyz_is_503_while_the_database_refuses_connections_and_ok_once_it_is_back(
        postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    name = make_url(postgres_url).database
    settings = load_settings(database_url=postgres_url, kb_refresh_seconds=0.05)
    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await client.get("/readyz")).status == 200
        await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name",
                        name=name)
            for _ in range(3):  # an orchestrator probes every few seconds
                response = await client.get("/readyz")
                assert response.status == 503
                assert await response.json() == {
                    "status": "unavailable", "checks": {"database": "unavailable", "knowledge": "ok"}}
            assert (await client.get("/healthz")).status == 200  # the process itself is still up
        finally:
            await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/readyz")).status == 200
    said = [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "bot.app" and "readiness" in r.getMessage()]
    # One line when the outage begins and one when it ends, not one per probe.
    assert [level for level, _ in said] == [logging.WARNING, logging.INFO]
    assert "out of reach" in said[0][1]


@pytest.mark.postgres
async def test_readyz_is_503_when_a_new_connection_is_refused(postgres_url: str) -> None:
    # No pooled connection to fail on: the probe must connect, and asyncpg's own error comes back.
    name = make_url(postgres_url).database
    async with TestClient(TestServer(create_app(load_settings(database_url=postgres_url)))) as client:
        await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await client.app[ENGINE].dispose()
            response = await client.get("/readyz")
            assert response.status == 503
            assert (await response.json())["checks"]["database"] == "unavailable"
        finally:
            await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await client.get("/readyz")).status == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_govbot_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = without_govbot_settings(dict(os.environ))
    env |= {
        "GOVBOT_HTTP_PORT": str(port),
        "GOVBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/var/govbot.db",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # start-up takes a moment: poll the port, bounded
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("govbot run did not become ready")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert (tmp_path / "var" / "govbot.db").exists()


async def test_govbot_run_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    code, printed, port = await run_on_a_taken_port(f"sqlite+aiosqlite:///{tmp_path}/govbot.db", workers=1)
    assert code == 1, printed
    assert f"govbot: cannot listen on 127.0.0.1:{port}" in printed
    assert "Traceback" not in printed


@pytest.mark.postgres
async def test_govbot_run_says_it_listens_only_once_start_up_has_succeeded(postgres_url: str) -> None:
    # A PostgreSQL database nobody migrated: start-up refuses it, and the log must not claim a server.
    name = f"govbot_test_unmigrated_{uuid.uuid4().hex[:8]}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        env = without_govbot_settings(dict(os.environ)) | {
            "GOVBOT_HTTP_PORT": str(free_port()),
            "GOVBOT_DATABASE_URL": make_url(postgres_url).set(database=name).render_as_string(False),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        printed, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert process.returncode != 0
    assert "db upgrade" in printed.decode()
    assert "listening" not in printed.decode()
