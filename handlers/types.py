"""What goes into the dialogue and what comes out of it, in no platform's terms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

MAX_PAYLOAD_BYTES = 64
"""Button payloads must fit Telegram's callback_data limit."""


@dataclass(frozen=True)
class Incoming:
    """One thing a citizen did: a message, a command, or a button press."""

    channel: str
    """``telegram``, ``web`` or ``console``."""
    chat_id: str
    user_id: str
    text: str | None = None
    payload: str | None = None
    """The payload of the button that was pressed."""
    language: str | None = None
    """The platform's idea of the user's language (Telegram's language_code), if any."""
    message_id: str | None = None
    """The platform's id of the message (for a button press: of the message the button was on)."""
    is_group: bool = False
    display_name: str | None = None
    thread_id: str | None = None
    """The platform's thread (a forum topic) the event came from; the replies go back into it."""
    unsupported: str | None = None
    """The kind of content that is not text (``sticker``, ``photo``, ``voice``…), if that is what arrived;
    ``text`` is then its caption, if it had one."""

    @property
    def command(self) -> tuple[str, str] | None:
        """``("start", "args")`` for ``/start@govbot args``; None when the text is not a command."""
        if not self.text or not self.text.startswith("/") or len(self.text) < 2 or self.text[1].isspace():
            return None
        head, *rest = self.text[1:].split(maxsplit=1)  # a new line or a tab ends the name too
        name = head.split("@", 1)[0].lower()
        return (name, rest[0].strip() if rest else "") if name else None


@dataclass(frozen=True)
class Button:
    """A button under a reply: either sends ``payload`` back, or opens ``url``."""

    label: str
    payload: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.payload is None) == (self.url is None):
            raise ValueError("a button has either a payload or a url")
        if self.payload is not None and len(self.payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"button payload over {MAX_PAYLOAD_BYTES} bytes: {self.payload!r}")


@dataclass(frozen=True)
class Document:
    """A file sent to the citizen, e.g. the JSON export of their data."""

    filename: str
    content: bytes
    mime_type: str = "application/json"


@dataclass(frozen=True)
class Reply:
    """One message to the citizen.

    ``text`` is Telegram-safe HTML (only b, i, u, s, a, code, pre, blockquote); every channel renders it.
    ``buttons`` are rows of buttons. ``replace`` asks the channel to edit the message whose button was
    pressed instead of sending a new one (browsing pages); channels that cannot edit send it anew.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    document: Document | None = None
    replace: bool = False
    notice: str | None = None
    """A short acknowledgement of a button press (Telegram shows it as a toast); not a message."""
    kind: str = "message"
    """What the reply is, for metrics and tests: ``answer``, ``clarify``, ``fallback``, ``menu``, …"""
    buttons_flat: tuple[Button, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "buttons_flat", tuple(b for row in self.buttons for b in row))


FLOOD = "flood"
"""The kind of the reply that tells a citizen they are over the flood limit (once per window)."""
FLOOD_QUIET = "flood-quiet"
"""The kind of the reply to a message refused after that: channels that can stay silent do (Telegram);
those that must answer a request (the web chat's POST) answer it as they answer FLOOD."""


FORGOTTEN = "forgotten"
"""The kind of the reply that confirms an erasure: nothing of that exchange may be stored after it."""


def erased(replies: Sequence[Reply]) -> bool:
    """Whether these replies confirm that the citizen's data was just erased."""
    return any(reply.kind == FORGOTTEN for reply in replies)


def refused(replies: Sequence[Reply]) -> bool:
    """Whether these are the replies to a message refused by the flood limit."""
    return any(reply.kind in (FLOOD, FLOOD_QUIET) for reply in replies)


class Conversation(Protocol):
    """The dialogue as the channels see it."""

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Everything to send back for one incoming event (possibly nothing)."""
        ...
