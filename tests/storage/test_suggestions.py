"""Suggested phrasings: recorded from "did you mean" choices, accepted into entries as new revisions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.matcher import Decision
from knowledge.normalise import normalise
from storage import db
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge
from storage.questions import NewQuestion, QuestionRepository
from storage.suggestions import (
    MAX_PHRASING_CHARS,
    Outcome,
    Suggestion,
    SuggestionRepository,
    SuggestionStatus,
    phrasing,
)
from tests.handlers.conftest import NOW, small_kb

Sessions = async_sessionmaker[AsyncSession]
NEW_PHRASING = "my wallet was taken with my card inside"


@pytest.fixture
async def kb(sessions: Sessions) -> Sessions:
    return await with_small_kb(sessions)


async def with_small_kb(sessions: Sessions) -> Sessions:
    """The small knowledge base imported."""
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "test")
    return sessions


async def pick(sessions: Sessions, text: str, entry_id: str, *, days: int = 0) -> int | None:
    """A citizen asked ``text`` and chose ``entry_id`` from "did you mean"."""
    when = NOW + timedelta(days=days)
    async with sessions.begin() as session:
        await QuestionRepository(session).record_question(
            None, NewQuestion(
                text, normalised=normalise(text), language="en", decision="clarify", reason="test",
                candidates=[{"entry_id": entry_id, "score": 0.5}], signals={}
            ), now=when,
        )
        return await SuggestionRepository(session).record_pick(text, entry_id, now=when)


async def listed(
    sessions: Sessions, status: SuggestionStatus | None = SuggestionStatus.PENDING
) -> list[Suggestion]:
    async with sessions() as session:
        return await SuggestionRepository(session).listing(status)


async def test_the_same_phrasing_picked_again_is_counted_not_repeated(kb: Sessions) -> None:
    first = await pick(kb, "My wallet was taken, with my card inside!", "id-card-lost")
    again = await pick(kb, "my wallet was taken with my card inside", "id-card-lost", days=1)
    other_entry = await pick(kb, "my wallet was taken with my card inside", "id-card-renew", days=2)
    assert first == again != other_entry
    [top, second] = await listed(kb)
    assert (top.id, top.text, top.times_chosen, top.language) == (
        first,
        "My wallet was taken, with my card inside",
        2,
        "en",
    )
    assert (top.first_seen_at, top.last_seen_at) == (NOW, NOW + timedelta(days=1))
    assert (second.entry_id, second.times_chosen) == ("id-card-renew", 1)


@pytest.mark.postgres
async def test_citizens_picking_the_same_new_phrasing_at_once_are_all_counted(postgres_url: str) -> None:
    """Picks in transactions of their own, all open at once, as worker processes run them (PostgreSQL
    only: `govbot run --workers` refuses SQLite): the first inserts, the others wait and count."""
    engine = db.create_engine(postgres_url)
    try:
        kb = await with_small_kb(db.sessionmaker(engine))
        all_begun = asyncio.Barrier(3)

        async def pick_at_once() -> int | None:
            async with kb.begin() as session:
                await session.execute(text("SELECT 1"))  # the transaction has begun
                await all_begun.wait()
                return await SuggestionRepository(session).record_pick(NEW_PHRASING, "id-card-lost", now=NOW)

        ids = await asyncio.wait_for(asyncio.gather(*(pick_at_once() for _ in range(3))), timeout=30)
        [suggestion] = await listed(kb)
    finally:
        await engine.dispose()
    assert set(ids) == {suggestion.id}
    assert suggestion.times_chosen == 3


@pytest.mark.postgres
async def test_two_staff_accepting_phrasings_of_one_entry_at_once_keep_both(postgres_url: str) -> None:
    """The second accept waits for the first to commit, then adds to the entry as the first left it."""
    engine = db.create_engine(postgres_url)
    try:
        kb = await with_small_kb(db.sessionmaker(engine))
        first, second = [await pick(kb, text, "id-card-lost") for text in (NEW_PHRASING, "card gone")]
        assert first is not None
        assert second is not None
        async with kb.begin() as session:
            await SuggestionRepository(session).accept(first, now=NOW)

            async def accept_second() -> Outcome:
                async with kb.begin() as other:
                    return (await SuggestionRepository(other).accept(second, now=NOW)).outcome

            waiting = asyncio.create_task(accept_second())
            await asyncio.wait_for(blocked_on_a_lock(kb, waiting), timeout=30)
        assert await asyncio.wait_for(waiting, timeout=30) is Outcome.ACCEPTED
        async with kb() as session:
            entry = await KnowledgeRepository(session).entry("id-card-lost")
    finally:
        await engine.dispose()
    assert entry is not None
    assert entry.alternatives["en"][-2:] == [NEW_PHRASING, "card gone"]


async def blocked_on_a_lock(sessions: Sessions, task: asyncio.Task[Outcome]) -> None:
    """Return once a connection to the database waits for a lock (``task`` must not have ended first)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with sessions() as session:  # a transaction of its own: PostgreSQL keeps the view's snapshot
            if await session.scalar(waiting):
                return
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)


async def test_the_language_of_a_suggestion_is_that_of_its_text(kb: Sessions) -> None:
    await pick(kb, "换证窗口在哪？", "id-card-renew")
    [suggestion] = await listed(kb)
    assert (suggestion.text, suggestion.language) == ("换证窗口在哪", "zh")


@pytest.mark.parametrize("text", ["🙂🙂🙂", "?", "a", "👍 x", "x" * (MAX_PHRASING_CHARS + 1)])
async def test_text_that_cannot_be_a_phrasing_is_not_suggested(kb: Sessions, text: str) -> None:
    assert await pick(kb, text, "id-card-lost") is None
    assert await listed(kb, None) == []


async def test_accepting_writes_a_new_revision_that_a_running_matcher_picks_up(kb: Sessions) -> None:
    live = LiveKnowledge(kb)
    await live.load()
    assert live.matcher.match(NEW_PHRASING, "en", today=NOW.date()).decision is Decision.NONE
    suggestion_id = await pick(kb, NEW_PHRASING, "id-card-lost")
    assert suggestion_id is not None
    async with kb.begin() as session:
        decision = await SuggestionRepository(session).accept(suggestion_id, now=NOW)
    assert decision.outcome is Outcome.ACCEPTED
    async with kb() as session:
        history = await KnowledgeRepository(session).history("id-card-lost")
    assert history[-1].source == f"suggestion:{suggestion_id}"
    assert history[-1].entry is not None
    assert history[-1].entry.alternatives["en"][-1] == NEW_PHRASING
    assert await live.refresh()
    match = live.matcher.match(NEW_PHRASING, "en", today=NOW.date())
    assert (match.decision, match.best and match.best.entry_id) == (Decision.ANSWER, "id-card-lost")
    assert [s.status for s in await listed(kb, None)] == ["accepted"]


async def test_a_suggestion_is_decided_once(kb: Sessions) -> None:
    accepted = await pick(kb, NEW_PHRASING, "id-card-lost")
    rejected = await pick(kb, "card renewal counter", "id-card-renew")
    assert accepted is not None
    assert rejected is not None
    async with kb.begin() as session:
        repo = SuggestionRepository(session)
        assert (await repo.reject(rejected, now=NOW)).outcome is Outcome.REJECTED
        assert (await repo.accept(rejected, now=NOW)).outcome is Outcome.NOT_PENDING
        assert (await repo.accept(accepted, now=NOW)).outcome is Outcome.ACCEPTED
        assert (await repo.reject(accepted, now=NOW)).outcome is Outcome.NOT_PENDING
        assert (await repo.accept(999, now=NOW)).outcome is Outcome.NOT_FOUND
    assert await listed(kb) == []
    assert {s.status for s in await listed(kb, SuggestionStatus.REJECTED)} == {"rejected"}
    # A rejected phrasing chosen again keeps counting, and stays rejected.
    assert await pick(kb, "card renewal counter", "id-card-renew") == rejected
    [again] = await listed(kb, SuggestionStatus.REJECTED)
    assert (again.times_chosen, again.status) == (2, "rejected")


async def test_a_phrasing_the_entry_already_has_is_accepted_without_a_new_revision(kb: Sessions) -> None:
    suggestion_id = await pick(kb, "Lost ID card?", "id-card-lost")
    assert suggestion_id is not None
    async with kb.begin() as session:
        before = len(await KnowledgeRepository(session).history("id-card-lost"))
        assert (await SuggestionRepository(session).accept(suggestion_id)).outcome is Outcome.ALREADY_KNOWN
        assert len(await KnowledgeRepository(session).history("id-card-lost")) == before


async def test_a_suggestion_for_a_deleted_entry_stays_pending(kb: Sessions) -> None:
    suggestion_id = await pick(kb, NEW_PHRASING, "id-card-lost")
    assert suggestion_id is not None
    async with kb.begin() as session:
        await KnowledgeRepository(session).delete_entry("id-card-lost", "test")
        assert (await SuggestionRepository(session).accept(suggestion_id)).outcome is Outcome.ENTRY_GONE
    assert [s.status for s in await listed(kb)] == ["pending"]


def test_phrasing_is_the_tidy_display_form() -> None:
    assert phrasing("  Where is\tthe  counter ?? ") == "Where is the counter"
    assert phrasing("ＩＤ　card？") == "ID card"
    assert phrasing("身份证 ") == "身份证"
    assert phrasing("😡😡") is None
