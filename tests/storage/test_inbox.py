"""The inbox: updates stored once, re-sends dropped, unprocessed ones found again — on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.inbox import MAX_ATTEMPTS, InboxRepository, PendingUpdate
from storage.models import InboxUpdate

Sessions = async_sessionmaker[AsyncSession]
PAYLOAD: dict[str, Any] = {"update_id": 7, "message": {"text": "你好 & hello", "chat": {"id": 42}}}


async def accept(sessions: Sessions, update_id: str, payload: dict[str, Any] = PAYLOAD,
                 channel: str = "telegram", received_at: datetime | None = None) -> bool:
    async with sessions.begin() as session:
        return await InboxRepository(session).accept(channel, update_id, payload, received_at=received_at)


async def fail(sessions: Sessions, update_id: str, error: str) -> None:
    async with sessions.begin() as session:
        await InboxRepository(session).mark_failed("telegram", update_id, error)


async def pending(sessions: Sessions, channel: str = "telegram") -> list[PendingUpdate]:
    async with sessions() as session:
        return await InboxRepository(session).pending(channel)


async def test_an_accepted_update_is_pending_with_its_payload(sessions: Sessions) -> None:
    assert await accept(sessions, "7")
    [stored] = await pending(sessions)
    assert (stored.channel, stored.update_id, stored.payload) == ("telegram", "7", PAYLOAD)
    assert stored.attempts == 1
    assert stored.error is None
    assert stored.received_at.tzinfo is not None


async def test_a_resent_update_is_refused_and_the_first_copy_kept(sessions: Sessions) -> None:
    assert await accept(sessions, "7")
    assert not await accept(sessions, "7", {"update_id": 7, "changed": True})
    [stored] = await pending(sessions)
    assert stored.payload == PAYLOAD


async def test_the_same_update_id_on_another_channel_is_a_different_update(sessions: Sessions) -> None:
    assert await accept(sessions, "7", channel="telegram")
    assert await accept(sessions, "7", channel="web")
    assert [p.channel for p in await pending(sessions, "telegram")] == ["telegram"]
    assert [p.channel for p in await pending(sessions, "web")] == ["web"]


async def test_a_processed_update_is_no_longer_pending_nor_accepted_again(sessions: Sessions) -> None:
    await accept(sessions, "7")
    await accept(sessions, "8")
    async with sessions.begin() as session:
        await InboxRepository(session).mark_processed("telegram", "7")
    assert [p.update_id for p in await pending(sessions)] == ["8"]
    assert not await accept(sessions, "7")


async def test_a_processed_update_keeps_no_personal_data(sessions: Sessions) -> None:
    await accept(sessions, "7")
    async with sessions.begin() as session:
        await InboxRepository(session).mark_processed("telegram", "7")
    async with sessions() as session:
        stored = await session.get(InboxUpdate, ("telegram", "7"))
    assert stored is not None
    assert stored.payload == {}


async def test_updates_marked_processed_together_are_all_done_and_only_they(sessions: Sessions) -> None:
    for update_id in ("7", "8", "9"):
        await accept(sessions, update_id)
    await accept(sessions, "7", channel="web")
    await fail(sessions, "9", "RuntimeError: first")
    async with sessions.begin() as session:
        await InboxRepository(session).mark_processed_many("telegram", ["7", "9", "404"])
        await InboxRepository(session).mark_processed_many("telegram", [])
    assert [p.update_id for p in await pending(sessions)] == ["8"]
    assert [p.update_id for p in await pending(sessions, "web")] == ["7"]


async def test_a_failed_update_is_retried_until_its_attempts_run_out(sessions: Sessions) -> None:
    await accept(sessions, "7")  # the first attempt begins with accepting
    await fail(sessions, "7", "RuntimeError: first")
    for retry in ("second", "third"):
        [stored] = await pending(sessions)
        async with sessions.begin() as session:
            assert await InboxRepository(session).claim("telegram", "7", stored.attempts)
        await fail(sessions, "7", f"RuntimeError: {retry}")
    assert MAX_ATTEMPTS == 3
    assert await pending(sessions) == []


async def test_a_failed_update_keeps_the_latest_error(sessions: Sessions) -> None:
    await accept(sessions, "7")
    await fail(sessions, "7", "RuntimeError: first")
    await fail(sessions, "7", "TimedOut: second")
    [stored] = await pending(sessions)
    assert stored.error == "TimedOut: second"


async def test_only_one_of_two_claims_on_the_same_attempt_wins(sessions: Sessions) -> None:
    await accept(sessions, "7")
    async with sessions.begin() as session:
        first = await InboxRepository(session).claim("telegram", "7", 1)
    async with sessions.begin() as session:
        second = await InboxRepository(session).claim("telegram", "7", 1)
    assert (first, second) == (True, False)
    [stored] = await pending(sessions)
    assert stored.attempts == 2


async def test_a_processed_update_cannot_be_claimed(sessions: Sessions) -> None:
    await accept(sessions, "7")
    async with sessions.begin() as session:
        await InboxRepository(session).mark_processed("telegram", "7")
    async with sessions.begin() as session:
        assert not await InboxRepository(session).claim("telegram", "7", 1)


async def test_a_long_error_is_cut_to_fit_the_column(sessions: Sessions) -> None:
    await accept(sessions, "7")
    await fail(sessions, "7", "x" * 2000)
    [stored] = await pending(sessions)
    assert stored.error == "x" * 500


async def test_pending_lists_oldest_first(sessions: Sessions) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minutes, update_id in enumerate(("3", "1", "2")):
        await accept(sessions, update_id, received_at=start + timedelta(minutes=minutes))
    assert [p.update_id for p in await pending(sessions)] == ["3", "1", "2"]


@pytest.mark.parametrize(("channel", "update_id"), [("", "1"), ("telegram", ""), ("telegram", "9" * 65),
                                                    ("c" * 21, "1")])
async def test_keys_that_do_not_fit_are_refused(sessions: Sessions, channel: str, update_id: str) -> None:
    with pytest.raises(ValueError, match="must be 1 to"):
        await accept(sessions, update_id, channel=channel)
    assert await pending(sessions, channel or "telegram") == []


async def test_several_updates_are_stored_in_one_go_and_only_the_new_ones_are_reported(
        sessions: Sessions) -> None:
    assert await accept(sessions, "7")
    other = {"update_id": 8, "message": {"text": "second"}}
    async with sessions.begin() as session:
        new = await InboxRepository(session).accept_many("telegram", [("7", {"resent": True}), ("8", other)])
    assert new == {"8"}
    assert {(p.update_id, p.payload["update_id"]) for p in await pending(sessions)} == {("7", 7), ("8", 8)}


async def test_storing_the_same_update_twice_in_one_go_is_refused(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        with pytest.raises(ValueError, match="twice"):
            await InboxRepository(session).accept_many("telegram", [("7", PAYLOAD), ("7", PAYLOAD)])


async def test_an_attempt_younger_than_the_lease_is_not_offered_for_taking_over(sessions: Sessions) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await accept(sessions, "7", received_at=start)  # another process is processing it right now
    async with sessions() as session:
        inbox = InboxRepository(session)
        assert await inbox.pending("telegram", stale_before=start) == []
        later = await inbox.pending("telegram", stale_before=start + timedelta(1))
        assert [p.update_id for p in later] == ["7"]


async def test_a_claim_starts_a_new_lease(sessions: Sessions) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await accept(sessions, "7", received_at=start)
    async with sessions.begin() as session:
        assert await InboxRepository(session).claim("telegram", "7", 1, now=start + timedelta(minutes=10))
    async with sessions() as session:
        inbox = InboxRepository(session)
        assert await inbox.pending("telegram", stale_before=start + timedelta(minutes=10)) == []
        [stored] = await inbox.pending("telegram", stale_before=start + timedelta(minutes=11))
        assert stored.attempts == 2


async def test_a_released_update_can_be_taken_over_at_once(sessions: Sessions) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await accept(sessions, "7", received_at=start)
    await accept(sessions, "8", received_at=start)
    async with sessions.begin() as session:
        await InboxRepository(session).release("telegram", ["7"])
    async with sessions() as session:
        pending = await InboxRepository(session).pending("telegram", stale_before=start)
    assert [p.update_id for p in pending] == ["7"]


async def test_a_failures_message_is_kept_masked(sessions: Sessions) -> None:
    await accept(sessions, "9")
    await fail(sessions, "9", "ValueError: cannot read 'call me on 13812345678 or li@example.org'")
    async with sessions() as session:
        [error] = await session.scalars(select(InboxUpdate.error))
    assert error is not None
    assert "13812345678" not in error
    assert "li@example.org" not in error
    assert error.startswith("ValueError: cannot read 'call me on 138****5678")
