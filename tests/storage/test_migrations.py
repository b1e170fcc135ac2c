"""Migrating a database that already holds a deployment's rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import db
from tests.conftest import REPO, admin, without_govbot_settings

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CITIZEN_ROWS: dict[str, dict[str, object]] = {
    "conversations": {"user_id": 1, "data": "{}", "updated_at": AT},
    "messages": {"user_id": 1, "direction": "in", "text": "my tax refund", "created_at": AT},
    "questions": {
        "id": 1, "user_id": 1, "text": "my tax refund", "normalised": "tax refund", "language": "en",
        "decision": "answer", "reason": "match", "candidates": "[]", "signals": "{}", "created_at": AT,
    },
    "answers": {"user_id": 1, "question_id": 1, "entry_id": "tax-refund", "how": "direct", "created_at": AT},
    "cases": {
        "id": 1, "ticket": "TAX-2026-0001", "department": "TAX", "user_id": 1, "channel": "telegram",
        "chat_id": "42", "language": "en", "status": "open", "description": "refund late", "excerpt": "[]",
        "created_at": AT, "updated_at": AT,
    },
    "consents": {
        "user_id": 1, "department": "TAX", "field": "phone", "granted": True, "source": "chat",
        "decided_at": AT,
    },
    "consent_requests": {"user_id": 1, "department": "TAX", "fields": "[]", "created_at": AT},
    "web_entries": {
        "user_id": 1, "seq": 1, "role": "citizen", "text": "hello", "kind": "text", "buttons": "[]",
        "created_at": AT,
    },
    "citizen_notices": {
        "user_id": 1, "channel": "telegram", "chat_id": "42", "language": "en", "case_id": 1,
        "kind": "case_reply", "data": "{}", "status": "pending", "attempts": 0, "next_attempt_at": AT,
        "created_at": AT,
    },
}
"""A citizen's rows in every table that refers to ``users`` at revision 0007, one each."""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables yet: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}"
        return
    server = str(request.getfixturevalue("postgres_database"))  # fails loudly under CI=true when absent
    name = f"govbot_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _insert(connection: AsyncConnection, table: str, row: dict[str, object]) -> None:
    await connection.execute(sa.table(table, *map(sa.column, row)).insert().values(row))


async def _citizens_rows(connection: AsyncConnection, table: str) -> int:
    rows = sa.select(sa.func.count()).select_from(sa.table(table, sa.column("user_id")))
    return (await connection.execute(rows.where(sa.column("user_id") == 1))).scalar_one()


async def _a_citizen_with_history(connection: AsyncConnection) -> None:
    await _insert(connection, "users", {"id": 1, "channel": "telegram", "external_id": "42",
                                        "created_at": AT, "last_seen_at": AT})
    await _insert(connection, "departments", {"code": "TAX", "name": "{}", "enabled": True,
                                              "created_at": AT, "updated_at": AT})
    for table, row in CITIZEN_ROWS.items():
        await _insert(connection, table, row)


async def test_upgrading_keeps_every_row_that_refers_to_a_citizen(unmigrated_url: str) -> None:
    # Migration 0008 rebuilds `users` on SQLite: a rebuild with foreign keys on had deleted each
    # citizen's conversations, messages, consents, web chat and notices, and unlinked their cases.
    engine = db.create_engine(unmigrated_url)
    try:
        await db.upgrade(engine, "0007")
        async with engine.begin() as connection:
            await _a_citizen_with_history(connection)
        await db.upgrade(engine)
        async with engine.connect() as connection:
            kept = {table: await _citizens_rows(connection, table) for table in CITIZEN_ROWS}
    finally:
        await engine.dispose()
    assert kept == dict.fromkeys(CITIZEN_ROWS, 1)


async def test_a_row_left_dangling_by_hand_does_not_stop_an_upgrade(tmp_path: Path) -> None:
    # The sqlite3 shell has foreign keys off: an operator's DELETE there leaves such rows behind, and
    # the check that a migration left none must count only the migration's.
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}")
    try:
        await db.upgrade(engine, "0007")
        async with engine.begin() as connection:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await _insert(connection, "conversations", CITIZEN_ROWS["conversations"])
        await db.upgrade(engine)
        assert await db.current_revision(engine) == db.head_revision()
    finally:
        await engine.dispose()


async def test_several_processes_starting_at_once_migrate_a_new_sqlite_file_once(tmp_path: Path) -> None:
    # `govbot run` and a staff command (or two commands of a set-up script) started together on a new
    # file: each found no tables, and all but one failed on "table departments already exists".
    env = without_govbot_settings(dict(os.environ)) | {
        "GOVBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}"}
    upgrades = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "db", "upgrade", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) for _ in range(4)]
    printed = [(await upgrade.communicate())[0].decode() for upgrade in upgrades]
    assert [upgrade.returncode for upgrade in upgrades] == [0, 0, 0, 0], printed
    assert all(f"database at revision {db.head_revision()}" in text for text in printed)


async def test_upgrading_forgets_the_webhook_secret_govbot_no_longer_keeps(unmigrated_url: str) -> None:
    # The Telegram webhook's secret is derived from the bot token since a leaked backup was enough to
    # forge updates; the row older versions stored stayed in every database that had one.
    engine = db.create_engine(unmigrated_url)
    try:
        await db.upgrade(engine, "0009")
        async with engine.begin() as connection:
            for name in ("telegram-webhook", "web-identity"):
                await _insert(connection, "stored_secrets",
                              {"name": name, "value": "s3cret", "created_at": AT})
        await db.upgrade(engine)
        async with engine.connect() as connection:
            left = (await connection.execute(sa.text("SELECT name FROM stored_secrets"))).scalars().all()
    finally:
        await engine.dispose()
    assert left == ["web-identity"]
