"""Citizens, where they are in the dialogue, and what they said and were told."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.masking import mask
from storage.models import Conversation, Message, User, utcnow

MAX_STORED_TEXT = 4000
"""Longer messages are stored cut to this many characters (the matcher reads far less)."""
LAST_SEEN_PRECISION = timedelta(minutes=1)
"""``last_seen_at`` is rewritten only when it is older than this: a citizen sends several updates a minute,
and rewriting it on each cost an UPDATE of the citizen's row per turn."""


def for_storage(text: str) -> str:
    """The form in which a citizen's free text is kept: the one place where stored text is shaped.

    Personal data in it (phone numbers, e-mail, ID and bank card numbers) is masked (storage/masking.py).
    """
    # Masked before the cut, so a number at the edge is never kept half-unmasked; bounded first for cost.
    return mask(text[: 2 * MAX_STORED_TEXT])[:MAX_STORED_TEXT]


@dataclass
class Citizen:
    """A citizen as one channel knows them."""

    id: int
    channel: str
    external_id: str
    language: str | None
    created_at: datetime


@dataclass
class DialogueState:
    """Where a citizen is in the dialogue; ``state`` None means "nothing pending"."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def set(self, state: str | None, **data: Any) -> None:
        self.state = state
        self.data = dict(data)

    def clear(self) -> None:
        self.set(None)


class CitizenRepository:
    """Citizens and their conversations within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # The session's identity map holds rows weakly: without this, save_state would load the row again.
        self._conversations: dict[int, Conversation] = {}

    async def get_or_create(self, channel: str, external_id: str, *, now: datetime | None = None) -> Citizen:
        """The citizen for a channel identity, created on first contact."""
        now = now or utcnow()
        row = await self._find(channel, external_id)
        if row is None:
            row = await self._insert(channel, external_id, now)
        if now - row.last_seen_at >= LAST_SEEN_PRECISION:
            row.last_seen_at = now
        return _citizen(row)

    async def get(self, citizen_id: int) -> Citizen | None:
        row = await self.session.get(User, citizen_id)
        return _citizen(row) if row else None

    async def set_language(self, citizen_id: int, language: str) -> None:
        row = await self.session.get(User, citizen_id)
        if row is not None:
            row.language = language

    async def state(self, citizen_id: int) -> DialogueState:
        row = await self._conversation(citizen_id)
        return DialogueState(row.state, dict(row.data)) if row else DialogueState()

    async def save_state(self, citizen_id: int, state: DialogueState) -> None:
        row = await self._conversation(citizen_id)
        if row is None:
            row = Conversation(user_id=citizen_id, state=state.state, data=state.data)
            self.session.add(row)
            self._conversations[citizen_id] = row
        else:
            row.state, row.data = state.state, dict(state.data)

    async def record_message(
        self, citizen_id: int, direction: str, text: str, *, now: datetime | None = None
    ) -> None:
        """Keep a message of the conversation, in its stored form."""
        self.session.add(
            Message(
                user_id=citizen_id, direction=direction, text=for_storage(text), created_at=now or utcnow()
            )
        )

    async def recent_messages(self, citizen_id: int, limit: int = 20) -> list[tuple[str, str, datetime]]:
        """The last ``limit`` messages, oldest first, as (direction, text, time)."""
        rows = await self.session.execute(
            select(Message.direction, Message.text, Message.created_at)
            .where(Message.user_id == citizen_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
        return [(d, t, c) for d, t, c in reversed(rows.all())]

    async def _conversation(self, citizen_id: int) -> Conversation | None:
        row = self._conversations.get(citizen_id)
        if row is None or row not in self.session or inspect(row).expired_attributes:
            # Deleted, rolled back or expired since: the session loads it afresh (or finds it gone).
            row = await self.session.get(Conversation, citizen_id)
            if row is not None:
                self._conversations[citizen_id] = row
        return row

    async def _find(self, channel: str, external_id: str) -> User | None:
        # scalars().first(), not scalar(): with a return context mypy picks scalar()'s untyped overload.
        rows = await self.session.scalars(
            select(User).where(User.channel == channel, User.external_id == external_id)
        )
        return rows.first()

    async def _insert(self, channel: str, external_id: str, now: datetime) -> User:
        # Two processes may see a new citizen at once; the unique constraint decides, the loser reads.
        try:
            async with self.session.begin_nested():
                row = User(channel=channel, external_id=external_id, created_at=now, last_seen_at=now)
                self.session.add(row)
            return row
        except IntegrityError:
            found = await self._find(channel, external_id)
            assert found is not None
            return found


def _citizen(row: User) -> Citizen:
    return Citizen(row.id, row.channel, row.external_id, row.language, row.created_at)
