"""The department API answers with what the department may see now, and its reads are audited."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import AuditEntry, AuditKind, AuditLog
from storage.cases import CaseRepository
from storage.consent import ConsentRepository
from storage.governance import set_clearance
from tests.escalation.conftest import NOW, Client, Dept, open_case

Sessions = async_sessionmaker[AsyncSession]
DESCRIPTION = "The 7 bus did not stop at Harbour Road this morning."


async def disclosures(sessions: Sessions) -> list[AuditEntry]:
    async with sessions() as session:
        return list(await AuditLog(session).search(kind=AuditKind.DISCLOSURE))


async def test_reading_a_case_is_a_disclosure_and_is_audited(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    body = await (await api.get(f"/api/v1/cases/{case.ticket}", headers=departments["TRANSPORT"].auth)).json()
    assert body["case"]["description"] == DESCRIPTION
    assert body["privacy"] == {"clearance": "personal", "withheld": []}
    [record] = await disclosures(sessions)
    assert (record.department, record.ticket, record.details["channel"]) == ("TRANSPORT", case.ticket, "api")


async def test_a_head_request_discloses_nothing_and_records_no_disclosure(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    # aiohttp answers HEAD with the GET handler, body dropped: the audit log recorded a disclosure of a case
    # whose contents were never sent.
    case = await open_case(sessions, "TRANSPORT")
    auth = departments["TRANSPORT"].auth
    assert (await api.head(f"/api/v1/cases/{case.ticket}", headers=auth)).status == 200
    assert (await api.head("/api/v1/cases", headers=auth)).status == 200
    assert (await api.head("/api/v1/cases/TR-2026-999999", headers=auth)).status == 404
    assert (await api.head(f"/api/v1/cases/{case.ticket}", headers=departments["TAX"].auth)).status == 404
    assert await disclosures(sessions) == []


async def test_after_the_clearance_is_lowered_the_api_holds_the_text_back(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    async with sessions.begin() as session:
        await set_clearance(session, "TRANSPORT", "internal", now=NOW)
    auth = departments["TRANSPORT"].auth
    one = await (await api.get(f"/api/v1/cases/{case.ticket}", headers=auth)).json()
    listed = await (await api.get("/api/v1/cases", headers=auth)).json()
    status = await api.post(
        f"/api/v1/cases/{case.ticket}/status", json={"status": "in_progress"}, headers=auth
    )
    changed = await status.json()
    for body in (one, listed, changed):
        assert DESCRIPTION not in json.dumps(body)
    assert one["privacy"]["withheld"] == [{"field": "free_text", "reason": "clearance"}]
    assert listed["cases"][0]["privacy"]["withheld"] == [{"field": "free_text", "reason": "clearance"}]
    assert changed["case"]["status"] == "in_progress"
    assert await disclosures(sessions) == []


async def test_a_department_without_clearance_reads_other_departments_replies_masked(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    reply = "We will call you on +41 79 123 45 67 or write to anna.meier@example.org."
    url = f"/api/v1/cases/{case.ticket}"
    await api.post(f"{url}/replies", json={"text": reply}, headers=departments["TRANSPORT"].auth)
    async with sessions.begin() as session:
        await set_clearance(session, "TAX", "internal", now=NOW)
    transport = departments["TRANSPORT"].auth
    assert (await api.post(f"{url}/transfer", json={"department": "TAX"}, headers=transport)).status == 200
    body = await (await api.get(url, headers=departments["TAX"].auth)).json()
    texts = [change["text"] or "" for change in body["history"] if change["actor"] == "TRANSPORT"]
    assert any(text.startswith("We will call you on ") for text in texts)
    assert "123 45 67" not in json.dumps(body)
    assert "anna.meier@" not in json.dumps(body)


async def test_a_department_a_case_was_transferred_to_sees_the_text_only_with_consent(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    async with sessions.begin() as session:
        await CaseRepository(session).transfer(case.id, "TRANSPORT", "TAX", None, NOW + timedelta(minutes=1))
    body = await (await api.get(f"/api/v1/cases/{case.ticket}", headers=departments["TAX"].auth)).json()
    assert body["case"]["description"] == ""
    assert body["privacy"]["withheld"] == [{"field": "free_text", "reason": "consent"}]


async def test_a_replayed_write_after_consent_is_withdrawn_holds_the_text_back_and_is_audited(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    auth = departments["TRANSPORT"].auth | {"Idempotency-Key": "reply-1"}
    url = f"/api/v1/cases/{case.ticket}/replies"
    first = await (await api.post(url, json={"text": "We are on it."}, headers=auth)).json()
    assert first["case"]["description"] == DESCRIPTION
    assert case.citizen_id is not None
    async with sessions.begin() as session:
        await ConsentRepository(session).withdraw(case.citizen_id, "TRANSPORT", NOW + timedelta(minutes=1))
    replayed = await api.post(url, json={"text": "We are on it."}, headers=auth)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    body = await replayed.json()
    assert DESCRIPTION not in json.dumps(body)
    assert body["privacy"]["withheld"] == [{"field": "free_text", "reason": "refused"}]
    assert body["reply"] == first["reply"]
    assert len(await disclosures(sessions)) == 1  # the first answer's; the replay disclosed nothing personal


async def test_a_replayed_transfer_answers_as_before_once_the_case_has_moved_on(
    api: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    auth = departments["TRANSPORT"].auth | {"Idempotency-Key": "transfer-1"}
    url = f"/api/v1/cases/{case.ticket}/transfer"
    first = await api.post(url, json={"department": "TAX"}, headers=auth)
    again = await api.post(url, json={"department": "TAX"}, headers=auth)
    assert (first.status, again.status, again.headers["Idempotent-Replayed"]) == (200, 200, "true")
    assert await again.json() == await first.json()
    assert [record.details.get("request") for record in await disclosures(sessions)] == ["replay", None]
