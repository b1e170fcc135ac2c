"""The department API under ``/api/v1``: a department reads its cases, replies, changes status, transfers.

Bearer token per department; JSON in and out; every error is ``application/problem+json`` (RFC 9457).
Writes accept an ``Idempotency-Key`` header: the same key with the same request returns the first response
without doing the work again. A change, its outbox event and its notice to the citizen are one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.keys import SESSIONS, wake_workers
from bot.openapi import KEY_PATTERN, MAX_LIMIT, MAX_OFFSET, OPENAPI
from bot.web.guard import RETRY_AFTER_SECONDS
from bot.web.transparency import stats
from knowledge.normalise import visible
from storage.case_events import citizen_fields
from storage.cases import Case, CaseError, CaseNotFound, CaseRepository, CaseStatus, normalise_ticket
from storage.db import UNSTORABLE, error_reason, out_of_reach, reconnecting
from storage.departments import CODE, DepartmentProfile, DepartmentRepository
from storage.governance import govern_for_department, governed_case_list
from storage.idempotency import MAX_KEY_LENGTH, PENDING, IdempotencyRepository
from storage.models import utcnow
from storage.numbers import whole_number

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
PUBLIC_PATHS = frozenset({f"{PREFIX}/openapi.json", f"{PREFIX}/stats"})
"""Paths anyone may read without a token: the API's description and the public transparency figures."""
MAX_TEXT = 4096
"""A reply or note longer than one Telegram message is refused rather than cut."""
_NOT_VISIBLE = "must be a non-empty string with a visible character"
PROBLEM = "application/problem+json"
DEPARTMENT = web.RequestKey("department", DepartmentProfile)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("api_clock")
_KEY_CHARS = re.compile(KEY_PATTERN)
_STATUS_CODES = {
    "unknown-case": 404,
    "case-closed": 409,
    "invalid-status": 409,
    "invalid-transfer": 422,
}

Operation = Callable[[CaseRepository, Case, datetime], Awaitable[tuple[int, dict[str, Any]]]]


class Problem(Exception):
    """An error answer: status, a stable type slug, a title and a detail for the caller."""

    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        body = {
            "type": f"urn:govbot:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        return web.json_response(body, status=self.status, content_type=PROBLEM, headers=headers)


def create_api(
    sessions: async_sessionmaker[AsyncSession] | None = None, *, clock: Callable[[], datetime] = utcnow
) -> web.Application:
    """The API as a sub-application, mounted with ``app.add_subapp(PREFIX, create_api())``.

    Without ``sessions`` it uses the parent application's (``SESSIONS``, set once the database is up).
    After every committed write it calls the parent's ``WAKE`` callbacks (the dispatcher, the notifier).
    """
    api = web.Application(middlewares=[_not_stored, _problems, _authenticate])
    if sessions is not None:
        api[SESSIONS] = sessions
    api[CLOCK] = clock
    api.router.add_get("/openapi.json", openapi)
    api.router.add_get("/stats", stats, name="web.stats")  # web.…: the chat's guard limits it per address
    api.router.add_get("/cases", list_cases)
    api.router.add_get("/cases/{ticket}", get_case)
    api.router.add_post("/cases/{ticket}/replies", post_reply)
    api.router.add_post("/cases/{ticket}/status", post_status)
    api.router.add_post("/cases/{ticket}/transfer", post_transfer)
    return api


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return web.json_response(OPENAPI)


async def list_cases(request: web.Request) -> web.Response:
    """The department's cases, newest first, optionally of one status."""
    department = request[DEPARTMENT]
    status = _status_filter(request.query.get("status"))
    limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    if request.method == "HEAD":
        return _headers_only()
    async with request.config_dict[SESSIONS].begin() as session:
        cases = await CaseRepository(session).of_department(
            department.code, status=status, limit=limit, offset=offset
        )
        shown = await governed_case_list(session, cases, department.code, now=request.config_dict[CLOCK]())
    return web.json_response({"cases": shown, "limit": limit, "offset": offset})


async def get_case(request: web.Request) -> web.Response:
    """One of the department's cases with its excerpt, citizen fields and history."""
    department = request[DEPARTMENT]
    async with request.config_dict[SESSIONS].begin() as session:
        repo = CaseRepository(session)
        case = await _own_case(repo, request, department)
        if request.method == "HEAD":
            return _headers_only()
        history = await repo.history(case.id)
        body = _case_body(case) | {"history": [change.to_json() for change in history]}
        # Only what the department may see now (clearance, consent, erasure); the disclosure is audited.
        body = await govern_for_department(
            session, case.id, department.code, body, now=request.config_dict[CLOCK](), channel="api"
        )
    return web.json_response(body)


def _headers_only() -> web.Response:
    """The answer to HEAD (which aiohttp routes to the GET handler): the status and the type, no contents,
    and so no disclosure to audit."""
    return web.Response(content_type="application/json")


async def post_reply(request: web.Request) -> web.Response:
    """Relay a reply to the citizen's chat."""
    body = await _json_object(request, required={"text"}, optional=set())
    text = _text(body, "text", required=True)
    assert text is not None

    async def reply(repo: CaseRepository, case: Case, now: datetime) -> tuple[int, dict[str, Any]]:
        change = await repo.reply(case.id, case.department, text, now)
        fresh = await repo.get(case.id)
        assert fresh is not None
        return 201, {"case": fresh.for_department(), "reply": change.to_json()}

    return await _write(request, body, reply)


async def post_status(request: web.Request) -> web.Response:
    """Move the case to in_progress, resolved or closed; the citizen is told."""
    body = await _json_object(request, required={"status"}, optional={"note"})
    raw = body["status"]
    allowed = [s.value for s in CaseStatus if s is not CaseStatus.OPEN]
    if not isinstance(raw, str) or raw not in allowed:
        raise Problem(
            422,
            "invalid-status",
            "Unknown status",
            f"status must be one of {', '.join(allowed)}; got {_shown(raw)}",
        )
    status, note = CaseStatus(raw), _text(body, "note", required=False)

    async def change(repo: CaseRepository, case: Case, now: datetime) -> tuple[int, dict[str, Any]]:
        updated = await repo.set_status(case.id, case.department, status, note, now)
        return 200, {"case": updated.for_department()}

    return await _write(request, body, change)


async def post_transfer(request: web.Request) -> web.Response:
    """Hand the case to another department, which gets ``case.transferred``."""
    body = await _json_object(request, required={"department"}, optional={"note"})
    target = body["department"]
    if not isinstance(target, str) or not CODE.match(target.strip()):
        raise Problem(422, "invalid-transfer", "Invalid department", "department must be a department code")
    note = _text(body, "note", required=False)

    async def transfer(repo: CaseRepository, case: Case, now: datetime) -> tuple[int, dict[str, Any]]:
        moved = await repo.transfer(case.id, case.department, target.strip(), note, now)
        return 200, {"case": moved.for_department()}

    return await _write(request, body, transfer)


async def _write(request: web.Request, asked: dict[str, Any], operation: Operation) -> web.Response:
    """Run a change in one transaction, honouring ``Idempotency-Key``; nothing is written if it fails.

    ``asked``: the request's parsed body, which the key's fingerprint covers."""
    department = request[DEPARTMENT]
    key = _idempotency_key(request)
    fingerprint = _fingerprint(request, asked)
    now = request.config_dict[CLOCK]()
    async with request.config_dict[SESSIONS].begin() as session:
        if key is not None:
            stored = await IdempotencyRepository(session).reserve(department.code, key, fingerprint, now)
            if stored is not None:
                same = stored.fingerprint in (fingerprint, await _raw_fingerprint(request))
                _check_replay(same, stored.status)
                body = await _governed_replay(session, request, department, stored.body, now)
                return web.json_response(body, status=stored.status, headers={"Idempotent-Replayed": "true"})
        repo = CaseRepository(session)
        case = await _own_case(repo, request, department, lock=True)
        status, body = await operation(repo, case, now)
        body = await govern_for_department(session, case.id, department.code, body, now=now, channel="api")
        if key is not None:
            await IdempotencyRepository(session).complete(department.code, key, status, body)
    wake_workers(request.config_dict)
    return web.json_response(body, status=status)


def _fingerprint(request: web.Request, body: dict[str, Any]) -> str:
    """SHA-256 of what a write asks for: method, ticket as normalised, operation and the parsed body.

    A client that re-serialises on retry (spacing, key order, escapes) or writes the ticket in lower case
    sends the same request and gets it replayed. The text hashed is a JSON array, which no raw fingerprint's
    text (``POST /api/…``) can equal.
    """
    raw = request.match_info["ticket"]
    operation = request.path.rsplit("/", 1)[-1]
    asked = [request.method, normalise_ticket(raw) or raw, operation, body]
    return hashlib.sha256(json.dumps(asked, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def _raw_fingerprint(request: web.Request) -> str:
    """The fingerprint keys stored before ``_fingerprint`` hold: method, path and body bytes as sent.

    Such a key still replays its byte-identical retry; they go with the retention period.
    """
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + await request.read()).hexdigest()


def _check_replay(same_request: bool, status: int) -> None:
    """Refuse a key used with another request, or whose first request is still being handled."""
    if not same_request:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request; use a new key",
        )
    if status == PENDING:
        raise Problem(
            409,
            "idempotency-key-in-use",
            "Request in progress",
            "a request with this Idempotency-Key is still being handled; retry later",
        )


async def _governed_replay(
    session: AsyncSession,
    request: web.Request,
    department: DepartmentProfile,
    body: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The first response once more, cut to what the department may see now (consent withdrawn, clearance
    lowered since) and audited as the disclosure it is; the case may have been transferred away since."""
    case = await _own_case(CaseRepository(session), request, None)  # it may have been transferred since
    return await govern_for_department(
        session, case.id, department.code, body, now=now, channel="api", details={"request": "replay"}
    )


async def _own_case(
    repo: CaseRepository, request: web.Request, department: DepartmentProfile | None, *, lock: bool = False
) -> Case:
    """The case of the URL if it is ``department``'s (any department's with None); another department's case
    is 404 like no case."""
    raw = request.match_info["ticket"]
    ticket = normalise_ticket(raw)
    case = await repo.by_ticket(ticket, lock=lock) if ticket else None
    if case is None or (department is not None and case.department != department.code):
        whose = "" if department is None else f"department {department.code} has "
        raise Problem(404, "unknown-case", "No such case", f"{whose}no case {_shown(raw[:40])}")
    return case


def _case_body(case: Case) -> dict[str, Any]:
    return {"case": case.for_department(), "excerpt": list(case.excerpt), "citizen": citizen_fields(case)}


async def _json_object(request: web.Request, *, required: set[str], optional: set[str]) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # nesting deeper than the parser goes
        raise Problem(400, "malformed-json", "Malformed JSON", "the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise Problem(400, "malformed-json", "Malformed JSON", "the body must be a JSON object")
    missing, unknown = required - body.keys(), body.keys() - required - optional
    if missing:
        raise Problem(
            422, "missing-field", "Missing field", f"missing field(s): {', '.join(sorted(missing))}"
        )
    if unknown:
        shown = ", ".join(sorted(repr(k[:40]) for k in unknown))  # quoted, so an empty name shows as ''
        raise Problem(422, "unknown-field", "Unknown field", f"unknown field(s): {shown}")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    """The text of a reply or note, stripped: something the citizen can see, and no more than one message."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Problem(422, "invalid-text", "Invalid text", f"{name} {_NOT_VISIBLE}")
    if UNSTORABLE.search(value):
        raise Problem(
            422, "invalid-text", "Invalid text", f"{name} holds a NUL character or half of a surrogate pair"
        )
    text = value.strip()
    if not visible(text):  # only spaces, zero-width or direction marks: the citizen would get a blank message
        raise Problem(422, "invalid-text", "Invalid text", f"{name} {_NOT_VISIBLE}")
    if len(text) > MAX_TEXT:
        raise Problem(
            422,
            "text-too-long",
            "Text too long",
            f"{name} has {len(text)} characters; at most {MAX_TEXT} fit in one message",
        )
    return text


def _status_filter(raw: str | None) -> CaseStatus | None:
    if raw is None or raw == "":
        return None
    try:
        return CaseStatus(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in CaseStatus)
        raise Problem(
            400, "invalid-status", "Unknown status", f"status must be one of {allowed}; got {_shown(raw)}"
        ) from None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = whole_number(raw, low, high)
    if value is None:
        raise Problem(
            400,
            "invalid-parameter",
            "Invalid parameter",
            f"{name} must be a whole number from {low} to {high}",
        )
    return value


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _KEY_CHARS.match(key):
        raise Problem(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
        )
    return key


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)[:60] if not isinstance(value, str) else repr(value[:60])


@web.middleware
async def _authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Find the department by its bearer token; 401 without a valid one (except on the public paths)."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="govbot"'}
    if scheme.lower() != "bearer" or not token.strip():
        return Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "send the department's API token as 'Authorization: Bearer <token>'",
        ).response(challenge)
    async with request.config_dict[SESSIONS]() as session:
        department = await DepartmentRepository(session).by_token(token.strip())
    if department is None:
        challenge["WWW-Authenticate"] += ', error="invalid_token"'
        return Problem(401, "unauthorized", "Unauthorized", "the API token is not valid").response(challenge)
    if not department.enabled:
        return Problem(
            403, "department-disabled", "Department disabled", f"department {department.code} is disabled"
        ).response()
    request[DEPARTMENT] = department
    return await handler(request)


@web.middleware
async def _not_stored(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answers to a department are for it alone: no cache keeps them, a browser-based tool's own included
    (cases hold citizens' words and contact details). The public paths may be cached."""
    response = await handler(request)
    if request.path not in PUBLIC_PATHS:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@web.middleware
async def _problems(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error as problem+json: ours, aiohttp's (404, 405, 413) and unexpected ones.

    A request that met a connection a restarted database had closed runs once more (it changed nothing).
    """
    try:
        return await reconnecting(lambda: handler(request))
    except Problem as problem:
        return problem.response()
    except CaseError as exc:
        status = _STATUS_CODES.get(exc.reason, 422)
        if isinstance(exc, CaseNotFound):
            exc = CaseNotFound(f"no case {request.match_info.get('ticket', '')[:40]!r}")
        return Problem(status, exc.reason, _title(exc.reason), str(exc)).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None  # 405 must name them
        return Problem(exc.status, "http-error", exc.reason, exc.text or exc.reason).response(allow)
    except Exception as exc:
        if out_of_reach(exc):  # an outage, not a bug: one line, and a status that says retry
            log.warning("department API on %s %s: the database is unavailable (%s)", request.method,
                        request.path, error_reason(exc)[:200])
            return Problem(
                503, "unavailable", "Service unavailable",
                "the database is unavailable; nothing was changed; retry later",
            ).response({"Retry-After": str(RETRY_AFTER_SECONDS)})
        log.exception("department API failed on %s %s", request.method, request.path)
        return Problem(
            500, "internal-error", "Internal error", "something went wrong; nothing was changed; retry later"
        ).response()


def _title(reason: str) -> str:
    return reason.replace("-", " ").capitalize()
