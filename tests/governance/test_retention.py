"""Retention: what is older than the period goes (or is only counted with --dry-run); counts stay."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import db
from storage.audit import AuditKind, AuditLog
from storage.cases import CaseRecord, CaseRepository, NewCase
from storage.citizen_data import Sweep
from storage.citizens import CitizenRepository, DialogueState
from storage.feedback import Feedback, FeedbackKind, FeedbackRepository
from storage.idempotency import IdempotencyRecord, IdempotencyRepository
from storage.inbox import MAX_ATTEMPTS, InboxRepository
from storage.knowledge import KnowledgeRepository
from storage.models import Conversation, InboxUpdate, Message, Question
from storage.notices import CitizenNotice
from storage.outbox import OutboxEvent
from storage.questions import NewQuestion, QuestionRepository
from storage.retention import RetentionJob, run_retention
from storage.suggestions import SuggestionRepository
from tests.escalation.conftest import Dept
from tests.handlers.conftest import small_kb

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
OLD = NOW - timedelta(days=400)


async def seed(sessions: Sessions) -> None:
    """One citizen who wrote 400 days ago and today."""
    async with sessions.begin() as session:
        citizens = CitizenRepository(session)
        me = await citizens.get_or_create("test", "42", now=OLD)
        for when, text in ((OLD, "an old question"), (NOW, "a new question")):
            await citizens.record_message(me.id, "in", text, now=when)
            await QuestionRepository(session).record_question(
                me.id, NewQuestion(
                    text, normalised=text, language="en", decision="none", reason="r", candidates=[],
                    signals={}
                ), now=when,
            )
        await citizens.save_state(me.id, DialogueState("esc_describe"))
    async with sessions.begin() as session:
        row = await session.get(Conversation, me.id)
        assert row is not None
        row.updated_at = OLD


async def counts(sessions: Sessions) -> tuple[int, int, list[str]]:
    async with sessions() as session:
        messages = await session.scalar(select(func.count()).select_from(Message))
        conversations = await session.scalar(select(func.count()).select_from(Conversation))
        texts = sorted(await session.scalars(select(Question.text)))
    return int(messages or 0), int(conversations or 0), texts


async def test_an_update_that_was_never_handled_is_purged_with_the_rest(sessions: Sessions) -> None:
    sender = {"id": 5551234, "first_name": "Li"}
    payload = {"update_id": 1, "message": {"chat": {"id": 5551234}, "from": sender, "text": "I am Li Lei"}}
    async with sessions.begin() as session:
        inbox = InboxRepository(session)
        await inbox.accept("telegram", "1", payload, received_at=OLD)
        for attempt in range(1, MAX_ATTEMPTS + 1):  # every attempt failed: it is never processed
            assert await inbox.claim("telegram", "1", attempt, now=OLD)
            await inbox.mark_failed("telegram", "1", "KeyError: 'x'")
        await inbox.accept("telegram", "2", payload | {"update_id": 2}, received_at=NOW)
    await run_retention(sessions, days=365, now=NOW)
    async with sessions() as session:
        assert list(await session.scalars(select(InboxUpdate.update_id))) == ["2"]


async def test_copies_of_old_words_go_with_the_conversation_and_the_case_stays(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    words = "my neighbour Wang Fang at 12 Elm Street"
    async with sessions.begin() as session:
        me = await CitizenRepository(session).get_or_create("test", "42", now=OLD)
        await CitizenRepository(session).record_message(me.id, "in", f"noise from {words}", now=OLD)
        await FeedbackRepository(session).add(me.id, FeedbackKind.COMMENT, f"about {words}", language="en",
                                              now=OLD)
        cases = CaseRepository(session)
        case = await cases.open_case(NewCase(me.id, "test", "42", "en", "TRANSPORT", "noise at night"), OLD)
        await cases.reply(case.id, "TRANSPORT", f"We spoke to {words}", OLD)
    async with sessions.begin() as session:  # every event was delivered and every notice sent long ago
        await session.execute(update(OutboxEvent).values(status="delivered", finished_at=OLD))
        await session.execute(update(CitizenNotice).values(status="sent", sent_at=OLD))
    dry = await run_retention(sessions, days=365, now=NOW, dry_run=True)
    assert (dry.counts["feedback"], dry.counts["cases"]) == (1, 2)  # the case's excerpt, its one event
    await run_retention(sessions, days=365, now=NOW)
    again = await run_retention(sessions, days=365, now=NOW, dry_run=True)
    assert (again.counts["feedback"], again.counts["cases"]) == (0, 0)  # nothing is counted twice
    async with sessions() as session:
        kept = {
            "feedback": [f.text for f in await session.scalars(select(Feedback))],
            "excerpt": [c.excerpt for c in await session.scalars(select(CaseRecord))],
            "events": [e.payload for e in await session.scalars(select(OutboxEvent))],
            "notices": [n.data for n in await session.scalars(select(CitizenNotice))],
        }
        assert [c.description for c in await session.scalars(select(CaseRecord))] == ["noise at night"]
    assert "Wang Fang" not in json.dumps(kept, ensure_ascii=False, default=str)
    assert kept["feedback"] == [""]  # the comment is still counted, but no longer listed as an empty line
    async with sessions() as session:
        feedback = FeedbackRepository(session)
        assert await feedback.count(OLD, FeedbackKind.COMMENT) == 1
        assert await feedback.items(OLD, (FeedbackKind.COMMENT,)) == []


async def test_words_older_than_the_period_go_from_the_excerpt_of_a_case_opened_since(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    # A citizen who comes back after months and asks for a department: the case quotes their last
    # messages, written long before it. Those words go when the messages do, not a period after the case.
    words = "my neighbour Wang Fang at 12 Elm Street"
    opened = NOW - timedelta(days=100)
    async with sessions.begin() as session:
        me = await CitizenRepository(session).get_or_create("test", "42", now=OLD)
        await CitizenRepository(session).record_message(me.id, "in", f"noise from {words}", now=OLD)
        await CitizenRepository(session).record_message(me.id, "in", "still noisy", now=opened)
        new = NewCase(me.id, "test", "42", "en", "TRANSPORT", "noise at night")
        case = await CaseRepository(session).open_case(new, opened)
    async with sessions.begin() as session:  # the one delivered, the other still waiting for its endpoint
        await CaseRepository(session).add_information(case.id, me.id, "it is every night", opened)
        first = await session.scalar(select(func.min(OutboxEvent.id)))
        await session.execute(update(OutboxEvent).where(OutboxEvent.id == first)
                              .values(status="delivered", finished_at=opened))
    await run_retention(sessions, days=365, now=NOW)
    async with sessions() as session:
        messages = list(await session.scalars(select(Message.text)))
        excerpts = [c.excerpt for c in await session.scalars(select(CaseRecord))]
        events = [e.payload for e in await session.scalars(select(OutboxEvent))]
    assert messages == ["still noisy"]
    assert len(events) == 2, "events of a case opened within the period stay"
    assert "Wang Fang" not in json.dumps([excerpts, events], ensure_ascii=False, default=str)
    again = await run_retention(sessions, days=365, now=NOW, dry_run=True)
    assert again.counts["cases"] == 0


async def test_a_dry_run_only_counts(sessions: Sessions) -> None:
    await seed(sessions)
    result = await run_retention(sessions, days=365, now=NOW, dry_run=True)
    assert result.counts["messages"] == 1
    assert result.counts["questions"] == 1
    assert result.counts["conversation"] == 1
    assert await counts(sessions) == (2, 1, ["a new question", "an old question"])
    async with sessions() as session:
        assert await AuditLog(session).search() == []


async def test_a_run_purges_what_is_older_keeps_the_rest_and_is_audited(sessions: Sessions) -> None:
    await seed(sessions)
    result = await run_retention(sessions, days=365, now=NOW)
    assert result.total == 3
    assert await counts(sessions) == (1, 0, ["", "a new question"])
    async with sessions() as session:
        [record] = await AuditLog(session).search(kind=AuditKind.RETENTION)
        assert await session.scalar(select(func.count()).select_from(Question)) == 2
    assert record.basis == {"retention_days": 365}
    assert (await run_retention(sessions, days=365, now=NOW)).total == 0


async def test_the_job_waits_then_purges_daily_with_the_clock_it_is_given(sessions: Sessions) -> None:
    await seed(sessions)
    waits: list[float] = []
    ran = asyncio.Event()

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 1:
            ran.set()
            await asyncio.Event().wait()  # the next day never comes in this test

    job = RetentionJob(sessions, 365, clock=lambda: NOW, wait=wait)
    task = asyncio.create_task(job.run())
    await asyncio.wait_for(ran.wait(), timeout=10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert waits == [600.0, 86400.0]
    assert job.runs == 1
    assert (await counts(sessions))[0] == 1


async def test_a_failing_purge_is_logged_and_the_job_goes_on(sessions: Sessions) -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("clock broke")

    job = RetentionJob(sessions, 365, clock=broken_clock)
    assert await job.run_once() is None
    assert job.runs == 1


async def test_a_purge_the_database_was_out_of_reach_for_is_tried_again_soon_in_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not a day later with a traceback: the data would then be kept a day past the period."""
    engine = db.create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")  # nothing listens there
    waits: list[float] = []
    tried = asyncio.Event()

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 2:
            tried.set()
            await asyncio.Event().wait()

    job = RetentionJob(async_sessionmaker(engine), 365, clock=lambda: NOW, wait=wait)
    task = asyncio.create_task(job.run())
    try:
        await asyncio.wait_for(tried.wait(), timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()
    assert waits == [600.0, 600.0, 600.0]
    failures = [r for r in caplog.records if r.name == "storage.retention"]
    assert [(r.levelname, r.exc_info) for r in failures] == [("WARNING", None)]  # not one per attempt
    assert "out of reach" in failures[0].getMessage()


async def test_a_notice_no_process_could_send_goes_with_the_rest_once_it_is_older_than_the_period(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    # Telegram's token was removed: its chats' notices are never tried, so never sent nor given up.
    async with sessions.begin() as session:
        me = await CitizenRepository(session).get_or_create("telegram", "42", now=OLD)
        cases = CaseRepository(session)
        case = await cases.open_case(NewCase(me.id, "telegram", "42", "en", "TRANSPORT", "noise"), OLD)
        await cases.reply(case.id, "TRANSPORT", "We spoke to Wang Fang at 12 Elm Street", OLD)
        await cases.reply(case.id, "TRANSPORT", "Is it quiet now?", NOW)
    result = await run_retention(sessions, days=365, now=NOW)
    assert result.counts["notices"] == 1
    async with sessions() as session:
        assert [n.data["text"] for n in await session.scalars(select(CitizenNotice))] == ["Is it quiet now?"]


async def test_responses_kept_for_idempotency_replays_go_once_older_than_the_period(
    sessions: Sessions,
) -> None:
    # A department's write answered with the case and its chat excerpt; the excerpt was purged from the
    # case after the period, but the copy kept for replaying the response stayed for ever.
    excerpt = [{"direction": "in", "text": "my neighbour Wang Fang", "at": OLD.isoformat()}]
    async with sessions.begin() as session:
        keys = IdempotencyRepository(session)
        for key, when in (("old", OLD), ("new", NOW)):
            assert await keys.reserve("TRANSPORT", key, "f" * 64, when) is None
            await keys.complete("TRANSPORT", key, 201, {"case": {"ticket": key}, "excerpt": excerpt})
    assert (await run_retention(sessions, days=365, now=NOW, dry_run=True)).counts["cases"] == 1
    await run_retention(sessions, days=365, now=NOW)
    async with sessions() as session:
        assert list(await session.scalars(select(IdempotencyRecord.key))) == ["new"]


async def test_phrasings_last_chosen_before_the_period_go_unless_accepted(sessions: Sessions) -> None:
    """A suggestion is a copy of citizens' questions: pending or rejected, it goes with them; an accepted
    one is the knowledge base's text by then."""
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "test")
        repo = SuggestionRepository(session)
        old = {text: await repo.record_pick(text, "id-card-lost", now=OLD) for text in PHRASINGS}
        recent = await repo.record_pick("lost my card on the bus", "id-card-lost", now=NOW)
    async with sessions.begin() as session:
        repo = SuggestionRepository(session)
        rejected, accepted = old["card gone at the market"], old["wallet with my card stolen"]
        assert rejected is not None
        assert accepted is not None
        await repo.reject(rejected, now=OLD)
        await repo.accept(accepted, now=OLD)
    assert (await run_retention(sessions, days=365, now=NOW, dry_run=True)).counts["suggestions"] == 2
    await run_retention(sessions, days=365, now=NOW)
    async with sessions() as session:
        kept = await SuggestionRepository(session).listing(None)
    assert sorted((s.id, s.status) for s in kept) == [(accepted, "accepted"), (recent, "pending")]


PHRASINGS = ("card gone at the market", "wallet with my card stolen", "my card was lost in town")


MANY = 2_000_000
"""Old conversations on a database the purge meets for the first time: purged in one transaction, they
stayed locked for half a second or more."""


async def many_old_conversations(sessions: Sessions, count: int) -> None:
    async with sessions.begin() as session:
        await session.execute(text(
            "INSERT INTO users (channel, external_id, created_at, last_seen_at) "
            "SELECT 'test', n::text, :old, :old FROM generate_series(1, :count) AS n"),
            {"old": OLD, "count": count})
        await session.execute(text(
            "INSERT INTO conversations (user_id, state, data, updated_at) "
            "SELECT id, NULL, '{}', :old FROM users"), {"old": OLD})


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_citizen_whose_conversation_is_purged_does_not_wait_for_the_whole_purge(
        sessions: Sessions) -> None:
    await many_old_conversations(sessions, MANY)
    purge = asyncio.create_task(run_retention(sessions, days=365, now=NOW))
    turns = 0
    while not purge.done():  # the citizen writes again and again while the purge runs
        async with sessions() as session:  # rolled back: the turn only takes the citizen's rows
            await session.execute(text("SET LOCAL lock_timeout = '250ms'"))
            await CitizenRepository(session).begin_turn("test", "1", now=NOW)  # the first row purged
        turns += 1
    result = await purge
    assert result.counts["conversation"] == MANY
    assert turns > 1


async def test_a_purge_in_batches_takes_every_row_once(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        inbox = InboxRepository(session)
        for channel, update_id in [("telegram", "1"), ("telegram", "2"), ("web", "1"), ("telegram", "3")]:
            await inbox.accept(channel, update_id, {"update_id": update_id}, received_at=OLD)
        await inbox.accept("telegram", "4", {"update_id": 4}, received_at=NOW)
    await seed(sessions)
    result = await run_retention(sessions, days=365, now=NOW, batch=2)  # keys of two columns, then one
    assert (result.counts["channel_updates"], result.counts["messages"]) == (4, 1)
    async with sessions() as session:
        assert list(await session.execute(select(InboxUpdate.channel, InboxUpdate.update_id))) == [
            ("telegram", "4")]
    assert (await recorded(sessions))["channel_updates"] == 4


class Killed(BaseException):
    """The process died (SIGKILL, power loss): nothing after it runs, not even a ``finally``'s write."""


SWEEP_BATCH = Sweep.batch


class Dying(async_sessionmaker[AsyncSession]):
    """Sessions of a process that dies (no transaction begins after) in its second channel-update batch."""

    def __init__(self, sessions: Sessions) -> None:
        super().__init__(**sessions.kw)
        self.batches, self.dead = 0, False

    def begin(self) -> Any:
        if self.dead:
            raise Killed
        return super().begin()

    async def batch(self, sweep: Sweep, session: AsyncSession, after: Any, limit: int) -> tuple[int, Any]:
        if sweep.model is InboxUpdate:
            self.batches += 1
            self.dead = self.batches == 2
            if self.dead:
                raise Killed
        return await SWEEP_BATCH(sweep, session, after, limit)


async def test_a_purge_killed_between_batches_has_recorded_every_row_it_removed(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions.begin() as session:
        inbox = InboxRepository(session)
        for update_id in ("1", "2", "3", "4", "5"):
            await inbox.accept("telegram", update_id, {"update_id": update_id}, received_at=OLD)
    await seed(sessions)
    dying = Dying(sessions)
    with monkeypatch.context() as patched:
        patched.setattr(Sweep, "batch", lambda sweep, *args: dying.batch(sweep, *args))
        with pytest.raises(Killed):
            await run_retention(dying, days=365, now=NOW, batch=2)
    removed = await old_rows_gone(sessions)
    assert 0 < sum(removed.values()) < 8  # some batches went before the kill, not all
    assert await recorded(sessions) == removed
    await run_retention(sessions, days=365, now=NOW, batch=2)  # the next run takes the rest, recorded too
    assert await recorded(sessions) == await old_rows_gone(sessions) == {
        "channel_updates": 5, "messages": 1, "questions": 1, "conversation": 1}


async def old_rows_gone(sessions: Sessions) -> dict[str, int]:
    """How many of the old rows that ``seed`` and five old channel updates made are gone (or emptied)."""
    messages, conversations, texts = await counts(sessions)
    async with sessions() as session:
        updates = int(await session.scalar(select(func.count()).select_from(InboxUpdate)) or 0)
    gone = {"channel_updates": 5 - updates, "messages": 2 - messages, "questions": texts.count(""),
            "conversation": 1 - conversations}
    return {name: count for name, count in gone.items() if count}


async def recorded(sessions: Sessions) -> dict[str, int]:
    """What the audit log says retention purged, by part; the log verifies."""
    async with sessions() as session:
        assert (await AuditLog(session).verify()).ok
        records = await AuditLog(session).search(kind=AuditKind.RETENTION)
    total: dict[str, int] = {}
    for record in records:
        assert record.details["cutoff"] == (NOW - timedelta(days=365)).isoformat()
        for name, count in record.details["purged"].items():
            total[name] = total.get(name, 0) + count
    return {name: count for name, count in total.items() if count}
