"""The web chat log: per-citizen numbering without gaps, re-sent messages, and the channel's own secret."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import web_chat
from storage.secrets import stored_secret
from storage.web_chat import NewEntry, WebChatRepository

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


async def entries_of(sessions: async_sessionmaker[AsyncSession], identity: str) -> list[web_chat.ChatEntry]:
    async with sessions() as session:
        chat = WebChatRepository(session)
        citizen = await chat.citizen(identity)
        assert citizen is not None
        return await chat.history(citizen[0])


async def test_entries_are_numbered_per_citizen_from_one_without_gaps(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    greeting = [NewEntry("citizen", "hi"), NewEntry("bot", "<b>hello</b>")]
    first = await web_chat.append(sessions, "alice", greeting, now=NOW)
    assert [e.seq for e in first.entries] == [1, 2]
    await web_chat.append(sessions, "bob", [NewEntry("citizen", "yo")], now=NOW)
    later = await web_chat.append(sessions, "alice", [NewEntry("bot", "notice", buttons=[[{"label": "x",
                                  "payload": "p"}]])], now=NOW)
    assert [e.seq for e in later.entries] == [3]
    stored = await entries_of(sessions, "alice")
    assert [(e.seq, e.role, e.text) for e in stored] == [(1, "citizen", "hi"), (2, "bot", "<b>hello</b>"),
                                                          (3, "bot", "notice")]
    assert stored[2].buttons == [[{"label": "x", "payload": "p"}]]
    assert [e.seq for e in await entries_of(sessions, "bob")] == [1]


async def test_concurrent_writers_for_one_citizen_never_share_or_skip_a_number(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await web_chat.append(sessions, "carol", [NewEntry("citizen", "start")], now=NOW)
    await asyncio.gather(
        *(web_chat.append(sessions, "carol", [NewEntry("bot", f"n{i}"), NewEntry("bot", "x")], now=NOW)
          for i in range(4))
    )
    assert [e.seq for e in await entries_of(sessions, "carol")] == list(range(1, 10))


async def test_a_message_sent_again_is_found_with_what_followed_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await web_chat.append(sessions, "dave", [NewEntry("citizen", "one", client_id="c-00000001")], now=NOW)
    second = [NewEntry("citizen", "two", client_id="c-00000002"), NewEntry("bot", "answer")]
    await web_chat.append(sessions, "dave", second, now=NOW)
    found = await web_chat.since_sent(sessions, "dave", "c-00000002")
    assert found is not None
    assert found.duplicate
    assert [e.text for e in found.entries] == ["two", "answer"]
    assert await web_chat.since_sent(sessions, "dave", "c-unknown1") is None
    assert await web_chat.since_sent(sessions, "nobody", "c-00000002") is None
    again = await web_chat.append(sessions, "dave", second[:1], now=NOW)
    assert again.duplicate
    assert [e.seq for e in again.entries] == [2, 3]


async def test_the_secret_is_made_once_and_then_shared(sessions: async_sessionmaker[AsyncSession]) -> None:
    made = iter(["first-secret-value", "second-secret-value"])
    results = await asyncio.gather(
        *(stored_secret(sessions, "web-identity", lambda: next(made)) for _ in range(2))
    )
    assert results[0] == results[1]
    assert await stored_secret(sessions, "web-identity", lambda: "never used") == results[0]
