"""Routers group the dialogue's flows by feature; a Turn is everything one flow needs for one event."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.i18n import Html, t
from handlers.types import Button, Incoming, Reply
from knowledge.entry import Entry, local_date
from storage.citizens import Citizen, CitizenRepository, DialogueState
from storage.knowledge_sync import LiveKnowledge
from storage.numbers import whole_number
from storage.questions import QuestionRepository


@dataclass
class Turn:
    """One incoming event being handled, inside one unit of work."""

    incoming: Incoming
    session: AsyncSession
    citizen: Citizen
    lang: str
    state: DialogueState
    knowledge: LiveKnowledge
    now: datetime
    args: str = ""
    """What follows the command name (``/status TR-1`` → ``TR-1``) or the payload prefix."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Services a feature router needs (e.g. the escalation settings), set up by the Dialogue."""
    zone: tzinfo = UTC
    """The service desk's zone: the calendar of the dates citizens see and of entries' validity."""

    @property
    def today(self) -> date:
        """The service desk's calendar date now."""
        return local_date(self.now, self.zone)

    def local(self, moment: datetime) -> datetime:
        """A stored (UTC) moment as the service desk's clock reads it."""
        return moment.astimezone(self.zone)

    def t(self, key: str, **values: Any) -> Html:
        return t(self.lang, key, **values)

    @property
    def citizens(self) -> CitizenRepository:
        return CitizenRepository(self.session)

    @property
    def questions(self) -> QuestionRepository:
        return QuestionRepository(self.session)

    def localized(self, texts: dict[str, str]) -> str:
        """The text in the citizen's language, else any language it has."""
        return texts.get(self.lang) or next((v for v in texts.values() if v), "")

    def entry(self, entry_id: str) -> Entry | None:
        """A knowledge-base entry that exists and :meth:`shows`."""
        entry = self.knowledge.entry(entry_id)
        return entry if entry is not None and self.shows(entry) else None

    def shows(self, entry: Entry) -> bool:
        """Whether the entry may be shown today: in force, and with an answer to show."""
        return entry.is_valid_on(self.today) and entry.has_answer

    def say(
        self, key: str, *, kind: str = "message", buttons: tuple[tuple[Button, ...], ...] = (), **values: Any
    ) -> list[Reply]:
        """A single reply with a catalogue message."""
        return [Reply(self.t(key, **values), buttons=buttons, kind=kind)]


Flow = Callable[[Turn], Awaitable[list[Reply]]]

MAX_ID = 2**31 - 1
"""Database ids fit a signed 32-bit integer on every backend."""


def private(flow: Flow) -> Flow:
    """A flow that shows or changes the citizen's own data: in a group it only asks for a private chat."""

    @functools.wraps(flow)
    async def in_private(turn: Turn) -> list[Reply]:
        if turn.incoming.is_group:
            return turn.say("private_only", kind="private_only")
        return await flow(turn)

    return in_private


def parse_id(text: str) -> int | None:
    """A database id from a button payload or stored state; None for anything else (forged, "²", huge)."""
    return whole_number(text, 1, MAX_ID)


class Router:
    """Flows of one feature, found by command name, button payload prefix, or pending state."""

    def __init__(self) -> None:
        self.commands: dict[str, Flow] = {}
        self.buttons: dict[str, Flow] = {}
        self.states: dict[str, Flow] = {}
        self.text: Flow | None = None
        self.blind: set[Flow] = set()
        """Flows that neither read nor erase the conversation's messages (see :meth:`reads_no_messages`)."""
        self.features: dict[str, Router] = {}
        """Which included router (feature) each button prefix and state name came from."""

    def command(self, *names: str) -> Callable[[Flow], Flow]:
        return self._register(self.commands, names)

    def button(self, *prefixes: str) -> Callable[[Flow], Flow]:
        """Flows for payloads ``prefix`` or ``prefix:args``."""
        return self._register(self.buttons, prefixes)

    def state(self, *names: str) -> Callable[[Flow], Flow]:
        """Flows for free text while the citizen's conversation is in one of these states."""
        return self._register(self.states, names)

    def on_text(self, flow: Flow) -> Flow:
        """The flow for free text when nothing is pending."""
        self.text = flow
        return flow

    def reads_no_messages(self, flow: Flow) -> Flow:
        """Mark a flow that neither reads nor erases the conversation's messages: its turn writes the
        incoming message with the replies, one statement, where the others have it written before they run
        (a case quotes it, /forget erases it)."""
        self.blind.add(flow)
        return flow

    def include(self, *routers: Router) -> None:
        for router in routers:
            self.blind |= router.blind
            for own, other in (
                (self.commands, router.commands),
                (self.buttons, router.buttons),
                (self.states, router.states),
            ):
                clash = own.keys() & other.keys()
                if clash:
                    raise ValueError(f"routes defined twice: {sorted(clash)}")
                own.update(other)
                self.features.update(dict.fromkeys(other, router))
            self.text = router.text or self.text

    def same_feature(self, prefix: str, state: str) -> bool:
        """Whether button ``prefix`` belongs to the feature that is waiting in ``state``."""
        owner = self.features.get(state)
        return owner is not None and owner is self.features.get(prefix)

    def _register(self, table: dict[str, Flow], names: tuple[str, ...]) -> Callable[[Flow], Flow]:
        def decorate(flow: Flow) -> Flow:
            for name in names:
                table[name] = flow
            return flow

        return decorate
