"""Shared fixtures: a migrated database on SQLite and on PostgreSQL for every storage test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import db

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = REPO.parent / "shared" / "eval"
SAMPLE_KB = REPO / "knowledge" / "sample"
POSTGRES_URL = os.environ.get("GOVBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _postgres_unavailable(reason: str) -> None:
    """Skip locally, but fail loudly in CI, where PostgreSQL must be present."""
    message = (
        f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string(hide_password=True)} unavailable: {reason}"
    )
    if IN_CI:
        pytest.fail(message + " (CI=true: storage tests must run on PostgreSQL)")
    pytest.skip(message)


def without_govbot_settings(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` less every GOVBOT_ variable: a `govbot` process then sees only what the test sets."""
    return {name: value for name, value in environ.items() if not name.startswith("GOVBOT_")}


def clear_govbot_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every GOVBOT_ variable for this test, so settings come only from what it sets."""
    for name in list(os.environ):
        if name.startswith("GOVBOT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new SQLite file as GOVBOT_DATABASE_URL and no other GOVBOT_ setting: what `govbot` commands read.

    The file is there but empty, as after the bot's first start: staff commands refuse a missing one."""
    clear_govbot_settings(monkeypatch)
    (tmp_path / "govbot.db").touch()
    url = f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}"
    monkeypatch.setenv("GOVBOT_DATABASE_URL", url)
    return url


async def admin(sql: str, **params: object) -> None:
    """Run ``sql`` on the PostgreSQL server's admin database (for CREATE DATABASE, ALTER DATABASE …)."""
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own on the PostgreSQL server for this test session, migrated once."""
    name = f"govbot_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection failure means the server is not usable
        _postgres_unavailable(f"{type(exc).__name__}: {exc}")
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    async def migrate() -> None:
        engine = db.create_engine(url)
        try:
            await db.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}"
    url = str(request.getfixturevalue("postgres_database"))
    asyncio.run(_emptied(url))  # whatever the test starts with this URL (an app, a command) finds it empty
    return url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied: for what only PostgreSQL does (several processes)."""
    asyncio.run(_emptied(postgres_database))
    return postgres_database


async def close_every_connection(url: str) -> None:
    """Close every other connection to the test's PostgreSQL database, as a server restart would."""
    admin = db.create_engine(url)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await admin.dispose()


async def _emptied(url: str) -> None:
    engine = db.create_engine(url)
    try:
        await _truncate_all(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on the test's empty database."""
    engine = db.create_engine(database_url)
    if engine.url.get_backend_name() == "sqlite":
        await db.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.sessionmaker(engine)


async def _truncate_all(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables"
                        " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        if tables:
            names = ", ".join(f'"{name}"' for name in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        # Tables whose rows the migrations seed get them back.
        await conn.execute(text("INSERT INTO kb_sequence (id, value) VALUES (1, 0)"))
        await conn.execute(
            text("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, :genesis)"),
            {"genesis": "0" * 64},
        )


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
