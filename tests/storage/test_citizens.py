"""Citizens and their dialogue state: what a turn reads and writes, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import db
from storage.citizens import LAST_SEEN_PRECISION, CitizenRepository, DialogueState
from storage.flood import Verdict
from storage.models import Conversation, Message, User
from tests.conftest import statements

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


async def seen(sessions: Sessions, at: datetime) -> datetime:
    """The citizen's last_seen_at after a turn at ``at``."""
    async with sessions.begin() as session:
        citizen = await CitizenRepository(session).get_or_create("telegram", "42", now=at)
    async with sessions() as session:
        row = await session.get(User, citizen.id)
        assert row is not None
        return row.last_seen_at


async def test_last_seen_moves_once_a_minute_has_passed_and_not_on_every_turn(sessions: Sessions) -> None:
    assert await seen(sessions, NOW) == NOW
    assert await seen(sessions, NOW + timedelta(seconds=30)) == NOW
    later = NOW + LAST_SEEN_PRECISION
    assert await seen(sessions, later) == later
    assert await seen(sessions, NOW) == later  # a clock behind does not move it back


async def turn(sessions: Sessions, state: DialogueState) -> DialogueState:
    """One unit of work as the dialogue does it: the citizen, their state, the new state saved."""
    async with sessions.begin() as session:
        citizens = CitizenRepository(session)
        citizen = await citizens.get_or_create("telegram", "42", now=NOW)
        before = await citizens.state(citizen.id)
        await citizens.save_state(citizen.id, state)
    return before


async def test_the_state_saved_in_a_turn_is_the_state_the_next_turn_reads(sessions: Sessions) -> None:
    waiting = DialogueState("feedback_comment", {"kind": "comment"})
    assert await turn(sessions, waiting) == DialogueState()
    assert await turn(sessions, DialogueState()) == waiting
    assert await turn(sessions, waiting) == DialogueState()


async def test_a_turn_reads_an_existing_conversation_once(sessions: Sessions, engine: AsyncEngine) -> None:
    await turn(sessions, DialogueState())
    for state in (DialogueState("feedback_comment", {"kind": "comment"}), DialogueState()):
        with statements(engine) as sent:
            await turn(sessions, state)
        reads = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "conversations" in s]
        assert len(reads) == 1


async def test_a_turn_that_leaves_the_state_as_it_was_writes_nothing(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    waiting = DialogueState("feedback_comment", {"kind": "comment"})
    await turn(sessions, waiting)
    with statements(engine) as sent:
        assert await turn(sessions, DialogueState("feedback_comment", {"kind": "comment"})) == waiting
    assert [s for s in sent if not s.lstrip().upper().startswith("SELECT")] == []


async def test_a_conversation_erased_during_the_turn_starts_afresh_with_the_saved_state(
    sessions: Sessions,
) -> None:
    waiting = DialogueState("feedback_comment", {"kind": "comment"})
    await turn(sessions, waiting)
    async with sessions.begin() as session:
        citizens = CitizenRepository(session)
        citizen, state = await citizens.begin_turn("telegram", "42", now=NOW)
        assert state == waiting
        await session.execute(delete(Conversation))
        await citizens.save_state(citizen.id, DialogueState("esc_describe"))
    assert await turn(sessions, DialogueState()) == DialogueState("esc_describe")


@pytest.mark.postgres
@pytest.mark.parametrize("conversation", ["kept", "erased"])
async def test_two_turns_of_one_citizen_run_one_after_the_other_across_processes(
    postgres_url: str, conversation: str
) -> None:
    engine = db.create_engine(postgres_url)  # PostgreSQL only: `govbot run --workers` refuses SQLite
    try:
        await _one_after_the_other(db.sessionmaker(engine), erased=conversation == "erased")
    finally:
        await engine.dispose()


async def _one_after_the_other(sessions: Sessions, *, erased: bool) -> None:
    async with sessions.begin() as session:
        citizen, _ = await CitizenRepository(session).begin_turn("telegram", "42", now=NOW)
        await CitizenRepository(session).save_state(citizen.id, DialogueState("asked", {"n": 1}))
    if erased:  # as /forget or the retention job leave a citizen: no conversation row
        async with sessions.begin() as session:
            await session.execute(delete(Conversation))
    first_has_read = asyncio.Event()
    order: list[str] = []

    async def first() -> None:  # as one worker process would: read, think, write, commit
        async with sessions.begin() as session:
            citizens = CitizenRepository(session)
            _, state = await citizens.begin_turn("telegram", "42", now=NOW)
            first_has_read.set()
            await asyncio.sleep(0.3)
            await citizens.set_language(citizen.id, "zh")
            await citizens.save_state(citizen.id, DialogueState("asked", {"n": state.data.get("n", 0) + 1}))
            order.append("first committed")

    async def second() -> tuple[int, str | None]:
        await first_has_read.wait()
        async with sessions.begin() as session:
            found, state = await CitizenRepository(session).begin_turn("telegram", "42", now=NOW)
            order.append("second read")
            return int(state.data["n"]), found.language

    _, seen = await asyncio.gather(first(), second())
    assert order == ["first committed", "second read"]
    # The first turn's writes to both rows, not what both turns would have read side by side.
    assert seen == (1 if erased else 2, "zh")


@pytest.mark.postgres
async def test_a_returning_citizen_is_locked_and_read_in_one_statement(postgres_url: str) -> None:
    engine = db.create_engine(postgres_url)
    sessions = db.sessionmaker(engine)
    try:
        await turn(sessions, DialogueState("asked"))
        with statements(engine) as sent:
            assert await turn(sessions, DialogueState("asked")) == DialogueState("asked")
    finally:
        await engine.dispose()
    reads = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1
    assert "conversations" in reads[0]
    assert reads[0].rstrip().endswith("FOR UPDATE")


@pytest.mark.postgres
async def test_a_new_citizen_is_looked_for_once_and_inserted_once(postgres_url: str) -> None:
    engine = db.create_engine(postgres_url)
    sessions = db.sessionmaker(engine)
    try:
        with statements(engine) as sent:
            assert await turn(sessions, DialogueState("asked")) == DialogueState()
        assert await turn(sessions, DialogueState()) == DialogueState("asked")
    finally:
        await engine.dispose()
    verbs = [s.split(None, 2)[:2] for s in sent]
    # The locking read that finds nobody, the citizen's row, their first state: no second look.
    assert verbs == [["SELECT", "users.id,"], ["INSERT", "INTO"], ["INSERT", "INTO"]]
    assert "INTO users" in sent[1]
    assert "INTO conversations" in sent[2]


async def counted_turn(sessions: Sessions, messages: list[tuple[str, str]]) -> Verdict:
    """A turn as the dialogue runs one under a flood limit of two a minute: counted, its messages kept."""
    async with sessions.begin() as session:
        citizens = CitizenRepository(session)
        citizen, _ = await citizens.begin_turn("telegram", "42", now=NOW)
        verdict = await citizens.count_message(citizen.id, 2, now=NOW)
        if verdict.allowed:
            await citizens.record_messages(citizen.id, messages, now=NOW)
            await citizens.save_state(citizen.id, DialogueState())
    return verdict


async def test_a_message_counted_against_the_flood_limit_is_kept_with_the_turns_messages(
    sessions: Sessions,
) -> None:
    assert await counted_turn(sessions, [("in", "one"), ("out", "two"), ("out", "three")]) is Verdict.ALLOW
    assert await counted_turn(sessions, []) is Verdict.ALLOW  # nothing to keep (an edited reply): counted
    assert await counted_turn(sessions, [("in", "four")]) is Verdict.WARN
    async with sessions() as session:
        kept = (await session.scalars(select(Message.text).order_by(Message.id))).all()
    assert kept == ["one", "two", "three"]


@pytest.mark.postgres
async def test_the_flood_count_costs_no_statement_of_its_own_on_postgresql(postgres_url: str) -> None:
    engine = db.create_engine(postgres_url)
    sessions = db.sessionmaker(engine)
    try:
        await counted_turn(sessions, [("in", "hello")])
        with statements(engine) as sent:
            assert await counted_turn(sessions, [("in", "again"), ("out", "reply")]) is Verdict.ALLOW
    finally:
        await engine.dispose()
    writes = [s for s in sent if not s.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1
    assert "INSERT INTO messages" in writes[0]
    assert "UPDATE users" in writes[0]


async def ended_turn(sessions: Sessions, state: DialogueState, *, erase: bool = False) -> DialogueState:
    """A turn as the dialogue ends one: counted, then its messages and new state kept together."""
    async with sessions.begin() as session:
        citizens = CitizenRepository(session)
        citizen, before = await citizens.begin_turn("telegram", "42", now=NOW)
        assert await citizens.count_message(citizen.id, 100, now=NOW) is Verdict.ALLOW
        if erase:  # as /forget does in its turn
            await session.execute(delete(Conversation))
        await citizens.end_turn(citizen.id, [("in", "hi"), ("out", "hello")], state, now=NOW)
    return before


async def test_a_turns_state_messages_and_flood_count_are_all_kept_at_its_end(sessions: Sessions) -> None:
    waiting = DialogueState("feedback_comment", {"kind": "comment"})
    assert await ended_turn(sessions, waiting) == DialogueState()  # a new citizen
    assert await ended_turn(sessions, DialogueState("esc_describe"), erase=True) == waiting
    assert await ended_turn(sessions, DialogueState()) == DialogueState("esc_describe")  # kept though erased
    async with sessions() as session:
        assert len((await session.scalars(select(Message.text))).all()) == 6
        citizen = (await session.scalars(select(User))).one()
    assert citizen.flood_count == 3


@pytest.mark.postgres
async def test_a_turn_ends_with_one_statement_on_postgresql(postgres_url: str) -> None:
    engine = db.create_engine(postgres_url)
    sessions = db.sessionmaker(engine)
    try:
        with statements(engine) as first:
            await ended_turn(sessions, DialogueState("asked"))
        with statements(engine) as later:
            assert await ended_turn(sessions, DialogueState("asked", {"n": 2})) == DialogueState("asked")
    finally:
        await engine.dispose()
    # A new citizen's row, then their messages, first state and flood count; a returning one's likewise.
    def writes(sent: list[str]) -> list[list[str]]:
        return [s.split(None, 2)[:2] for s in sent if not s.startswith("SELECT")]

    assert writes(first) == [["INSERT", "INTO"], ["WITH", "counted"]]
    assert writes(later) == [["WITH", "counted"]]
    assert "INTO conversations" in later[-1]
