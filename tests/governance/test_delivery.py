"""What a department receives follows its clearance, the citizen's consent and erasure at delivery time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.webhooks import RETRY_DELAYS
from storage import citizen_data
from storage.audit import AuditEntry, AuditKind, AuditLog
from storage.cases import Case, CaseRepository, NewCase
from storage.citizens import CitizenRepository
from storage.consent import ConsentRepository
from storage.departments import DepartmentRepository
from storage.governance import set_clearance, share_after_consent
from storage.models import User
from storage.notices import CitizenNotice
from storage.outbox import OutboxEvent, OutboxRepository
from tests.escalation.conftest import Dept
from tests.escalation.dispatching import Clock, dispatcher
from tests.escalation.receiver import Receiver, receiving

Sessions = async_sessionmaker[AsyncSession]
DESCRIPTION = "The 7 bus did not stop at Harbour Road; I waited with my son for an hour."
CONTACT = "Li Wei 13800138000"


@pytest.fixture
async def transport(departments: dict[str, Dept], sessions: Sessions) -> AsyncIterator[Receiver]:
    async with receiving(departments["TRANSPORT"].secret) as endpoint:
        await _set_url(sessions, "TRANSPORT", endpoint.url)
        yield endpoint
    assert endpoint.rejected == []


@pytest.fixture
async def tax(departments: dict[str, Dept], sessions: Sessions) -> AsyncIterator[Receiver]:
    async with receiving(departments["TAX"].secret) as endpoint:
        await _set_url(sessions, "TAX", endpoint.url)
        yield endpoint


async def _set_url(sessions: Sessions, code: str, url: str) -> None:
    async with sessions.begin() as session:
        await DepartmentRepository(session).update(code, webhook_url=url)


async def open_case(sessions: Sessions, now: datetime, *, contact: str | None = None) -> Case:
    async with sessions.begin() as session:
        citizen = await CitizenRepository(session).get_or_create("test", "42", now=now)
        await CitizenRepository(session).record_message(citizen.id, "in", DESCRIPTION, now=now)
        new = NewCase(
            citizen.id, "test", "42", "en", "TRANSPORT", DESCRIPTION, contact=contact,
            contact_consent_at=now if contact else None,
        )  # fmt: skip
        return await CaseRepository(session).open_case(new, now)


async def clearance(sessions: Sessions, code: str, value: str, now: datetime) -> None:
    async with sessions.begin() as session:
        await set_clearance(session, code, value, now=now)


async def audit(sessions: Sessions, kind: AuditKind) -> list[AuditEntry]:
    async with sessions() as session:
        return list(await AuditLog(session).search(kind=kind))


async def test_a_cleared_department_gets_the_case_and_the_disclosure_is_audited(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, clock(), contact=CONTACT)
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 1
    data = transport.received[0].payload["data"]
    assert data["case"]["description"] == DESCRIPTION
    assert data["excerpt"][0]["text"] == DESCRIPTION
    assert data["citizen"]["contact"] == CONTACT
    assert data["privacy"] == {"clearance": "personal", "withheld": []}
    async with sessions() as session:
        [record] = await AuditLog(session).search(kind=AuditKind.DISCLOSURE)
        assert (await AuditLog(session).verify()).ok
    assert (record.department, record.ticket, record.citizen_ref) == ("TRANSPORT", case.ticket, "C1")
    assert {"free_text", "contact"} <= set(record.fields)
    assert record.basis == {
        "clearance": "personal",
        "consent": {"contact": "escalation", "free_text": "escalation"},
    }
    assert record.details["webhook_id"] == transport.received[0].headers["webhook-id"]
    assert CONTACT not in json.dumps(record.to_json())


async def test_a_clearance_lowered_while_the_delivery_waits_is_the_one_applied(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    await open_case(sessions, clock(), contact=CONTACT)
    await clearance(sessions, "TRANSPORT", "internal", clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
    data = transport.received[0].payload["data"]
    text = json.dumps(data, ensure_ascii=False)
    assert DESCRIPTION not in text
    assert CONTACT not in text
    assert data["case"]["description"] == ""
    assert data["excerpt"] == []
    assert data["privacy"]["withheld"] == [
        {"field": "contact", "reason": "clearance"},
        {"field": "free_text", "reason": "clearance"},
    ]
    assert await audit(sessions, AuditKind.DISCLOSURE) == []
    assert len(await audit(sessions, AuditKind.CLEARANCE)) == 1


async def test_a_retry_after_the_clearance_was_raised_carries_what_it_now_allows(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    transport.answers = [500]
    await clearance(sessions, "TRANSPORT", "internal", clock())
    await open_case(sessions, clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
        await clearance(sessions, "TRANSPORT", "personal", clock())
        clock.advance(RETRY_DELAYS[0] * 2)
        assert await d.run_once() == 1
    first, second = transport.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.payload["data"]["case"]["description"] == ""
    assert second.payload["data"]["case"]["description"] == DESCRIPTION


async def test_withdrawn_consent_holds_back_pending_deliveries(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, clock(), contact=CONTACT)
    clock.advance(timedelta(seconds=1))
    async with sessions.begin() as session:
        await ConsentRepository(session).withdraw(case.citizen_id or 0, "TRANSPORT", clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
    data = transport.received[0].payload["data"]
    assert "contact" not in data["citizen"]
    assert DESCRIPTION not in json.dumps(data, ensure_ascii=False)
    assert {w["reason"] for w in data["privacy"]["withheld"]} == {"refused"}


async def test_a_transferred_case_asks_the_citizen_and_shares_after_yes(
    sessions: Sessions, transport: Receiver, tax: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, clock(), contact=CONTACT)
    async with sessions.begin() as session:
        await CaseRepository(session).transfer(case.id, "TRANSPORT", "TAX", "theirs", clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
        moved = tax.received[0].payload
        assert moved["type"] == "case.transferred"
        assert DESCRIPTION not in json.dumps(moved, ensure_ascii=False)
        assert CONTACT not in json.dumps(moved, ensure_ascii=False)
        assert moved["data"]["privacy"]["withheld"] == [
            {"field": "contact", "reason": "consent"},
            {"field": "free_text", "reason": "consent"},
        ]
        async with sessions() as session:
            [notice] = list(
                await session.scalars(select(CitizenNotice).where(CitizenNotice.kind == "consent"))
            )
        assert notice.data["fields"] == ["contact", "free_text"]
        clock.advance(timedelta(minutes=1))
        async with sessions.begin() as session:
            answer = await ConsentRepository(session).answer(
                notice.data["prompt"], case.citizen_id or 0, granted=True, now=clock()
            )
            await share_after_consent(session, case.citizen_id or 0, "TAX", answer.applied, clock())
        await d.run_once()
    update = tax.received[1].payload
    assert update["type"] == "case.updated"
    assert update["data"]["consent"]["granted"] == ["contact", "free_text"]
    assert update["data"]["case"]["description"] == DESCRIPTION
    assert update["data"]["citizen"]["contact"] == CONTACT


async def test_what_a_department_wrote_reaches_another_masked_until_it_may_see_personal_data(
    sessions: Sessions, transport: Receiver, tax: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, clock(), contact=CONTACT)
    note = "Citizen asks to be called on +41 79 123 45 67 or written to anna.meier@example.org"
    async with sessions.begin() as session:
        await CaseRepository(session).transfer(case.id, "TRANSPORT", "TAX", note, clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
    shown = tax.received[0].payload["data"]["transfer"]["note"]
    assert shown.startswith("Citizen asks to be called on ")
    assert "123 45 67" not in shown
    assert "anna.meier@" not in shown


async def test_an_erasure_while_a_delivery_is_pending_leaves_nothing_erased_in_it(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    transport.answers = [500]
    case = await open_case(sessions, clock(), contact=CONTACT)
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
        assert transport.received[0].payload["data"]["case"]["description"] == DESCRIPTION
        async with sessions.begin() as session:
            await citizen_data.erase(session, case.citizen_id or 0, clock())
        clock.advance(RETRY_DELAYS[0] * 2)
        await d.run_once()
        await d.run_once()
    retried, closed = transport.received[1:]
    for delivery in (retried, closed):
        text = json.dumps(delivery.payload, ensure_ascii=False)
        assert DESCRIPTION not in text
        assert CONTACT not in text
        assert "13800138000" not in text
    assert retried.payload["data"]["privacy"]["withheld"] == [
        {"field": "contact", "reason": "erased"},
        {"field": "free_text", "reason": "erased"},
    ]
    assert (closed.payload["type"], closed.payload["data"]["reason"]) == ("case.closed", "erased")
    async with sessions() as session:
        stored = [e.payload for e in await session.scalars(select(OutboxEvent))]
    assert DESCRIPTION not in json.dumps(stored, ensure_ascii=False)


async def test_an_erasure_after_a_dispatcher_claimed_and_died_sends_nothing_erased(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, clock())
    async with sessions.begin() as session:  # a dispatcher claims the event, then dies before posting
        await OutboxRepository(session).claim("dead", clock(), limit=10, lease=timedelta(seconds=60))
    async with sessions.begin() as session:
        await citizen_data.erase(session, case.citizen_id or 0, clock())
    clock.advance(timedelta(minutes=2))
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
        await d.run_once()
    assert [r.payload["type"] for r in transport.received] == ["case.created", "case.closed"]
    assert DESCRIPTION not in json.dumps([r.payload for r in transport.received], ensure_ascii=False)


async def test_an_erasure_leaves_no_department_note_in_the_stored_events(
    sessions: Sessions, transport: Receiver, tax: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, clock())
    note = "Li Lei says the driver shouted"
    async with sessions.begin() as session:
        await CaseRepository(session).transfer(case.id, "TRANSPORT", "TAX", note, clock())
        await CaseRepository(session).reply(case.id, "TAX", "Dear Li Lei, we are looking into it", clock())
    async with sessions.begin() as session:
        await citizen_data.erase(session, case.citizen_id or 0, clock())
    async with sessions() as session:
        stored = [e.payload for e in await session.scalars(select(OutboxEvent))]
    assert "case.transferred" in [payload["type"] for payload in stored]
    assert "Li Lei" not in json.dumps(stored, ensure_ascii=False)


async def test_a_batch_of_deliveries_is_governed_case_by_case(
    sessions: Sessions, transport: Receiver, clock: Clock
) -> None:
    async with sessions.begin() as session:
        cases = []
        for user in ("41", "42", "43"):
            citizen = await CitizenRepository(session).get_or_create("test", user, now=clock())
            new = NewCase(citizen.id, "test", user, "en", "TRANSPORT", f"{DESCRIPTION} ({user})")
            cases.append(await CaseRepository(session).open_case(new, clock()))
    clock.advance(timedelta(seconds=1))
    async with sessions.begin() as session:
        await ConsentRepository(session).withdraw(cases[1].citizen_id or 0, "TRANSPORT", clock())
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 3
    shown = {
        r.payload["data"]["case"]["ticket"]: r.payload["data"]["case"]["description"]
        for r in transport.received
    }
    assert shown == {
        cases[0].ticket: f"{DESCRIPTION} (41)",
        cases[1].ticket: "",
        cases[2].ticket: f"{DESCRIPTION} (43)",
    }
    records = await audit(sessions, AuditKind.DISCLOSURE)
    assert sorted(r.ticket or "" for r in records) == [cases[0].ticket, cases[2].ticket]
    async with sessions() as session:
        assert (await AuditLog(session).verify()).ok


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_delivery_asking_consent_waits_for_the_citizens_turn_instead_of_deadlocking_with_it(
    sessions: Sessions, transport: Receiver, tax: Receiver, clock: Clock
) -> None:
    """The citizen's turn holds their row and then appends to the audit log (a consent decision, an
    erasure); the delivery's consent prompt needs that row. Taking the log's head before the prompt, a
    delivery held the head while waiting for the row: PostgreSQL broke the deadlock by failing one side."""
    case = await open_case(sessions, clock(), contact=CONTACT)
    async with sessions.begin() as session:
        await CaseRepository(session).transfer(case.id, "TRANSPORT", "TAX", "theirs", clock())
    async with dispatcher(sessions, clock) as d:
        async with sessions.begin() as turn:
            await turn.get(User, case.citizen_id, with_for_update=True)
            delivering = asyncio.create_task(d.run_once())
            await _until_a_statement_waits_for_a_lock(sessions)
            await AuditLog(turn).append(AuditKind.CONSENT, now=clock(), citizen=f"C{case.citizen_id}")
        assert await delivering == 2
    assert [r.payload["type"] for r in tax.received] == ["case.transferred"]


async def _until_a_statement_waits_for_a_lock(sessions: Sessions) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(10):
        while True:
            async with sessions() as session:
                if await session.scalar(waiting):
                    return
            await asyncio.sleep(0.02)
