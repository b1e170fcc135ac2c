"""The versioned JSON that departments receive: built once when the event happens, signed on each attempt."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.cases import Case

EVENT_VERSION = 1
CASE_CREATED = "case.created"
CASE_UPDATED = "case.updated"
CASE_CLOSED = "case.closed"
CASE_TRANSFERRED = "case.transferred"
EVENT_TYPES = (CASE_CREATED, CASE_UPDATED, CASE_CLOSED, CASE_TRANSFERRED)
_TAG = re.compile(r"<[^>]{0,200}>")


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, as every JSON govbot writes carries times."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_payload(
    event_type: str, webhook_id: str, now: datetime, case: Case, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"type", "version", "id", "timestamp", "data": {case, excerpt, citizen, …}}``."""
    data: dict[str, Any] = {
        "case": case.for_department(),
        "excerpt": list(case.excerpt),
        "citizen": citizen_fields(case),
    }
    data.update(extra or {})
    return {
        "type": event_type,
        "version": EVENT_VERSION,
        "id": webhook_id,
        "timestamp": iso(now),
        "data": data,
    }


def citizen_fields(case: Case) -> dict[str, Any]:
    """What a department may know of the citizen: language and channel, contact details only with consent."""
    fields: dict[str, Any] = {"language": case.language, "channel": case.channel}
    if case.contact and case.contact_consent_at is not None:
        fields["contact"] = case.contact
        fields["contact_consent_at"] = iso(case.contact_consent_at)
    return fields


def excerpt_item(direction: str, text: str, at: datetime) -> dict[str, Any]:
    """One message of the conversation excerpt; the bot's own HTML is reduced to plain text."""
    if direction == "out":
        text = html.unescape(_TAG.sub("", text))
    return {"direction": direction, "text": text, "at": iso(at)}
