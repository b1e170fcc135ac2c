"""The OpenAPI 3.1 document of the department API (served at /api/v1/openapi.json), and of the webhooks."""

from __future__ import annotations

from typing import Any

from storage.classification import LOWEST_CLEARANCE, DataClass, Field
from storage.disclosure import Withheld
from storage.idempotency import MAX_KEY_LENGTH

JSON = dict[str, Any]
MAX_LIMIT = 200
"""Most cases one page of ``GET /cases`` holds."""
MAX_OFFSET = 1_000_000_000
KEY_PATTERN = f"^[!-~]{{1,{MAX_KEY_LENGTH}}}$"
"""An ``Idempotency-Key``: visible ASCII only, as RFC 9110 field values without spaces."""


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> JSON:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _json(description: str, schema: JSON) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _object(properties: JSON, *, required: tuple[str, ...] = ()) -> JSON:
    return {"type": "object", "required": list(required), "properties": properties}


TICKET = {
    "name": "ticket",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{0,7}-[0-9]{4}-[0-9]{6,}$"},
    "example": "TR-2026-000123",
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeat a write safely: the same key with the same request (the same ticket and JSON, "
    "however spaced or ordered) returns the first response (with `Idempotent-Replayed: true`); the same key "
    "with another request is refused (422). A key is "
    "kept for govbot's retention period (`GOVBOT_RETENTION_DAYS`, a year by default).",
    "schema": {"type": "string", "pattern": KEY_PATTERN},
}
STATUS = {"type": "string", "enum": ["open", "in_progress", "resolved", "closed"]}
TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": 4096,
    "description": "Leading and trailing spaces are stripped; what is left must show (not only zero-width or "
    "direction marks) and fit in 4096 characters",
}
TIME = {"type": "string", "format": "date-time"}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}
}
UNAVAILABLE = _problem(
    "govbot's database is out of reach; nothing was changed: send the request again later "
    "(a write with the same `Idempotency-Key`)"
) | {"headers": RETRY_AFTER}
ERRORS = {
    "400": _problem("Malformed JSON or parameters"),
    "401": _problem("Missing or wrong bearer token"),
    "403": _problem("The department is disabled"),
    "404": _problem("No such case for this department"),
    "503": UNAVAILABLE,
}
WRITE_ERRORS = ERRORS | {
    "409": _problem("The case's state does not allow this (e.g. it is closed)"),
    "422": _problem(
        "Invalid fields (unknown status, text too long, transfer to itself or an unknown department)"
    ),
}

CASE: JSON = {
    "type": "object",
    "required": ["ticket", "status", "department", "language", "channel", "description", "created_at"],
    "properties": {
        "ticket": {"type": "string"},
        "status": STATUS,
        "department": {"type": "string"},
        "language": {"type": "string"},
        "channel": {"type": "string"},
        "description": {"type": "string", "description": '`""` when `free_text` is withheld'},
        "entry_id": {"type": ["string", "null"]},
        "category": {"type": ["string", "null"]},
        "satisfaction": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "created_at": TIME,
        "updated_at": TIME,
        "closed_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
EXCERPT = {
    "type": "array",
    "description": "Empty when `free_text` is withheld.",
    "items": {
        "type": "object",
        "properties": {
            "direction": {"type": "string", "enum": ["in", "out"]},
            "text": {"type": "string"},
            "at": TIME,
        },
    },
}
CITIZEN = {
    "type": "object",
    "description": "Only what the department may see: contact details only with the citizen's consent.",
    "properties": {
        "language": {"type": "string"},
        "channel": {"type": "string"},
        "contact": {"type": "string"},
        "contact_consent_at": TIME,
    },
}
CHANGE = {
    "type": "object",
    "properties": {
        "kind": {
            "type": "string",
            "enum": [
                "created", "information", "reply", "status", "transferred", "withdrawn", "rated", "erased",
            ],
        },
        "actor": {"type": "string", "description": "`citizen` or a department code"},
        "text": {"type": ["string", "null"]},
        "data": {"type": "object"},
        "at": TIME,
    },
}
# Derived from storage so the document cannot name a reason or class the code does not produce.
PRIVACY = _object(
    {
        "clearance": {
            "type": "string",
            "enum": [c.label for c in DataClass if c >= LOWEST_CLEARANCE],
            "description": "The department's clearance (never below `internal`: a case needs its ticket).",
        },
        "withheld": {
            "type": "array",
            "description": "Citizen fields held back from this department, sorted by field. A withheld "
            "`free_text` leaves `case.description` and `update.text` empty, `excerpt` empty and "
            "the citizen's `history[].text` null; a withheld `contact` removes `citizen.contact` and "
            "`contact_consent_at`. "
            "Free text that goes out still has phone numbers, e-mail, ID and card numbers masked unless "
            "those fields may go out too.",
            "items": _object(
                {
                    "field": {"type": "string", "enum": [f.value for f in Field]},
                    "reason": {
                        "type": "string",
                        "enum": [w.value for w in Withheld],
                        "description": "`clearance`: above the department's clearance; `consent`: the "
                        "citizen was not asked or has not answered yet; `refused`: the citizen said no "
                        "or withdrew consent; `erased`: the citizen erased their data.",
                    },
                },
                required=("field", "reason"),
            ),
        },
    },
    required=("clearance", "withheld"),
) | {"description": "What went to this department and what was held back, decided when it was sent."}
EVENT = {
    "type": "object",
    "required": ["type", "version", "id", "timestamp", "data"],
    "properties": {
        "type": {
            "type": "string",
            "enum": ["case.created", "case.updated", "case.closed", "case.transferred"],
        },
        "version": {"type": "integer", "const": 1},
        "id": {"type": "string", "description": "Equals the webhook-id header; the same on every retry."},
        "timestamp": TIME,
        "data": _object(
            {
                "case": _ref("Case"),
                "excerpt": _ref("Excerpt"),
                "citizen": _ref("Citizen"),
                "privacy": _ref("Privacy"),
                "update": {"type": "object", "description": "case.updated: what the citizen added"},
                "consent": _object(
                    {"granted": {"type": "array", "items": {"type": "string"}}, "at": TIME},
                    required=("granted", "at"),
                )
                | {"description": "case.updated: the citizen consented to share these fields"},
                "reason": {
                    "type": "string",
                    "enum": ["withdrawn", "erased"],
                    "description": "case.closed: the citizen withdrew the case or erased their data",
                },
                "transfer": {"type": "object", "description": "case.transferred: `from` and `note`"},
            },
            required=("case", "excerpt", "citizen", "privacy"),
        ),
    },
}
FIGURE = _object(
    {
        "value": {"type": ["number", "null"]},
        "suppressed": {
            "type": "boolean",
            "description": "`true` (and `value` null) when computed from fewer than `min_people` citizens, "
            "or from nobody.",
        },
    },
    required=("value", "suppressed"),
)
COUNT = _object(
    {"value": {"type": ["integer", "null"]}, "suppressed": FIGURE["properties"]["suppressed"]},
    required=("value", "suppressed"),
)
MONTH = {
    "type": "string",
    "pattern": "^[0-9]{4}-[0-9]{2}$",
    "description": "`YYYY-MM` of the service desk's calendar (`GOVBOT_TIMEZONE`)",
}


def _with(figure: JSON, **fields: JSON) -> JSON:
    """A figure carrying extra always-present fields (a unit, a scale, a month)."""
    return _object(figure["properties"] | fields, required=(*figure["required"], *fields))


STATS: JSON = _object(
    {
        "generated_at": TIME,
        "since": TIME,
        "until": {**TIME, "description": "Exclusive: the first instant of next month"},
        "min_people": {"type": "integer", "description": "Figures from fewer citizens are suppressed."},
        "questions_asked": COUNT,
        "answer_rate": _with(FIGURE, unit={"type": "string", "const": "percent"}),
        "helpful_rate": _with(FIGURE, unit={"type": "string", "const": "percent"}),
        "satisfaction": _with(FIGURE, scale={"type": "string", "const": "1-5"}),
        "median_hours_to_first_reply": FIGURE,
        "cases_per_department": {
            "type": "array",
            "items": _object(
                {
                    "department": {"type": "string"},
                    "name": {
                        "type": "object",
                        "description": "The department's name by language code",
                        "additionalProperties": {"type": "string"},
                    },
                    "cases": COUNT,
                    "median_hours_to_first_reply": FIGURE,
                    "satisfaction": FIGURE,
                },
                required=("department", "name", "cases", "median_hours_to_first_reply", "satisfaction"),
            ),
        },
        "monthly": _object(
            {
                "questions": {"type": "array", "items": _with(COUNT, month=MONTH)},
                "answer_rate": {"type": "array", "items": _with(FIGURE, month=MONTH)},
                "helpful_rate": {"type": "array", "items": _with(FIGURE, month=MONTH)},
            },
            required=("questions", "answer_rate", "helpful_rate"),
        )
        | {"description": "Each month of the window, oldest first; rates in percent."},
    },
    required=(
        "generated_at",
        "since",
        "until",
        "min_people",
        "questions_asked",
        "answer_rate",
        "helpful_rate",
        "satisfaction",
        "median_hours_to_first_reply",
        "cases_per_department",
        "monthly",
    ),
)


def _governed(properties: JSON) -> JSON:
    """A response body as the department may have it: the given parts plus the ``privacy`` block."""
    return _object(properties | {"privacy": _ref("Privacy")}, required=(*properties, "privacy"))


def _case_write(summary: str, body: JSON, status: str, description: str, answer: JSON) -> JSON:
    """A POST on one case: ticket, Idempotency-Key, a closed JSON body; the governed case comes back."""
    return {
        "post": {
            "summary": summary,
            "parameters": [TICKET, IDEMPOTENCY_KEY],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body | {"additionalProperties": False}}},
            },
            "responses": {status: _json(description, _governed(answer)), **WRITE_ERRORS},
        }
    }


def _webhook(event: str, summary: str) -> JSON:
    return {
        "post": {
            "summary": summary,
            "description": f"`{event}`, signed per Standard Webhooks (webhook-id, webhook-timestamp, "
            "webhook-signature `v1,<base64 HMAC-SHA256>` with every active secret). Answer 2xx within 15 s; "
            "anything else is retried (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, with jitter); "
            "410 Gone disables the endpoint.",
            "requestBody": {"content": {"application/json": {"schema": _ref("Event")}}},
            "responses": {"2XX": {"description": "Received"}},
        }
    }


OPENAPI: JSON = {
    "openapi": "3.1.0",
    "info": {
        "title": "govbot department API",
        "version": "1",
        "description": "Departments read their cases, reply to citizens, change a case's status and "
        "transfer it. Authenticate with `Authorization: Bearer <token>` (from `govbot departments "
        "rotate-token`). Errors are RFC 9457 problem+json. Every case document carries a `privacy` "
        "block naming what was held back from the department (clearance, consent, erasure).",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "paths": {
        "/cases": {
            "get": {
                "summary": "The department's cases, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": STATUS},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                    },
                ],
                "responses": {
                    "200": _json(
                        "Cases, each with its own `privacy` block",
                        _object(
                            {
                                "cases": {
                                    "type": "array",
                                    "items": {
                                        "allOf": [
                                            _ref("Case"),
                                            _object({"privacy": _ref("Privacy")}, required=("privacy",)),
                                        ]
                                    },
                                },
                                "limit": {"type": "integer"},
                                "offset": {"type": "integer"},
                            },
                            required=("cases", "limit", "offset"),
                        ),
                    ),
                    **ERRORS,
                },
            }
        },
        "/cases/{ticket}": {
            "get": {
                "summary": "One case with its excerpt, citizen fields and history",
                "parameters": [TICKET],
                "responses": {
                    "200": _json(
                        "The case",
                        _governed(
                            {
                                "case": _ref("Case"),
                                "excerpt": _ref("Excerpt"),
                                "citizen": _ref("Citizen"),
                                "history": {"type": "array", "items": _ref("Change")},
                            }
                        ),
                    ),
                    **ERRORS,
                },
            }
        },
        "/cases/{ticket}/replies": _case_write(
            "Reply to the citizen (relayed to their chat)",
            _object({"text": TEXT}, required=("text",)),
            "201",
            "Queued for the citizen",
            {"case": _ref("Case"), "reply": _ref("Change")},
        ),
        "/cases/{ticket}/status": _case_write(
            "Change the status; the citizen is told, and asked to rate on resolved/closed",
            _object(
                {"status": {"type": "string", "enum": ["in_progress", "resolved", "closed"]}, "note": TEXT},
                required=("status",),
            ),
            "200",
            "Changed",
            {"case": _ref("Case")},
        ),
        "/cases/{ticket}/transfer": _case_write(
            "Transfer the case; the new department receives case.transferred",
            _object(
                {"department": {"type": "string", "minLength": 1, "maxLength": 50}, "note": TEXT},
                required=("department",),
            ),
            "200",
            "Transferred",
            {"case": _ref("Case")},
        ),
        "/stats": {
            "get": {
                "summary": "Public transparency figures of the last six full months (not the current one)",
                "description": "Aggregates only, no personal data; the figures of the public transparency "
                "page. Cacheable for 5 minutes.",
                "security": [],
                "responses": {
                    "200": _json("The figures", _ref("Stats")),
                    "429": _problem("Too many requests from this address") | {"headers": RETRY_AFTER},
                    "503": UNAVAILABLE,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document"}},
            }
        },
    },
    "webhooks": {
        "case.created": _webhook("case.created", "A citizen opened a case"),
        "case.updated": _webhook("case.updated", "The citizen added information or consented to share it"),
        "case.closed": _webhook("case.closed", "The citizen withdrew the case"),
        "case.transferred": _webhook("case.transferred", "Another department transferred a case to you"),
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Case": CASE,
            "Excerpt": EXCERPT,
            "Citizen": CITIZEN,
            "Change": CHANGE,
            "Privacy": PRIVACY,
            "Event": EVENT,
            "Stats": STATS,
            "Problem": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string", "format": "uri-reference"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}
