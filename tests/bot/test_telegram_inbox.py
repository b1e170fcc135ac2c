"""The Telegram channel's batched inbox writes, on PostgreSQL."""

from __future__ import annotations

import pytest

from bot.channels.telegram_inbox import Arrivals, Outcomes
from bot.channels.telegram_updates import CHANNEL
from storage import db
from storage.inbox import InboxRepository
from tests.conftest import close_every_connection


@pytest.mark.postgres
async def test_outcomes_are_recorded_when_the_database_restarted_under_the_pool(postgres_url: str) -> None:
    # A lost outcome leaves its update unprocessed, and the inbox sweep would answer it a second time.
    engine = db.create_engine(postgres_url)
    try:
        sessions = db.sessionmaker(engine)
        async with db.autocommit(sessions) as session:
            updates = [("1", {"update_id": 1}), ("2", {"update_id": 2})]
            await InboxRepository(session).accept_many(CHANNEL, updates)
        await close_every_connection(postgres_url)  # what a server restart does to the pool's connections
        outcomes = Outcomes(sessions, delay=0)

        outcomes.add("1", None)
        outcomes.add("2", "RuntimeError: boom")
        await outcomes.flush()

        async with sessions() as session:
            left = await InboxRepository(session).pending(CHANNEL)
        assert [update.update_id for update in left] == ["2"]  # the failed one may be tried again
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_an_update_is_stored_and_handed_on_when_the_database_restarted_under_the_pool(
    postgres_url: str,
) -> None:
    engine = db.create_engine(postgres_url)
    try:
        sessions = db.sessionmaker(engine)
        async with sessions() as session:
            await InboxRepository(session).pending(CHANNEL)  # the pool now holds a connection
        await close_every_connection(postgres_url)
        handed: list[str] = []
        arrivals = Arrivals(sessions, lambda payload, update_id: handed.append(update_id))

        assert await arrivals.store("7", {"update_id": 7}) is True

        assert handed == ["7"]
        async with sessions() as session:
            assert [update.update_id for update in await InboxRepository(session).pending(CHANNEL)] == ["7"]
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_bug_in_one_outcome_batch_is_logged_and_the_next_batch_is_still_written(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    engine = db.create_engine(postgres_url)
    try:
        sessions = db.sessionmaker(engine)
        async with db.autocommit(sessions) as session:
            updates = [("1", {"update_id": 1}), ("2", {"update_id": 2})]
            await InboxRepository(session).accept_many(CHANNEL, updates)
        outcomes = Outcomes(sessions, delay=0)
        real = InboxRepository.mark_processed_many

        async def failing_once(self: InboxRepository, channel: str, update_ids: list[str]) -> None:
            monkeypatch.setattr(InboxRepository, "mark_processed_many", real)
            outcomes.add("2", None)  # comes in while this batch is being written
            raise RuntimeError("a bug")

        monkeypatch.setattr(InboxRepository, "mark_processed_many", failing_once)

        outcomes.add("1", None)
        await outcomes.flush()

        async with sessions() as session:
            left = await InboxRepository(session).pending(CHANNEL)
        assert [update.update_id for update in left] == ["1"]  # its outcome was lost, so it is done again
        assert "could not record the outcome of 1 update(s)" in caplog.text
        assert "RuntimeError: a bug" in caplog.text
    finally:
        await engine.dispose()
