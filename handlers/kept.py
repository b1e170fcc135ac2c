"""Replies a channel could not send after its own retries, kept as a citizen notice until it can.

A turn is not run again once the dialogue has completed it (its effects would repeat), so what the
platform did not take waits in the citizen's notices and the notifier delivers it. The notice holds the
replies as they were written, buttons included, as a department's reply waits with its real text; once the
notice is finished (sent, or the chat gone) only their stored form is kept, personal data masked, as the
conversation keeps the bot's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.types import Button, Reply
from storage.citizens import for_storage

KEPT = "kept"
"""The citizen notice kind of replies kept for the notifier."""


def kept_data(replies: Sequence[Reply]) -> dict[str, Any]:
    """A notice's data for these replies (texts and buttons; a document cannot be kept)."""
    return {"replies": [{"text": reply.text, "kind": reply.kind,
                         "buttons": [[_button(button) for button in row] for row in reply.buttons]}
                        for reply in replies]}


def kept_replies(data: dict[str, Any]) -> list[Reply]:
    """The replies kept in a notice's data, to send."""
    return [Reply(str(item["text"]), kind=str(item.get("kind", "message")),
                  buttons=tuple(tuple(Button(**button) for button in row) for row in item.get("buttons", ())))
            for item in data["replies"]]


def at_rest(data: dict[str, Any]) -> dict[str, Any]:
    """A finished notice's data: the texts in their stored form, the buttons left out."""
    return {"replies": [{"text": for_storage(str(item["text"])), "kind": item.get("kind", "message")}
                        for item in data.get("replies", ())]}


def _button(button: Button) -> dict[str, str]:
    if button.url is not None:
        return {"label": button.label, "url": button.url}
    assert button.payload is not None
    return {"label": button.label, "payload": button.payload}
