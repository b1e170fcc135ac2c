"""The department API over HTTP: auth, own cases only, replies, status, transfer, idempotency, bad input."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import pytest
from aiohttp import ClientResponse
from jsonschema import Draft202012Validator
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import create_api
from bot.openapi import CHANGE, EVENT, OPENAPI
from storage import citizen_data
from storage.cases import CaseChangeRecord, CaseRecord
from storage.idempotency import IdempotencyRecord
from storage.notices import CitizenNotice
from storage.outbox import OutboxEvent
from tests.conftest import close_every_connection
from tests.escalation.conftest import NOW, Client, Dept, open_case

PROBLEM = "application/problem+json"
PLAIN_JSON = "application/json"


async def problem(response: ClientResponse, status: int) -> dict[str, Any]:
    """The RFC 9457 body of an error response, after checking its status and media type."""
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body: dict[str, Any] = await response.json(content_type=PROBLEM)
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    """Everything a write could change: cases, their history, events and notices."""
    async with sessions() as session:
        cases = (
            await session.execute(select(CaseRecord.ticket, CaseRecord.status, CaseRecord.department))
        ).all()
        counts = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (CaseChangeRecord, OutboxEvent, CitizenNotice)
        ]
    return tuple(sorted(cases)), tuple(counts)


async def test_a_missing_token_gets_401_with_a_bearer_challenge(
    api: Client, departments: dict[str, Dept]
) -> None:
    response = await api.get("/api/v1/cases")
    body = await problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize("header", ["Bearer gbt_wrong", "Basic dXNlcjpwdw==", "Bearer ", "bearer"])
async def test_a_wrong_token_gets_401(api: Client, departments: dict[str, Dept], header: str) -> None:
    response = await api.get("/api/v1/cases", headers={"Authorization": header})
    await problem(response, 401)


async def test_a_disabled_department_is_refused(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    from storage.departments import DepartmentRepository

    async with sessions.begin() as session:
        await DepartmentRepository(session).update("TAX", enabled=False)
    body = await problem(await api.get("/api/v1/cases", headers=departments["TAX"].auth), 403)
    assert "TAX" in body["detail"]


async def test_a_department_lists_only_its_own_cases(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    mine = await open_case(sessions, "TRANSPORT")
    await open_case(sessions, "TAX", user="43")
    response = await api.get("/api/v1/cases", headers=departments["TRANSPORT"].auth)
    assert response.status == 200
    tickets = [case["ticket"] for case in (await response.json())["cases"]]
    assert tickets == [mine.ticket] == ["TR-2026-000001"]


async def test_cases_can_be_filtered_by_status(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    auth = departments["TRANSPORT"].auth
    await api.post(f"/api/v1/cases/{case.ticket}/status", json={"status": "in_progress"}, headers=auth)
    assert (await (await api.get("/api/v1/cases?status=open", headers=auth)).json())["cases"] == []
    listed = await (await api.get("/api/v1/cases?status=in_progress", headers=auth)).json()
    assert [c["ticket"] for c in listed["cases"]] == [case.ticket]
    body = await problem(await api.get("/api/v1/cases?status=lost", headers=auth), 400)
    assert "status must be one of" in body["detail"]


async def test_another_departments_case_is_404_like_a_missing_one(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    theirs = await open_case(sessions, "TAX")
    auth = departments["TRANSPORT"].auth
    other = await problem(await api.get(f"/api/v1/cases/{theirs.ticket}", headers=auth), 404)
    missing = await problem(await api.get("/api/v1/cases/TR-2026-999999", headers=auth), 404)
    assert other["type"] == missing["type"]
    before = await snapshot(sessions)
    response = await api.post(f"/api/v1/cases/{theirs.ticket}/replies", json={"text": "hello"}, headers=auth)
    await problem(response, 404)
    assert await snapshot(sessions) == before


async def test_a_case_comes_with_excerpt_citizen_fields_and_history(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    response = await api.get(f"/api/v1/cases/{case.ticket.lower()}", headers=departments["TRANSPORT"].auth)
    assert response.status == 200
    body = await response.json()
    assert body["case"]["ticket"] == case.ticket
    assert body["case"]["status"] == "open"
    assert body["excerpt"][0]["text"] == "bus did not stop"
    assert body["citizen"] == {"language": "en", "channel": "test"}
    assert [change["kind"] for change in body["history"]] == ["created"]


async def test_no_cache_keeps_what_a_department_reads_or_is_refused(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Cases carry citizens' words and contact details: a browser-based department tool's own cache must
    # not keep them on the desk's computer either.
    case = await open_case(sessions)
    auth = departments["TRANSPORT"].auth
    answers = [
        await api.get("/api/v1/cases", headers=auth),
        await api.get(f"/api/v1/cases/{case.ticket}", headers=auth),
        await api.post(f"/api/v1/cases/{case.ticket}/replies", json={"text": "on our way"}, headers=auth),
        await api.get("/api/v1/cases/TR-2026-999999", headers=auth),
        await api.get("/api/v1/cases"),
    ]
    assert [answer.headers.get("Cache-Control") for answer in answers] == ["no-store"] * len(answers)
    assert "no-store" not in (await api.get("/api/v1/openapi.json")).headers.get("Cache-Control", "")


async def test_a_reply_is_recorded_and_queued_for_the_citizen(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    response = await api.post(
        f"/api/v1/cases/{case.ticket}/replies",
        json={"text": "We have spoken to the driver."},
        headers=departments["TRANSPORT"].auth,
    )
    assert response.status == 201
    assert (await response.json())["reply"]["text"] == "We have spoken to the driver."
    async with sessions() as session:
        notice = await session.scalar(select(CitizenNotice))
    assert notice is not None
    assert (notice.kind, notice.chat_id, notice.data["text"]) == (
        "reply",
        "42",
        "We have spoken to the driver.",
    )


async def test_resolving_tells_the_citizen_and_closing_ends_the_case(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    auth = departments["TRANSPORT"].auth
    url = f"/api/v1/cases/{case.ticket}/status"
    resolved = await api.post(url, json={"status": "resolved", "note": "Driver retrained."}, headers=auth)
    assert (await resolved.json())["case"]["status"] == "resolved"
    closed = await api.post(url, json={"status": "closed"}, headers=auth)
    assert (await closed.json())["case"]["closed_at"] is not None
    async with sessions() as session:
        kinds = (await session.execute(select(CitizenNotice.kind, CitizenNotice.data))).all()
    assert [(k, d["status"]) for k, d in kinds] == [("status", "resolved"), ("status", "closed")]


async def test_a_transfer_moves_the_case_and_queues_case_transferred_for_the_new_department(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    response = await api.post(
        f"/api/v1/cases/{case.ticket}/transfer",
        json={"department": "TAX", "note": "This is about a parking fine."},
        headers=departments["TRANSPORT"].auth,
    )
    assert response.status == 200
    assert (await response.json())["case"]["department"] == "TAX"
    async with sessions() as session:
        events = (
            await session.execute(select(OutboxEvent.type, OutboxEvent.department, OutboxEvent.payload))
        ).all()
    assert [(t, d) for t, d, _ in events] == [("case.created", "TRANSPORT"), ("case.transferred", "TAX")]
    assert events[1][2]["data"]["transfer"] == {"from": "TRANSPORT", "note": "This is about a parking fine."}
    lost = await api.get(f"/api/v1/cases/{case.ticket}", headers=departments["TRANSPORT"].auth)
    await problem(lost, 404)
    assert (await api.get(f"/api/v1/cases/{case.ticket}", headers=departments["TAX"].auth)).status == 200


async def test_a_repeated_idempotency_key_replays_the_first_response_without_a_second_reply(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    headers = departments["TRANSPORT"].auth | {"Idempotency-Key": "reply-0001"}
    url = f"/api/v1/cases/{case.ticket}/replies"
    first = await api.post(url, json={"text": "On it."}, headers=headers)
    second = await api.post(url, json={"text": "On it."}, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CitizenNotice)) == 1
    reused = await api.post(url, json={"text": "Something else."}, headers=headers)
    assert "different request" in (await problem(reused, 422))["detail"]


async def test_a_retry_serialised_differently_or_with_the_ticket_in_lower_case_replays_the_first_response(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    headers = departments["TRANSPORT"].auth | {"Idempotency-Key": "status-1", "Content-Type": PLAIN_JSON}
    sent = b'{"status": "resolved", "note": "Done."}'
    first = await api.post(f"/api/v1/cases/{case.ticket}/status", data=sent, headers=headers)
    assert first.status == 200
    for ticket, body in (
        (case.ticket, b'{"note":"Done.","status":"resolved"}'),
        (case.ticket.lower(), sent),
        (case.ticket, b'{\n  "status": "resolved",\n  "note": "\\u0044one."\n}'),
    ):
        retry = await api.post(f"/api/v1/cases/{ticket}/status", data=body, headers=headers)
        assert (retry.status, retry.headers.get("Idempotent-Replayed")) == (200, "true"), await retry.text()
        assert await retry.json() == await first.json()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CitizenNotice)) == 1
    for ticket, body in (
        (case.ticket, b'{"status": "resolved", "note": "Done!"}'),
        (case.ticket, b'{"status": "closed", "note": "Done."}'),
        (case.ticket, b'{"status": "resolved"}'),
    ):
        reused = await api.post(f"/api/v1/cases/{ticket}/status", data=body, headers=headers)
        assert "different request" in (await problem(reused, 422))["detail"]
    await problem(await api.post(f"/api/v1/cases/{case.ticket}/transfer", data=sent, headers=headers), 422)


async def test_a_key_stored_with_the_fingerprint_of_the_raw_bytes_still_replays_the_same_bytes(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Keys stored before the fingerprint was taken over the parsed request: the byte-identical retry
    replays, another request is refused."""
    case = await open_case(sessions)
    headers = departments["TRANSPORT"].auth | {"Idempotency-Key": "old-1", "Content-Type": PLAIN_JSON}
    url, body = f"/api/v1/cases/{case.ticket}/replies", b'{"text": "On it."}'
    first = await api.post(url, data=body, headers=headers)
    assert first.status == 201
    legacy = hashlib.sha256(f"POST {url}\n".encode() + body).hexdigest()
    async with sessions.begin() as session:
        await session.execute(update(IdempotencyRecord).values(fingerprint=legacy))
    retry = await api.post(url, data=body, headers=headers)
    assert (retry.status, retry.headers.get("Idempotent-Replayed")) == (201, "true")
    assert await retry.json() == await first.json()
    reused = await api.post(url, data=b'{"text": "Something else."}', headers=headers)
    assert "different request" in (await problem(reused, 422))["detail"]


async def test_a_failed_write_leaves_its_idempotency_key_free(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    headers = departments["TRANSPORT"].auth | {"Idempotency-Key": "k1"}
    url = f"/api/v1/cases/{case.ticket}/status"
    await problem(await api.post(url, json={"status": "open"}, headers=headers), 422)
    assert (await api.post(url, json={"status": "in_progress"}, headers=headers)).status == 200


async def test_a_case_transferred_by_several_requests_at_once_moves_once(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    url, auth = f"/api/v1/cases/{case.ticket}/transfer", departments["TRANSPORT"].auth
    sent = (api.post(url, json={"department": "TAX"}, headers=auth) for _ in range(4))
    responses = await asyncio.gather(*sent)
    assert sorted(response.status for response in responses) == [200, 404, 404, 404]
    async with sessions() as session:
        moved = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "case.transferred")
        )
    assert moved == 1


def documented_parameter(path: str, method: str, name: str) -> dict[str, Any]:
    """The schema the OpenAPI document gives a parameter of an operation."""
    parameters: list[dict[str, Any]] = OPENAPI["paths"][path][method]["parameters"]
    return next(p["schema"] for p in parameters if p["name"] == name)


@pytest.mark.parametrize(
    ("key", "accepted"),
    [("order-7/retry~1!", True), ("k" * 255, True), ("two words", False), ("k" * 256, False)],
)
async def test_the_document_admits_exactly_the_idempotency_keys_the_api_accepts(
    api: Client,
    departments: dict[str, Dept],
    sessions: async_sessionmaker[AsyncSession],
    key: str,
    accepted: bool,
) -> None:
    case = await open_case(sessions)
    headers = departments["TRANSPORT"].auth | {"Idempotency-Key": key}
    url = f"/api/v1/cases/{case.ticket}/replies"
    response = await api.post(url, json={"text": "On it."}, headers=headers)
    if accepted:
        assert response.status == 201
    else:
        assert "visible ASCII" in (await problem(response, 400))["detail"]
    schema = documented_parameter("/cases/{ticket}/replies", "post", "Idempotency-Key")
    assert Draft202012Validator(schema).is_valid(key) == accepted


@pytest.mark.parametrize(("offset", "accepted"), [(10**9, True), (10**9 + 1, False)])
async def test_the_document_admits_exactly_the_offsets_the_api_accepts(
    api: Client, departments: dict[str, Dept], offset: int, accepted: bool
) -> None:
    response = await api.get(f"/api/v1/cases?offset={offset}", headers=departments["TRANSPORT"].auth)
    assert response.status == (200 if accepted else 400)
    schema = documented_parameter("/cases", "get", "offset")
    assert Draft202012Validator(schema).is_valid(offset) == accepted


@pytest.mark.parametrize(
    "query",
    ["limit=%C2%B2", "offset=%C2%B9", "limit=%D9%A1%D9%A0", "limit=%EF%BC%91", "offset=" + "9" * 5000],
)
async def test_numbers_in_other_scripts_or_too_long_are_a_400_not_a_crash(
    api: Client, departments: dict[str, Dept], query: str
) -> None:
    body = await problem(await api.get(f"/api/v1/cases?{query}", headers=departments["TRANSPORT"].auth), 400)
    assert "must be a whole number" in body["detail"]


BAD_INPUT = [
    ("replies", b"{not json", 400, "not valid JSON"),
    ("replies", b'["text"]', 400, "JSON object"),
    ("replies", b"\xff\xfe", 400, "not valid JSON"),
    ("replies", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("replies", b"{}", 422, "missing field(s): text"),
    ("replies", b'{"text": "hi", "urgent": true}', 422, "unknown field(s): 'urgent'"),
    ("replies", b'{"text": "hi", "": true}', 422, "unknown field(s): ''"),
    ("replies", b'{"text": 42}', 422, "text must be a non-empty string"),
    ("replies", b'{"text": "   "}', 422, "text must be a non-empty string"),
    # Nothing the citizen would see: a zero-width space, spaces around a zero-width joiner, direction marks.
    ("replies", b'{"text": "\\u200b"}', 422, "text must be a non-empty string with a visible character"),
    ("replies", b'{"text": "  \\u200d  "}', 422, "text must be a non-empty string with a visible character"),
    ("status", b'{"status": "resolved", "note": "\\u200e\\u2060"}', 422, "note must be a non-empty string"),
    ("replies", ('{"text": "' + "a" * 4097 + '"}').encode(), 422, "4097 characters"),
    ("status", b'{"status": "lost"}', 422, "status must be one of in_progress, resolved, closed"),
    ("status", b'{"status": "open"}', 422, "status must be one of"),
    ("status", b'{"status": ["closed"]}', 422, "status must be one of"),
    ("status", b'{"status": "closed", "note": "' + b"n" * 5000 + b'"}', 422, "at most 4096"),
    ("transfer", b'{"department": "TRANSPORT"}', 422, "already with TRANSPORT"),
    ("transfer", b'{"department": "MOON"}', 422, "no department 'MOON'"),
    ("transfer", b'{"department": ""}', 422, "department code"),
    # What no database stores: PostgreSQL refuses NUL, and half a surrogate pair is not UTF-8 at all.
    ("replies", b'{"text": "call me at Harbour Road \\ud800"}', 422, "text holds a NUL character"),
    ("replies", b'{"text": "a\\u0000b"}', 422, "text holds a NUL character"),
    ("status", b'{"status": "resolved", "note": "done\\u0000"}', 422, "note holds a NUL character"),
    ("transfer", b'{"department": "TAX\\u0000"}', 422, "department code"),
    ("transfer", b'{"department": "TAX\\udc00"}', 422, "department code"),
]


async def test_bad_input_gets_a_clear_problem_and_changes_nothing(
    api: Client,
    departments: dict[str, Dept],
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    case = await open_case(sessions)
    before = await snapshot(sessions)
    for path, body, status, detail in BAD_INPUT:
        response = await api.post(
            f"/api/v1/cases/{case.ticket}/{path}",
            data=body,
            headers=departments["TRANSPORT"].auth | {"Content-Type": "application/json"},
        )
        assert detail in (await problem(response, status))["detail"], (path, body[:40])
        assert await snapshot(sessions) == before, (path, body[:40])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_text_that_fits_once_its_surrounding_spaces_go_is_taken_stripped(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    text = "a" * 4096
    response = await api.post(
        f"/api/v1/cases/{case.ticket}/replies",
        json={"text": f"  \n{text}\n  "},
        headers=departments["TRANSPORT"].auth,
    )
    assert response.status == 201, await response.text()
    assert (await response.json())["reply"]["text"] == text


async def test_an_unknown_or_malformed_ticket_is_404(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    auth = departments["TRANSPORT"].auth
    for ticket in ("TR-2026-000404", "nonsense", "%F0%9F%98%80"):
        body = await problem(
            await api.post(f"/api/v1/cases/{ticket}/replies", json={"text": "x"}, headers=auth), 404
        )
        assert "has no case" in body["detail"]


async def test_a_closed_case_takes_no_reply_status_or_transfer(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    auth = departments["TRANSPORT"].auth
    await api.post(f"/api/v1/cases/{case.ticket}/status", json={"status": "closed"}, headers=auth)
    before = await snapshot(sessions)
    for path, body in (
        ("replies", {"text": "late"}),
        ("status", {"status": "resolved"}),
        ("transfer", {"department": "TAX"}),
    ):
        response = await api.post(f"/api/v1/cases/{case.ticket}/{path}", json=body, headers=auth)
        assert "is closed" in (await problem(response, 409))["detail"]
    assert await snapshot(sessions) == before


async def test_an_unknown_route_and_a_wrong_method_are_problems_too(
    api: Client, departments: dict[str, Dept]
) -> None:
    auth = departments["TRANSPORT"].auth
    await problem(await api.get("/api/v1/tickets", headers=auth), 404)
    wrong_method = await api.delete("/api/v1/cases", headers=auth)
    await problem(wrong_method, 405)
    assert set(wrong_method.headers["Allow"].split(",")) == {"GET", "HEAD"}  # RFC 9110 requires it


async def test_the_public_stats_answer_a_wrong_method_like_the_rest_of_the_api(api: Client) -> None:
    assert (await api.get("/api/v1/stats")).status == 200  # no token needed
    for method in ("TRACE", "POST", "DELETE"):
        wrong_method = await api.request(method, "/api/v1/stats")
        await problem(wrong_method, 405)
        assert set(wrong_method.headers["Allow"].split(",")) == {"GET", "HEAD"}


async def test_a_key_repeated_after_the_citizen_erased_their_data_replays_nothing_of_it(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions, description="I live at Harbour Road 12, call +41 79 123 45 67")
    assert case.citizen_id is not None
    headers = departments["TRANSPORT"].auth | {"Idempotency-Key": "reply-1"}
    url = f"/api/v1/cases/{case.ticket}/replies"
    first = await api.post(url, json={"text": "On it."}, headers=headers)
    assert "Harbour Road 12" in (await first.json())["case"]["description"]
    async with sessions.begin() as session:
        await citizen_data.erase(session, case.citizen_id, NOW)
    again = await api.post(url, json={"text": "On it."}, headers=headers)
    assert "Harbour Road" not in await again.text()
    assert again.headers.get("Idempotent-Replayed") is None
    async with sessions() as session:
        kept = await session.scalars(select(IdempotencyRecord.body))
        assert "Harbour Road" not in str(list(kept))


async def test_an_erased_citizens_case_still_matches_the_document(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = await open_case(sessions)
    assert case.citizen_id is not None
    async with sessions.begin() as session:
        await citizen_data.erase(session, case.citizen_id, NOW)
    body = await (await api.get(f"/api/v1/cases/{case.ticket}", headers=departments["TRANSPORT"].auth)).json()
    assert "erased" in [change["kind"] for change in body["history"]]
    for change in body["history"]:
        assert Draft202012Validator(CHANGE).is_valid(change), change
    async with sessions() as session:
        closed = (await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "case.closed"))).one()
    reason = EVENT["properties"]["data"]["properties"]["reason"]  # type: ignore[index]
    assert Draft202012Validator(reason).is_valid(closed.payload["data"]["reason"])


async def test_the_openapi_document_describes_every_route_without_a_token(api: Client) -> None:
    response = await api.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/cases",
        "/cases/{ticket}",
        "/cases/{ticket}/replies",
        "/cases/{ticket}/status",
        "/cases/{ticket}/transfer",
        "/stats",
        "/openapi.json",
    }
    routes = {
        (r.method, r.resource.canonical)
        for r in create_api().router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    assert len(routes) == 7
    for method, path in routes:
        assert method.lower() in document["paths"][path]
    assert set(document["webhooks"]) == {"case.created", "case.updated", "case.closed", "case.transferred"}


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_reply_is_taken_once_when_the_database_restarted_under_the_pool(
    api: Client, departments: dict[str, Dept], sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    await close_every_connection(database_url)  # what a server restart does to the pool's connections
    response = await api.post(
        f"/api/v1/cases/{case.ticket}/replies", json={"text": "We are on it."},
        headers=departments["TRANSPORT"].auth,
    )
    assert response.status == 201, await response.text()
    async with sessions() as session:
        notices = await session.scalar(select(func.count()).select_from(CitizenNotice))
    assert notices == 1
