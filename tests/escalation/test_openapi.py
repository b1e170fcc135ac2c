"""The OpenAPI document matches what govbot serves: its routes, real responses and webhook payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import PREFIX, create_api
from bot.app import create_app
from bot.config import load_settings
from bot.keys import SESSIONS, WAKE
from bot.openapi import OPENAPI
from storage.cases import CaseRepository, CaseStatus, NewCase
from storage.citizens import CitizenRepository
from storage.db import create_engine
from storage.departments import DepartmentRepository
from storage.governance import govern_for_department, set_clearance
from storage.models import utcnow
from storage.outbox import OutboxEvent
from storage.questions import NewQuestion, QuestionRepository
from tests.escalation.conftest import NOW, Client, Dept, open_case

Sessions = async_sessionmaker[AsyncSession]
JSON = dict[str, Any]


def _strict(schema: Any, *, closed: bool = True) -> Any:
    """A copy in which every object without ``additionalProperties`` admits no undeclared key.

    The parts of an ``allOf`` stay open (each sees only its own keys); the ``allOf`` closes them together.
    """
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items() if key != "allOf"}
    if "allOf" in schema:
        strict["allOf"] = [_strict(_inlined(part), closed=False) for part in schema["allOf"]]
    if closed and ("properties" in strict or "allOf" in strict) and "additionalProperties" not in strict:
        strict["unevaluatedProperties"] = False
    return strict


def _inlined(schema: JSON) -> JSON:
    if "$ref" not in schema:
        return schema
    inlined: JSON = OPENAPI["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return inlined


# Strict only in the tests: the published document stays open to fields added later.
DOCUMENT = _strict({"components": OPENAPI["components"]})


def problems(value: Any, schema: JSON) -> list[str]:
    """Where ``value`` departs from ``schema`` (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""
    validator = Draft202012Validator({**_strict(schema), "components": DOCUMENT["components"]})
    return sorted(f"{error.json_path}: {error.message}" for error in validator.iter_errors(value))


def response_schema(path: str, method: str, status: int) -> JSON:
    operation = OPENAPI["paths"][path][method]
    schema: JSON = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return schema


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of the app and its mounted (so prefixed) sub-apps, HEAD aside."""
    routes = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:
            routes |= served_routes(info["app"])
            continue
        routes |= {(route.method, resource.canonical) for route in resource if route.method != "HEAD"}
    return routes


@pytest.fixture
async def client(sessions: Sessions) -> AsyncIterator[Client]:
    """The department API with the public stats route, mounted as govbot's app mounts it."""
    app = web.Application()
    app[SESSIONS] = sessions
    app[WAKE] = []
    app.add_subapp(PREFIX, create_api(clock=lambda: NOW))
    async with TestClient(TestServer(app)) as client:
        yield client


def test_every_route_under_api_v1_is_documented_and_nothing_else() -> None:
    app = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:"))
    served = {
        (method.lower(), path.removeprefix(PREFIX))
        for method, path in served_routes(app)
        if path.startswith(f"{PREFIX}/")
    }
    documented = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert served == documented
    assert ("get", "/stats") in documented


def test_only_stats_and_the_document_itself_need_no_token() -> None:
    public = {
        path
        for path, item in OPENAPI["paths"].items()
        for operation in item.values()
        if operation.get("security") == []
    }
    assert public == {"/stats", "/openapi.json"}


async def test_while_the_database_is_out_of_reach_every_answer_is_documented_with_its_retry_after() -> None:
    engine = create_engine("postgresql+asyncpg://govbot@127.0.0.1:1/govbot")  # nothing listens on port 1
    app = web.Application()
    app[SESSIONS], app[WAKE] = async_sessionmaker(engine), []
    app.add_subapp(PREFIX, create_api(clock=lambda: NOW))
    bodies = {
        "replies": {"text": "On it."},
        "status": {"status": "resolved"},
        "transfer": {"department": "TAX"},
    }
    try:
        async with TestClient(TestServer(app)) as client:
            for path, item in OPENAPI["paths"].items():
                for method, operation in item.items():
                    if path == "/openapi.json":
                        continue
                    response = await client.request(
                        method,
                        PREFIX + path.replace("{ticket}", "TR-2026-000001"),
                        json=bodies.get(path.rsplit("/", 1)[1]),
                        headers={"Authorization": "Bearer gbt_any"},
                    )
                    assert response.status == 503, (method, path)
                    assert int(response.headers["Retry-After"]) > 0
                    documented = operation["responses"].get("503", {})
                    assert "Retry-After" in documented.get("headers", {}), (method, path)
    finally:
        await engine.dispose()


def test_the_document_refers_only_to_schemas_it_defines() -> None:
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(OPENAPI)
    assert refs <= set(OPENAPI["components"]["schemas"])


async def test_case_responses_with_withheld_text_match_the_document(
    client: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    async with sessions.begin() as session:
        await set_clearance(session, "TRANSPORT", "internal", now=NOW)
    auth = departments["TRANSPORT"].auth
    one = await (await client.get(f"{PREFIX}/cases/{case.ticket}", headers=auth)).json()
    listed = await (await client.get(f"{PREFIX}/cases", headers=auth)).json()
    assert one["privacy"]["withheld"] == [{"field": "free_text", "reason": "clearance"}]
    assert problems(one, response_schema("/cases/{ticket}", "get", 200)) == []
    assert problems(listed, response_schema("/cases", "get", 200)) == []
    assert listed["cases"][0]["privacy"] == one["privacy"]


async def test_write_responses_match_the_document(
    client: Client, departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    auth = departments["TRANSPORT"].auth
    for path, body, status in (
        ("replies", {"text": "We are on it."}, 201),
        ("status", {"status": "in_progress", "note": "Looking"}, 200),
        ("transfer", {"department": "TAX"}, 200),
    ):
        response = await client.post(f"{PREFIX}/cases/{case.ticket}/{path}", json=body, headers=auth)
        assert response.status == status
        answer = await response.json()
        assert set(answer["privacy"]) == {"clearance", "withheld"}
        assert problems(answer, response_schema(f"/cases/{{ticket}}/{path}", "post", status)) == []


async def test_governed_webhook_payloads_match_the_event_schema(
    departments: dict[str, Dept], sessions: Sessions
) -> None:
    case = await open_case(sessions, "TRANSPORT")
    async with sessions.begin() as session:
        await CaseRepository(session).transfer(
            case.id, "TRANSPORT", "TAX", "yours", NOW + timedelta(minutes=1)
        )
    async with sessions.begin() as session:
        events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
        payloads = [
            await govern_for_department(
                session, e.case_id, e.department, e.payload, now=NOW, channel="webhook"
            )
            for e in events
        ]
    assert [p["type"] for p in payloads] == ["case.created", "case.transferred"]
    # TAX got the case by transfer and has no consent yet, so the text is held back from it.
    assert payloads[1]["data"]["privacy"]["withheld"] == [{"field": "free_text", "reason": "consent"}]
    for payload in payloads:
        assert problems(payload, OPENAPI["components"]["schemas"]["Event"]) == []


async def test_the_stats_response_matches_the_document(client: Client, sessions: Sessions) -> None:
    # In last month: only closed months are published.
    now = utcnow().replace(day=1, hour=12, minute=0, second=0, microsecond=0) - timedelta(days=14)
    async with sessions.begin() as session:
        for n in range(6):
            me = await CitizenRepository(session).get_or_create("test", str(n), now=now)
            await QuestionRepository(session).record_question(
                me.id, NewQuestion(
                    "q", normalised="q", language="en", decision="answer", reason="r", candidates=[],
                    signals={}
                ), now=now,
            )
    async with sessions.begin() as session:
        await DepartmentRepository(session).add("TAX", {"en": "Tax"}, ticket_prefix="TX", now=now)
        cases = CaseRepository(session)
        for n in range(6):
            me = await CitizenRepository(session).get_or_create("test", str(n), now=now)
            case = await cases.open_case(NewCase(me.id, "test", str(n), "en", "TAX", "help"), now)
            await cases.reply(case.id, "TAX", "ok", now + timedelta(minutes=n + 1))
            await cases.set_status(case.id, "TAX", CaseStatus.RESOLVED, None, now)
            await cases.rate(case.id, me.id, 4, now)
    response = await client.get(f"{PREFIX}/stats")
    assert response.status == 200
    body = await response.json()
    assert body["questions_asked"] == {"value": 6, "suppressed": False}
    assert body["cases_per_department"][0]["cases"] == {"value": 6, "suppressed": False}
    assert problems(body, response_schema("/stats", "get", 200)) == []


def test_the_checker_reports_an_undocumented_key_and_a_wrong_value() -> None:
    privacy = OPENAPI["components"]["schemas"]["Privacy"]
    assert problems({"clearance": "personal", "withheld": []}, privacy) == []
    assert len(problems({"clearance": "personal", "withheld": [], "extra": 1}, privacy)) == 1
    found = problems({"clearance": "secret", "withheld": [{"field": "free_text"}]}, privacy)
    assert [where for where, _ in (p.split(": ", 1) for p in found)] == ["$.clearance", "$.withheld[0]"]
