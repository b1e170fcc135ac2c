"""/mydata and /forget of stored channel updates: the citizen's own, not those of people who quote them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import citizen_data
from storage.cases import CaseRepository, NewCase
from storage.citizens import CitizenRepository
from storage.departments import DepartmentRepository
from storage.inbox import InboxRepository
from storage.models import InboxUpdate

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
GROUP = {"id": -1001234, "type": "supergroup"}
LI = {"id": 42, "first_name": "Li"}
WANG = {"id": 77, "first_name": "Wang"}


def message(update_id: int, sender: dict[str, Any], text: str, **more: Any) -> dict[str, Any]:
    return {"update_id": update_id, "message": {"chat": GROUP, "from": sender, "text": text, **more}}


async def test_a_group_members_reply_to_the_citizen_is_neither_exported_nor_erased_with_them(
    sessions: Sessions,
) -> None:
    replied_to = message(0, LI, "how do I renew my ID card?")["message"]
    pressed = {"id": "q", "from": LI, "message": {"chat": GROUP, "from": {"id": 9}}, "data": "menu"}
    updates = [
        message(1, LI, "@govbot how do I renew my ID card?"),
        message(2, WANG, "@govbot and for my son, Wang Xiaoming?", reply_to_message=replied_to),
        {"update_id": 3, "callback_query": pressed},
    ]
    async with sessions.begin() as session:
        li = await CitizenRepository(session).get_or_create("telegram", "42", now=NOW)
        inbox = InboxRepository(session)
        for update in updates:
            await inbox.accept("telegram", str(update["update_id"]), update, received_at=NOW)
    async with sessions() as session:
        exported = (await citizen_data.collect(session, li.id, NOW))["channel_updates"]
    assert [update["update"]["update_id"] for update in exported] == [1, 3]
    assert "Wang Xiaoming" not in json.dumps(exported)
    async with sessions.begin() as session:
        await citizen_data.erase(session, li.id, NOW)
    async with sessions() as session:
        kept = {row.update_id: row.payload for row in await session.scalars(select(InboxUpdate))}
    assert kept == {"1": {}, "2": updates[1], "3": {}}


async def test_export_and_erasure_read_only_the_updates_still_holding_their_content(
    sessions: Sessions,
) -> None:
    # A processed update keeps its id (re-sends are dropped) but not its content: a busy channel's
    # history is not loaded into memory for each citizen's /mydata or /forget.
    async with sessions.begin() as session:
        li = await CitizenRepository(session).get_or_create("telegram", "42", now=NOW)
        inbox = InboxRepository(session)
        for n in range(1, 31):
            update = message(n, LI if n % 2 else WANG, "hello")
            await inbox.accept("telegram", str(n), update, received_at=NOW)
        await inbox.mark_processed_many("telegram", [str(n) for n in range(1, 30)])
    loaded: list[str] = []
    async with sessions() as session:

        def count(_session: object, instance: object) -> None:
            if isinstance(instance, InboxUpdate):
                loaded.append(instance.update_id)

        event.listen(session.sync_session, "loaded_as_persistent", count)
        exported = (await citizen_data.collect(session, li.id, NOW))["channel_updates"]
    assert [update["update"]["update_id"] for update in exported] == []  # 30 is Wang's, and unprocessed
    assert loaded == ["30"]
    async with sessions.begin() as session:
        assert (await citizen_data.erase(session, li.id, NOW))["channel_updates"] == 0
    async with sessions() as session:
        assert len(list(await session.scalars(select(InboxUpdate.update_id)))) == 30


async def test_a_resend_of_the_update_that_erased_the_citizen_is_dropped(sessions: Sessions) -> None:
    # The /forget press is erased while it is being handled; Telegram delivers at least once, and a
    # re-send that ran again would start afresh as a new citizen.
    pressed = {"update_id": 5, "callback_query": {"id": "q", "from": LI, "data": "forget:yes"}}
    async with sessions.begin() as session:
        li = await CitizenRepository(session).get_or_create("telegram", "42", now=NOW)
        assert await InboxRepository(session).accept("telegram", "5", pressed, received_at=NOW)
    async with sessions.begin() as session:
        assert (await citizen_data.erase(session, li.id, NOW))["channel_updates"] == 1
    async with sessions.begin() as session:
        await InboxRepository(session).mark_processed("telegram", "5")
        assert not await InboxRepository(session).accept("telegram", "5", pressed, received_at=NOW)
    async with sessions() as session:
        [row] = await session.scalars(select(InboxUpdate))
    assert (row.payload, row.error, row.processed_at is not None) == ({}, None, True)


async def test_mydata_carries_the_chat_excerpt_each_case_keeps(sessions: Sessions) -> None:
    # The case keeps its own copy of the chat before it, which departments read and which outlives the
    # messages it was copied from (they go with the retention period, or are deleted one by one).
    async with sessions.begin() as session:
        await DepartmentRepository(session).add("TAX", {"en": "Tax"}, ticket_prefix="TX")
        li = await CitizenRepository(session).get_or_create("telegram", "42", now=NOW)
        await CitizenRepository(session).record_message(li.id, "in", "my tax office lost my papers", now=NOW)
        new = NewCase(li.id, "telegram", "42", "en", "TAX", "Lost papers.")
        case = await CaseRepository(session).open_case(new, NOW)
    async with sessions() as session:
        [exported] = (await citizen_data.collect(session, li.id, NOW))["cases"]
    assert exported["excerpt"] == list(case.excerpt)
    assert [item["text"] for item in exported["excerpt"]] == ["my tax office lost my papers"]
