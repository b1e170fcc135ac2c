"""Cases, tickets, the outbox and citizen notices on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.cases import (
    CaseClosed,
    CaseNotFound,
    CaseRecord,
    CaseRepository,
    CaseStatus,
    NewCase,
    normalise_ticket,
)
from storage.citizens import CitizenRepository
from storage.departments import DepartmentRepository
from storage.notices import NoticeRepository
from storage.outbox import AttemptResult, DeliveryStatus, OutboxEvent, OutboxRepository, Outcome

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
LEASE = timedelta(seconds=60)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def citizen(sessions: Sessions) -> int:
    async with sessions.begin() as session:
        repo = DepartmentRepository(session)
        await repo.add(
            "TRANSPORT", {"en": "Transport"}, webhook_url="https://t.example/hook", ticket_prefix="TR"
        )
        await repo.add("TAX", {"en": "Tax"}, webhook_url="https://tax.example/hook", ticket_prefix="TX")
        person = await CitizenRepository(session).get_or_create("test", "42", now=NOW)
        for n in range(25):
            await CitizenRepository(session).record_message(person.id, "in", f"message {n}", now=NOW)
        return person.id


def new_case(citizen: int, department: str = "TRANSPORT", **kwargs: object) -> NewCase:
    return NewCase(citizen, "test", "42", "en", department, "The bus did not stop.", **kwargs)  # type: ignore[arg-type]


async def open_case(
    sessions: Sessions, citizen: int, department: str = "TRANSPORT", now: datetime = NOW
) -> int:
    async with sessions.begin() as session:
        return (await CaseRepository(session).open_case(new_case(citizen, department), now)).id


async def test_tickets_count_per_prefix_and_restart_each_year(sessions: Sessions, citizen: int) -> None:
    async with sessions.begin() as session:
        repo = CaseRepository(session)
        tickets = [
            (await repo.open_case(new_case(citizen, dept), now)).ticket
            for dept, now in (
                ("TRANSPORT", NOW),
                ("TRANSPORT", NOW),
                ("TAX", NOW),
                ("TRANSPORT", NOW.replace(year=2027, month=1, day=1)),
            )
        ]
    assert tickets == ["TR-2026-000001", "TR-2026-000002", "TX-2026-000001", "TR-2027-000001"]


def test_tickets_are_recognised_in_any_case_and_nothing_else_is() -> None:
    assert normalise_ticket(" tr-2026-000123 ") == "TR-2026-000123"
    for text in ("TR-26-1", "hello", "TR-2026-12", "' OR 1=1 --", ""):
        assert normalise_ticket(text) is None


async def test_the_case_and_its_created_event_are_written_together_or_not_at_all(
    sessions: Sessions, citizen: int
) -> None:
    class Abort(Exception):
        pass

    async def open_then_fail() -> None:
        async with sessions.begin() as session:
            await CaseRepository(session).open_case(new_case(citizen), NOW)
            raise Abort

    with pytest.raises(Abort):
        await open_then_fail()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CaseRecord)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    case_id = await open_case(sessions, citizen)
    async with sessions() as session:
        event = await session.scalar(select(OutboxEvent))
    assert event is not None
    assert (event.type, event.case_id, event.department) == ("case.created", case_id, "TRANSPORT")
    payload = event.payload
    assert (payload["type"], payload["version"], payload["id"]) == ("case.created", 1, event.webhook_id)
    assert payload["data"]["case"]["ticket"] == "TR-2026-000001"
    assert [m["text"] for m in payload["data"]["excerpt"]][-1] == "message 24"
    assert len(payload["data"]["excerpt"]) == 20


async def test_contact_details_reach_the_payload_only_with_consent(sessions: Sessions, citizen: int) -> None:
    async with sessions.begin() as session:
        repo = CaseRepository(session)
        without = await repo.open_case(new_case(citizen, contact="Li Wei 13800138000"), NOW)
        consented = await repo.open_case(
            new_case(citizen, contact="Li Wei 13800138000", contact_consent_at=NOW), NOW
        )
    assert without.contact is None
    async with sessions() as session:
        payloads = (await session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id))).all()
    assert "contact" not in payloads[0]["data"]["citizen"]
    assert payloads[1]["data"]["citizen"]["contact"] == "Li Wei 13800138000"
    assert consented.contact_consent_at == NOW


async def test_citizen_changes_queue_updated_and_closed_events(sessions: Sessions, citizen: int) -> None:
    case_id = await open_case(sessions, citizen)
    async with sessions.begin() as session:
        repo = CaseRepository(session)
        await repo.add_information(case_id, citizen, "It was the 7:40 bus.", NOW)
        closed = await repo.withdraw(case_id, citizen, NOW)
        with pytest.raises(CaseClosed):
            await repo.add_information(case_id, citizen, "more", NOW)
        with pytest.raises(CaseNotFound):
            await repo.withdraw(case_id, citizen + 1, NOW)
    assert closed.status is CaseStatus.CLOSED
    async with sessions() as session:
        events = (
            await session.execute(select(OutboxEvent.type, OutboxEvent.payload).order_by(OutboxEvent.id))
        ).all()
    assert [t for t, _ in events] == ["case.created", "case.updated", "case.closed"]
    assert events[1][1]["data"]["update"]["text"] == "It was the 7:40 bus."
    assert events[2][1]["data"]["reason"] == "withdrawn"


async def test_a_rating_is_only_taken_from_the_citizen_on_a_finished_case(
    sessions: Sessions, citizen: int
) -> None:
    case_id = await open_case(sessions, citizen)
    async with sessions.begin() as session:
        repo = CaseRepository(session)
        assert await repo.rate(case_id, citizen, 5, NOW) is None
        await repo.set_status(case_id, "TRANSPORT", CaseStatus.RESOLVED, None, NOW)
        assert await repo.rate(case_id, citizen + 1, 5, NOW) is None
        assert await repo.rate(case_id, citizen, 9, NOW) is None
        rated = await repo.rate(case_id, citizen, 4, NOW)
    assert rated is not None
    assert rated.satisfaction == 4


async def test_claims_follow_each_cases_order_and_skip_departments_without_endpoint(
    sessions: Sessions, citizen: int
) -> None:
    first = await open_case(sessions, citizen)
    second = await open_case(sessions, citizen)
    async with sessions.begin() as session:
        await CaseRepository(session).add_information(first, citizen, "more", NOW)
        await DepartmentRepository(session).add("CITY", {"en": "City"})
    async with sessions.begin() as session:
        claimed = await OutboxRepository(session).claim("d1", NOW, limit=10, lease=LEASE)
    assert [(d.case_id, d.type) for d in claimed] == [(first, "case.created"), (second, "case.created")]
    async with sessions.begin() as session:
        # The update of the first case waits until its created event is delivered.
        assert await OutboxRepository(session).claim("d2", NOW, limit=10, lease=LEASE) == []
        await OutboxRepository(session).record("d1", [delivered(claimed[0])], NOW)
    async with sessions.begin() as session:
        [update] = await OutboxRepository(session).claim("d2", NOW, limit=10, lease=LEASE)
    assert (update.case_id, update.type) == (first, "case.updated")


def delivered(delivery: object) -> AttemptResult:
    return AttemptResult(delivery, Outcome.DELIVERED, NOW, status_code=200, latency_ms=3)  # type: ignore[arg-type]


async def test_a_dead_event_holds_back_the_later_events_of_its_case_until_replayed(
    sessions: Sessions, citizen: int
) -> None:
    case_id = await open_case(sessions, citizen)
    async with sessions.begin() as session:
        await CaseRepository(session).add_information(case_id, citizen, "more", NOW)
        [created] = await OutboxRepository(session).claim("d1", NOW, limit=10, lease=LEASE)
        dead = AttemptResult(created, Outcome.FAILED, NOW, status_code=500, error="HTTP 500", retry_at=None)
        await OutboxRepository(session).record("d1", [dead], NOW)
    async with sessions.begin() as session:
        repo = OutboxRepository(session)
        assert await repo.claim("d1", NOW, limit=10, lease=LEASE) == []
        assert [e.status for e in await repo.events(status="dead")] == ["dead"]
        assert await repo.replay(created.webhook_id, NOW) is not None
    async with sessions.begin() as session:
        [again] = await OutboxRepository(session).claim("d1", NOW, limit=10, lease=LEASE)
    assert (again.webhook_id, again.attempt, again.tries) == (created.webhook_id, 2, 1)


async def test_an_expired_lease_is_claimed_again_and_the_lost_attempt_recorded(
    sessions: Sessions, citizen: int
) -> None:
    await open_case(sessions, citizen)
    async with sessions.begin() as session:
        [first] = await OutboxRepository(session).claim("dead-process", NOW, limit=1, lease=LEASE)
    async with sessions.begin() as session:
        assert await OutboxRepository(session).claim("d2", NOW + LEASE / 2, limit=1, lease=LEASE) == []
    async with sessions.begin() as session:
        [again] = await OutboxRepository(session).claim("d2", NOW + LEASE * 2, limit=1, lease=LEASE)
        # The dead process's late result no longer moves the event.
        await OutboxRepository(session).record("dead-process", [delivered(first)], NOW)
        attempts = await OutboxRepository(session).attempts(first.id)
        event = await OutboxRepository(session).event(str(first.id))
    assert again.attempt == 2
    assert [(a.number, a.dispatcher, a.outcome) for a in attempts] == [
        (1, "dead-process", "delivered"),
        (2, "d2", "in_progress"),
    ]
    assert event is not None
    assert event.status == DeliveryStatus.PENDING


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_claims_on_postgresql_never_share_an_event(sessions: Sessions, citizen: int) -> None:
    for _ in range(40):
        await open_case(sessions, citizen)

    async def claim(name: str) -> list[int]:
        async with sessions.begin() as session:
            return [d.id for d in await OutboxRepository(session).claim(name, NOW, limit=15, lease=LEASE)]

    results = await asyncio.gather(*(claim(f"d{n}") for n in range(4)))
    claimed = [event for batch in results for event in batch]
    assert len(claimed) == len(set(claimed)) == 40


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_cases_on_postgresql_get_distinct_consecutive_tickets(
    sessions: Sessions, citizen: int
) -> None:
    async def one() -> str:
        async with sessions.begin() as session:
            return (await CaseRepository(session).open_case(new_case(citizen), NOW)).ticket

    tickets = await asyncio.gather(*(one() for _ in range(12)))
    assert sorted(tickets) == [f"TR-2026-{n:06d}" for n in range(1, 13)]


async def test_notices_of_one_chat_go_out_one_at_a_time_in_order(sessions: Sessions, citizen: int) -> None:
    case_id = await open_case(sessions, citizen)
    async with sessions.begin() as session:
        repo = CaseRepository(session)
        await repo.reply(case_id, "TRANSPORT", "first", NOW)
        await repo.reply(case_id, "TRANSPORT", "second", NOW)
    async with sessions.begin() as session:
        notices = NoticeRepository(session)
        assert await notices.claim(["telegram"], "n1", NOW, limit=10, lease=LEASE) == []
        [first] = await notices.claim(["test"], "n1", NOW, limit=10, lease=LEASE)
        assert first.data["text"] == "first"
        assert await notices.claim(["test"], "n2", NOW, limit=10, lease=LEASE) == []
        await notices.failed(first.id, "n1", "Telegram is down", retry_at=NOW + timedelta(seconds=5))
    async with sessions.begin() as session:
        notices = NoticeRepository(session)
        assert await notices.claim(["test"], "n1", NOW, limit=10, lease=LEASE) == []
        [retry] = await notices.claim(["test"], "n1", NOW + timedelta(seconds=5), limit=10, lease=LEASE)
        await notices.sent(retry.id, "n1", NOW)
    async with sessions.begin() as session:
        [second] = await NoticeRepository(session).claim(["test"], "n1", NOW, limit=10, lease=LEASE)
    assert (retry.id, retry.attempts, second.data["text"]) == (first.id, 2, "second")
