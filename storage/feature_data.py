"""The citizen-data parts of the feedback, escalation and web chat features (see storage/citizen_data.py).

Erasing cases closes the open ones and tells their departments with ``case.closed`` (reason ``erased``);
the case rows stay for the figures (department, status, satisfaction, times) with every text and the
contact data gone, and the payloads of their events still in the outbox are cut to nothing personal, so a
delivery in flight after the erasure carries nothing erased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from storage import case_events
from storage.case_events import iso
from storage.cases import CaseChangeRecord, CaseRecord, CaseRepository, CaseStatus
from storage.citizen_data import MAX_ROWS, Part, Sweep, register
from storage.classification import DataClass
from storage.disclosure import govern_event
from storage.feedback import Feedback
from storage.idempotency import IdempotencyRecord
from storage.models import Question
from storage.notices import CitizenNotice
from storage.outbox import DeliveryStatus, OutboxEvent, OutboxRepository, new_webhook_id
from storage.questions import chose_an_entry
from storage.suggestions import SuggestionRepository, SuggestionRow, SuggestionStatus
from storage.web_chat import WebEntry

ERASED_CHAT = "erased"
ERASED_REASON = "erased"


async def _feedback(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Feedback).where(Feedback.user_id == citizen_id).order_by(Feedback.id).limit(MAX_ROWS)
    )
    return [
        {"kind": row.kind, "entry": row.entry_id, "text": row.text, "at": iso(row.created_at)} for row in rows
    ]


async def _erase_feedback(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    # Kind and entry stay, so the counts in the staff reports do not change; the words go.
    result = await session.execute(
        update(Feedback)
        .where(Feedback.user_id == citizen_id, Feedback.text != "")
        .values(text="")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _cases(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    repo = CaseRepository(session)
    found = []
    for case in reversed(await repo.of_citizen(citizen_id, limit=MAX_ROWS)):
        history = await repo.history(case.id)
        found.append(
            {
                "ticket": case.ticket,
                "department": case.department,
                "status": case.status.value,
                "description": case.description,
                "contact": case.contact,
                "excerpt": list(case.excerpt),
                "opened": iso(case.created_at),
                "closed": iso(case.closed_at),
                "satisfaction": case.satisfaction,
                "history": [change.to_json() for change in history],
            }
        )
    return found


async def _erase_cases(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    rows = list(
        await session.scalars(
            select(CaseRecord)
            .where(CaseRecord.user_id == citizen_id)
            .order_by(CaseRecord.id)
            .with_for_update()
        )
    )
    for row in rows:
        await _erase_case(session, row, now)
    return len(rows)


async def _erase_case(session: AsyncSession, row: CaseRecord, now: datetime) -> None:
    was_open = row.status != CaseStatus.CLOSED.value
    row.description, row.contact, row.contact_consent_at = "", None, None
    row.excerpt, row.chat_id = [], ERASED_CHAT
    await session.execute(
        update(CaseChangeRecord)
        .where(CaseChangeRecord.case_id == row.id)
        .values(text=None)
        .execution_options(synchronize_session=False)
    )
    await _scrub_outbox(session, row.id)
    # Responses kept for Idempotency-Key replays hold the case as it was; a repeat now does the work again.
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.body["case"]["ticket"].as_string() == row.ticket)
    )
    if was_open:
        row.status, row.closed_at, row.updated_at = CaseStatus.CLOSED.value, now, now
        session.add(
            CaseChangeRecord(
                case_id=row.id, kind="erased", actor="citizen", text=None, data={}, created_at=now
            )
        )
        await session.flush()
        case = await CaseRepository(session).get(row.id)
        assert case is not None
        webhook_id = new_webhook_id()
        payload = case_events.event_payload(
            case_events.CASE_CLOSED, webhook_id, now, case, {"reason": ERASED_REASON}
        )
        await OutboxRepository(session).enqueue(case_events.CASE_CLOSED, row.id, row.department, payload, now)


async def _scrub_outbox(session: AsyncSession, case_id: int) -> None:
    """Stored payloads of the case's events (delivered or not) keep nothing personal."""
    for event in await session.scalars(select(OutboxEvent).where(OutboxEvent.case_id == case_id)):
        event.payload = govern_event(
            dict(event.payload), clearance=DataClass.SENSITIVE, consents={}, erased=True
        ).document


async def _erase_notices(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    result = await session.execute(delete(CitizenNotice).where(CitizenNotice.user_id == citizen_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def _notices(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(CitizenNotice)
        .where(CitizenNotice.user_id == citizen_id)
        .order_by(CitizenNotice.id)
        .limit(MAX_ROWS)
    )
    return [{"kind": row.kind, "status": row.status, "at": iso(row.created_at)} for row in rows]


async def _web_chat(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(WebEntry).where(WebEntry.user_id == citizen_id).order_by(WebEntry.seq).limit(MAX_ROWS)
    )
    return [{"role": row.role, "text": row.text, "kind": row.kind, "at": iso(row.created_at)} for row in rows]


async def _erase_web_chat(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    result = await session.execute(delete(WebEntry).where(WebEntry.user_id == citizen_id))
    return int(getattr(result, "rowcount", 0) or 0)


def _purge_web_chat(cutoff: datetime) -> list[Sweep]:
    return [Sweep(WebEntry, (WebEntry.created_at < cutoff,))]


class _StoredExcerpt(FunctionElement[int]):
    """How many messages the excerpt in a stored event payload holds (NULL: it has none)."""

    type = Integer()
    inherit_cache = True


class _WithoutExcerpt(FunctionElement[Any]):
    """A stored event payload with its excerpt emptied, everything else as it was."""

    type = JSON()
    inherit_cache = True


@compiles(_StoredExcerpt, "postgresql")
def _stored_excerpt_pg(element: _StoredExcerpt, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length(({compiler.process(element.clauses, **kw)}) -> 'data' -> 'excerpt')"


@compiles(_StoredExcerpt, "sqlite")
def _stored_excerpt_sqlite(element: _StoredExcerpt, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length({compiler.process(element.clauses, **kw)}, '$.data.excerpt')"


@compiles(_WithoutExcerpt, "postgresql")
def _without_excerpt_pg(element: _WithoutExcerpt, compiler: SQLCompiler, **kw: Any) -> str:
    payload = compiler.process(element.clauses, **kw)
    return f"CAST(jsonb_set(CAST({payload} AS jsonb), '{{data,excerpt}}', '[]'::jsonb) AS json)"


@compiles(_WithoutExcerpt, "sqlite")
def _without_excerpt_sqlite(element: _WithoutExcerpt, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_set({compiler.process(element.clauses, **kw)}, '$.data.excerpt', json('[]'))"


def _purge_cases(cutoff: datetime) -> list[Sweep]:
    """A case outlives the period (it is the record of what was done), but not its copies of the chat:
    the excerpt goes, the events sent about it (delivered or dead) with their payloads and attempts, and
    the responses kept for Idempotency-Key replays, which hold the case with its excerpt as answered.

    An event still waiting (its endpoint down or gone) keeps the rest of its payload, so the department
    still learns of the case once its endpoint is back; the excerpt goes from it as from the case. The
    payload is governed and signed when it is sent, so what goes out is the payload as stored then.

    An excerpt quotes the messages before its case, which may be far older than the case (a citizen back
    after months): it goes, from the case and from every event carrying it, once its oldest message is
    older than the period, as that message does."""
    quoted_before = iso(cutoff)  # the excerpt's times are ISO text in UTC, so they compare as text
    old_case_words = or_(
        CaseRecord.created_at < cutoff, CaseRecord.excerpt[(0, "at")].as_string() < quoted_before
    )
    old_event_words = or_(
        OutboxEvent.created_at < cutoff,
        OutboxEvent.payload[("data", "excerpt", 0, "at")].as_string() < quoted_before,
    )
    quoting = (old_case_words, func.json_array_length(CaseRecord.excerpt) > 0)
    finished = (OutboxEvent.created_at < cutoff, OutboxEvent.status != DeliveryStatus.PENDING.value)
    # Those the sweep before does not delete (still waiting, or sent within the period) lose the excerpt.
    kept = or_(OutboxEvent.created_at >= cutoff, OutboxEvent.status == DeliveryStatus.PENDING.value)
    quoting_events = (kept, old_event_words, _StoredExcerpt(OutboxEvent.payload) > 0)
    return [Sweep(CaseRecord, quoting, {"excerpt": []}),
            Sweep(IdempotencyRecord, (IdempotencyRecord.created_at < cutoff,)),
            Sweep(OutboxEvent, finished),
            Sweep(OutboxEvent, quoting_events, {"payload": _WithoutExcerpt(OutboxEvent.payload)})]


def _purge_notices(cutoff: datetime) -> list[Sweep]:
    """Notices written before the cut-off, sent or not: one still pending is for a channel no process sends
    through (its token was removed), or has been retried longer than the conversation it answers is kept."""
    return [Sweep(CitizenNotice, (CitizenNotice.created_at < cutoff,))]


def _purge_feedback(cutoff: datetime) -> list[Sweep]:
    """As erasure does, the words go and the kinds stay for the reports' counts."""
    return [Sweep(Feedback, (Feedback.created_at < cutoff, Feedback.text != ""), {"text": ""})]


async def _suggestions(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    """The phrasings the citizen's "did you mean" picks proposed to staff (kept without their name)."""
    return [{"entry_id": entry_id, "text": text} for entry_id, text in (await session.execute(
        select(Question.chosen_entry_id, Question.text)
        .where(Question.user_id == citizen_id, chose_an_entry())
        .order_by(Question.id)
        .limit(MAX_ROWS)
    )).all()]


async def _erase_suggestions(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    return await SuggestionRepository(session).withdraw_picks(citizen_id)


def _purge_suggestions(cutoff: datetime) -> list[Sweep]:
    """Phrasings nobody chose since the cut-off, pending or rejected: copies of old questions. An accepted
    one is the knowledge base's text by then and stays."""
    stale = (SuggestionRow.last_seen_at < cutoff, SuggestionRow.status != SuggestionStatus.ACCEPTED.value)
    return [Sweep(SuggestionRow, stale)]


register(Part("cases", _cases, _erase_cases, _purge_cases, order=10))
register(Part("notices", _notices, _erase_notices, _purge_notices, order=20))
register(Part("feedback", _feedback, _erase_feedback, _purge_feedback, order=30))
register(Part("web_chat", _web_chat, _erase_web_chat, _purge_web_chat, order=40))
# Before the questions' texts are emptied (order 60): the picks are found by them.
register(Part("suggestions", _suggestions, _erase_suggestions, _purge_suggestions, order=50))
