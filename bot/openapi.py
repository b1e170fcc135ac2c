"""The OpenAPI 3.1 document of the department API (served at /api/v1/openapi.json), and of the webhooks."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> JSON:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _json(description: str, schema: JSON) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


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
    "description": "Repeat a write safely: the same key with the same request returns the first response "
    "(with `Idempotent-Replayed: true`); the same key with another request is refused (422).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
STATUS = {"type": "string", "enum": ["open", "in_progress", "resolved", "closed"]}
TEXT = {"type": "string", "minLength": 1, "maxLength": 4096}
ERRORS = {
    "400": _problem("Malformed JSON or parameters"),
    "401": _problem("Missing or wrong bearer token"),
    "403": _problem("The department is disabled"),
    "404": _problem("No such case for this department"),
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
        "description": {"type": "string"},
        "entry_id": {"type": ["string", "null"]},
        "category": {"type": ["string", "null"]},
        "satisfaction": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "closed_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
EXCERPT = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "direction": {"type": "string", "enum": ["in", "out"]},
            "text": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
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
        "contact_consent_at": {"type": "string", "format": "date-time"},
    },
}
CHANGE = {
    "type": "object",
    "properties": {
        "kind": {
            "type": "string",
            "enum": ["created", "information", "reply", "status", "transferred", "withdrawn", "rated"],
        },
        "actor": {"type": "string", "description": "`citizen` or a department code"},
        "text": {"type": ["string", "null"]},
        "data": {"type": "object"},
        "at": {"type": "string", "format": "date-time"},
    },
}
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
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {
            "type": "object",
            "properties": {
                "case": _ref("Case"),
                "excerpt": _ref("Excerpt"),
                "citizen": _ref("Citizen"),
                "update": {"type": "object", "description": "case.updated: what the citizen added"},
                "reason": {"type": "string", "description": "case.closed: `withdrawn`"},
                "transfer": {"type": "object", "description": "case.transferred: `from` and `note`"},
            },
        },
    },
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
        "rotate-token`). Errors are RFC 9457 problem+json.",
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
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                ],
                "responses": {
                    "200": _json(
                        "Cases",
                        {
                            "type": "object",
                            "properties": {
                                "cases": {"type": "array", "items": _ref("Case")},
                                "limit": {"type": "integer"},
                                "offset": {"type": "integer"},
                            },
                        },
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
                        {
                            "type": "object",
                            "properties": {
                                "case": _ref("Case"),
                                "excerpt": _ref("Excerpt"),
                                "citizen": _ref("Citizen"),
                                "history": {"type": "array", "items": _ref("Change")},
                            },
                        },
                    ),
                    **ERRORS,
                },
            }
        },
        "/cases/{ticket}/replies": {
            "post": {
                "summary": "Reply to the citizen (relayed to their chat)",
                "parameters": [TICKET, IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["text"],
                                "additionalProperties": False,
                                "properties": {"text": TEXT},
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        "Queued for the citizen",
                        {
                            "type": "object",
                            "properties": {"case": _ref("Case"), "reply": _ref("Change")},
                        },
                    ),
                    **WRITE_ERRORS,
                },
            }
        },
        "/cases/{ticket}/status": {
            "post": {
                "summary": "Change the status; the citizen is told, and asked to rate on resolved/closed",
                "parameters": [TICKET, IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["status"],
                                "additionalProperties": False,
                                "properties": {
                                    "status": {
                                        "type": "string",
                                        "enum": ["in_progress", "resolved", "closed"],
                                    },
                                    "note": TEXT,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("Changed", {"type": "object", "properties": {"case": _ref("Case")}}),
                    **WRITE_ERRORS,
                },
            }
        },
        "/cases/{ticket}/transfer": {
            "post": {
                "summary": "Transfer the case; the new department receives case.transferred",
                "parameters": [TICKET, IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["department"],
                                "additionalProperties": False,
                                "properties": {"department": {"type": "string"}, "note": TEXT},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("Transferred", {"type": "object", "properties": {"case": _ref("Case")}}),
                    **WRITE_ERRORS,
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
        "case.updated": _webhook("case.updated", "The citizen added information"),
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
            "Event": EVENT,
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
