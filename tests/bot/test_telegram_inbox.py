"""The Telegram channel's batched inbox writes, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram_inbox import Arrivals, Outcomes
from bot.channels.telegram_updates import CHANNEL
from storage import db
from storage.inbox import InboxRepository
from tests.conftest import close_every_connection

pytestmark = pytest.mark.postgres

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[Sessions]:
    engine = db.create_engine(postgres_url)
    try:
        yield db.sessionmaker(engine)
    finally:
        await engine.dispose()


async def stored(sessions: Sessions, *update_ids: int) -> None:
    async with db.autocommit(sessions) as session:
        await InboxRepository(session).accept_many(CHANNEL, [(str(n), {"update_id": n}) for n in update_ids])


async def pending(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        return [update.update_id for update in await InboxRepository(session).pending(CHANNEL)]


async def test_outcomes_are_recorded_when_the_database_restarted_under_the_pool(
    sessions: Sessions, postgres_url: str,
) -> None:
    # A lost outcome leaves its update unprocessed, and the inbox sweep would answer it a second time.
    await stored(sessions, 1, 2)
    await close_every_connection(postgres_url)  # what a server restart does to the pool's connections
    outcomes = Outcomes(sessions, delay=0)

    outcomes.add("1", None)
    outcomes.add("2", "RuntimeError: boom")
    await outcomes.flush()

    assert await pending(sessions) == ["2"]  # the failed one may be tried again


async def test_an_update_is_stored_and_handed_on_when_the_database_restarted_under_the_pool(
    sessions: Sessions, postgres_url: str,
) -> None:
    await pending(sessions)  # the pool now holds a connection
    await close_every_connection(postgres_url)
    handed: list[str] = []
    arrivals = Arrivals(sessions, lambda payload, update_id: handed.append(update_id))

    assert await arrivals.store("7", {"update_id": 7}) is True

    assert handed == ["7"]
    assert await pending(sessions) == ["7"]


async def test_a_bug_in_one_outcome_batch_is_logged_and_the_next_batch_is_still_written(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    await stored(sessions, 1, 2)
    outcomes = Outcomes(sessions, delay=0)
    real = InboxRepository.mark_processed_many

    async def failing_once(self: InboxRepository, channel: str, update_ids: list[str]) -> None:
        monkeypatch.setattr(InboxRepository, "mark_processed_many", real)
        outcomes.add("2", None)  # comes in while this batch is being written
        raise RuntimeError("a bug")

    monkeypatch.setattr(InboxRepository, "mark_processed_many", failing_once)

    outcomes.add("1", None)
    await outcomes.flush()

    assert await pending(sessions) == ["1"]  # its outcome was lost, so it is done again
    assert "could not record the outcome of 1 update(s)" in caplog.text
    assert "RuntimeError: a bug" in caplog.text
