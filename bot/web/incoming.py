"""What a chat page sends: typed text or a pressed button, checked field by field (400 on anything odd)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from bot.web.guard import Problem
from handlers.answers import LABEL_CHARS
from handlers.types import MAX_PAYLOAD_BYTES
from storage.db import UNSTORABLE
from storage.numbers import whole_number

_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


@dataclass(frozen=True)
class ChatMessage:
    """What a page sent: typed text or a pressed button, with the page's language and message id."""

    text: str | None = None
    payload: str | None = None
    reply: int | None = None
    """The number of the entry whose button was pressed."""
    client_id: str | None = None
    lang: str | None = None
    label: str = ""
    """The pressed button's label as the page showed it; used when the log does not have it."""

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> ChatMessage:
        """Checked fields of a JSON object or a form; Problem 400 names what is wrong."""
        text, payload = fields.get("text"), fields.get("payload")
        if text is not None and not isinstance(text, str):
            raise Problem(400, "Bad Request", "text must be a string")
        if payload is not None and (not isinstance(payload, str) or not payload):
            raise Problem(400, "Bad Request", "payload must be a non-empty string")
        if (text is None) == (payload is None):
            raise Problem(400, "Bad Request", "send either text or payload")
        lang, label = fields.get("lang"), fields.get("label")
        # The text is cleaned by the dialogue; a payload and a label reach the database as they are.
        if any(isinstance(value, str) and UNSTORABLE.search(value) for value in (payload, label)):
            raise Problem(400, "Bad Request", "payload and label must not hold NUL or half a surrogate pair")
        if payload is not None and len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise Problem(400, "Bad Request", f"payload over {MAX_PAYLOAD_BYTES} bytes")
        return cls(
            text, payload, _reply(fields.get("reply")), _client_id(fields.get("client_id")),
            lang if isinstance(lang, str) else None, label[:LABEL_CHARS] if isinstance(label, str) else "",
        )


def _reply(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        value = whole_number(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    raise Problem(400, "Bad Request", "reply must be an entry number")


def _client_id(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and _CLIENT_ID.fullmatch(value):
        return value
    raise Problem(400, "Bad Request", "client_id must be 8-64 letters, digits, - or _")


def parse_message(content_type: str, body: bytes) -> tuple[ChatMessage, str | None]:
    """The message of a JSON or form body, and the CSRF token a form carries in it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "Bad Request", "the body is not UTF-8") from None
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise Problem(400, "Bad Request", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Problem(400, "Bad Request", "the body must be a JSON object")
        return ChatMessage.from_fields(data), None
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True, max_num_fields=20).items()}
        except ValueError:
            raise Problem(400, "Bad Request", "the form cannot be read") from None
        return ChatMessage.from_fields(form), form.get("csrf")
    raise Problem(415, "Unsupported Media Type", "send application/json")
