"""The engine govbot makes: what its errors may say."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.secrets  # noqa: F401 - its model is one of the tables compared
from storage import db
from storage.citizen_data import parts
from storage.models import Base
from tests.conftest import REPO, admin, without_govbot_settings


async def test_a_failed_statement_does_not_carry_its_parameters_into_the_error(engine: AsyncEngine) -> None:
    words = "my phone is 13800138000, please call"
    with pytest.raises(DBAPIError) as raised:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": words})
    assert "no_such_table" in str(raised.value), "the statement itself is still shown"
    assert words not in str(raised.value)
    assert "13800138000" not in str(raised.value)


@pytest.mark.postgres
async def test_a_database_that_does_not_exist_is_unavailable_not_a_driver_error(postgres_url: str) -> None:
    missing = make_url(postgres_url).set(database="govbot_no_such_database").render_as_string()
    with pytest.raises(db.DatabaseUnavailable, match=r"govbot_no_such_database.*does not exist"):
        async with db.reachable(missing):
            pass


@pytest.mark.postgres
async def test_several_upgrades_at_once_migrate_an_empty_database_once(postgres_url: str) -> None:
    # Hosts that each run `govbot db upgrade` before starting: none may fail on another's tables.
    name = f"govbot_test_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    env = without_govbot_settings(dict(os.environ)) | {"GOVBOT_DATABASE_URL": url}
    try:
        upgrades = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "db", "upgrade", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) for _ in range(3)]
        printed = [(await upgrade.communicate())[0].decode() for upgrade in upgrades]
        assert [upgrade.returncode for upgrade in upgrades] == [0, 0, 0], printed
        assert all(f"database at revision {db.head_revision()}" in text for text in printed)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_sqlite_path_under_the_home_folder_is_created_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    async with db.connected("sqlite+aiosqlite:///~/govbot/govbot.db", create=True) as engine:
        assert await db.current_revision(engine) == db.head_revision()
    assert (tmp_path / "govbot" / "govbot.db").is_file()
    assert not (tmp_path / "~").exists()


async def test_a_new_sqlite_file_another_process_is_writing_is_waited_for_not_locked(tmp_path: Path) -> None:
    # Two processes starting on a new file: the second to turn it to WAL while the first held the write
    # lock got "database is locked" at once, as SQLite does not wait its busy timeout for that switch.
    file = tmp_path / "govbot.db"
    writer = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")

    def commit_later() -> None:
        time.sleep(0.3)
        writer.execute("COMMIT")

    committed = asyncio.get_running_loop().run_in_executor(None, commit_later)
    try:
        async with db.reachable(f"sqlite+aiosqlite:///{file}") as engine, engine.connect() as connection:
            mode = await connection.scalar(text("PRAGMA journal_mode"))
        assert mode == "wal"
    finally:
        await committed
        writer.close()


def _json_default_differs(_context: Any, inspected: Any, _column: Any, found: str | None, _model: Any,
                          rendered: str | None) -> bool | None:
    """PostgreSQL has no ``=`` for json, which Alembic's own comparison asks it for: compare the text."""
    if found is None or not isinstance(inspected.type, JSON):
        return None  # Alembic's comparison
    return found.removesuffix("::json") != rendered


def _differences(connection: Connection) -> list[Any]:
    compared = {"compare_type": True, "compare_server_default": _json_default_differs}
    return list(compare_metadata(MigrationContext.configure(connection, opts=compared), Base.metadata))


async def test_the_migrations_create_exactly_what_the_models_describe(engine: AsyncEngine) -> None:
    # Every table, column, type, server default and index of every model, on both databases: a model
    # changed without its migration (or the other way round) shows here, not in production after
    # `govbot db upgrade`, nor as a stray change in the next migration written from the models.
    parts()  # the features' modules, whose models register their tables
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


@pytest.mark.parametrize("below", ["a-file", "a-file/deeper"])
async def test_a_sqlite_path_below_a_file_is_unavailable_not_a_traceback(tmp_path: Path, below: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(db.DatabaseUnavailable, match=r"cannot make the folder .*a-file.* for the database"):
        async with db.reachable(f"sqlite+aiosqlite:///{tmp_path / below / 'govbot.db'}", create=True):
            pass


def _with_query(url: str, query: str) -> str:
    return f"{make_url(url).set(password='secretpw').render_as_string(hide_password=False)}?{query}"


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["sslmode=disable", "statement_cache_size=0&timeout=10&command_timeout=60"])
async def test_a_postgresql_url_with_libpq_or_pgbouncer_parameters_connects(
        postgres_url: str, query: str) -> None:
    # libpq's sslmode (what a managed database's console shows) and a number of asyncpg's own (PgBouncer
    # needs statement_cache_size=0): both were a TypeError traceback at the first connection.
    async with db.connected(_with_query(postgres_url, query)) as engine:
        assert await db.current_revision(engine) == db.head_revision()


@pytest.mark.postgres
@pytest.mark.parametrize(("query", "said"), [
    ("no_such=1", "the database URL's parameters: .*'no_such'"),
    ("timeout=soon", "its parameter timeout must be a number, not 'soon'"),
])
async def test_a_postgresql_url_parameter_asyncpg_cannot_take_is_one_line(
        postgres_url: str, query: str, said: str) -> None:
    with pytest.raises(db.DatabaseUnavailable, match=said) as raised:
        async with db.reachable(_with_query(postgres_url, query)):
            pass
    assert "secretpw" not in str(raised.value)


async def test_a_server_that_never_answers_fails_a_new_connection_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that accepts and then says nothing (a frozen server, a failover's cut-off primary): asyncpg
    alone waits 60 s, and every request with it."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(db, "CONNECT_TIMEOUT", 0.2)
    engine = db.create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test")
    try:
        async with asyncio.timeout(20):  # only a guard: without the timeout this waits 60 s
            with pytest.raises(TimeoutError) as raised:
                async with engine.connect():
                    pass
        assert db.out_of_reach(raised.value)
    finally:
        await engine.dispose()
        server.close()
