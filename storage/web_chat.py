"""The web chat's log: what each web citizen saw, with buttons, numbered so a page can catch up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from storage.citizens import CitizenRepository
from storage.models import Base, User, utcnow

log = logging.getLogger(__name__)

CHANNEL = "web"
HISTORY = 200
"""Entries a page shows on load, and the most one catch-up request returns."""
ATTEMPTS = 5
"""Tries to append when another writer took the same sequence numbers at the same moment."""


class WebEntry(Base):
    """One thing shown in a citizen's web chat: their message, a button they pressed, or a reply."""

    __tablename__ = "web_entries"
    __table_args__ = (UniqueConstraint("user_id", "seq"), UniqueConstraint("user_id", "client_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    """1, 2, 3… per citizen, without gaps: a page asks for "everything after N"."""
    role: Mapped[str] = mapped_column(String(10))
    """``citizen`` (typed text), ``press`` (a button), ``bot`` (a reply or a department's notice)."""
    text: Mapped[str] = mapped_column(Text)
    """Plain text for the citizen's roles; the dialogue's Telegram-safe HTML for ``bot``."""
    kind: Mapped[str] = mapped_column(String(30))
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Rows of ``{"label", "payload"}`` or ``{"label", "url"}``."""
    document: Mapped[dict[str, Any] | None]
    """``{"filename", "mime_type", "content_b64"}`` of a file sent with the reply."""
    client_id: Mapped[str | None] = mapped_column(String(64))
    """The page's id for the citizen's message, so a re-sent message is recognised and not handled twice."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class NewEntry:
    """An entry to append; sequence number and time are given when it is stored."""

    role: str
    text: str
    kind: str = "message"
    buttons: list[Any] = field(default_factory=list)
    document: dict[str, Any] | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class ChatEntry:
    """A stored entry of one citizen's web chat."""

    seq: int
    role: str
    text: str
    kind: str
    buttons: list[Any]
    document: dict[str, Any] | None
    client_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Appended:
    """What an append stored (or found stored, for a message sent twice) and the citizen's language."""

    entries: list[ChatEntry]
    language: str | None
    duplicate: bool = False
    erased: bool = False
    """The message erased the citizen's data, so neither it nor its replies were stored."""


class WebChatRepository:
    """One citizen's web chat within one unit of work; citizens are found by their web identity."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def citizen(self, identity: str) -> tuple[int, str | None] | None:
        """The id and chosen language of the citizen with this web identity, if they ever wrote."""
        row = (
            await self.session.execute(
                select(User.id, User.language).where(User.channel == CHANNEL, User.external_id == identity)
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def history(self, citizen_id: int, limit: int = HISTORY) -> list[ChatEntry]:
        """The last ``limit`` entries, oldest first."""
        rows = await self.session.scalars(
            select(WebEntry).where(WebEntry.user_id == citizen_id).order_by(WebEntry.seq.desc()).limit(limit)
        )
        return [_entry(row) for row in reversed(rows.all())]

    async def after(self, citizen_id: int, seq: int, limit: int = HISTORY) -> list[ChatEntry]:
        """Entries numbered above ``seq``, oldest first."""
        rows = await self.session.scalars(
            select(WebEntry)
            .where(WebEntry.user_id == citizen_id, WebEntry.seq > seq)
            .order_by(WebEntry.seq)
            .limit(limit)
        )
        return [_entry(row) for row in rows]

    async def last_seq(self, citizen_id: int) -> int:
        value = await self.session.scalar(
            select(func.max(WebEntry.seq)).where(WebEntry.user_id == citizen_id)
        )
        return int(value or 0)

    async def entry(self, citizen_id: int, seq: int) -> ChatEntry | None:
        row = await self.session.scalar(
            select(WebEntry).where(WebEntry.user_id == citizen_id, WebEntry.seq == seq)
        )
        return _entry(row) if row is not None else None

    async def sent(self, citizen_id: int, client_id: str) -> ChatEntry | None:
        """The citizen's entry that the page sent under ``client_id``, if it arrived before."""
        row = await self.session.scalar(
            select(WebEntry).where(WebEntry.user_id == citizen_id, WebEntry.client_id == client_id)
        )
        return _entry(row) if row is not None else None

    async def add(self, citizen_id: int, entries: Sequence[NewEntry], now: datetime) -> list[ChatEntry]:
        """Append after the citizen's last entry, numbering on from it without gaps."""
        # Writers for one citizen queue on the citizen's row (PostgreSQL; SQLite has one writer anyway);
        # the unique (user_id, seq) is the backstop that turns any other interleaving into a retry.
        await self.session.execute(select(User.id).where(User.id == citizen_id).with_for_update())
        start = await self.last_seq(citizen_id)
        rows = [
            WebEntry(
                user_id=citizen_id,
                seq=start + offset,
                role=new.role,
                text=new.text,
                kind=new.kind[:30],
                buttons=new.buttons,
                document=new.document,
                client_id=new.client_id,
                created_at=now,
            )
            for offset, new in enumerate(entries, start=1)
        ]
        self.session.add_all(rows)
        await self.session.flush()
        return [_entry(row) for row in rows]


async def append(
    sessions: async_sessionmaker[AsyncSession],
    identity: str,
    entries: Sequence[NewEntry],
    *,
    now: datetime,
    since: int | None = None,
) -> Appended:
    """Store entries for a web citizen (created on first contact), retrying when numbers collide.

    ``since``: the number of the citizen's message, stored when it was claimed; the entries from it on are
    returned, with any that came in between (a department's notice), so that a page misses none.
    """
    client_id = next((e.client_id for e in entries if e.client_id), None)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with sessions.begin() as session:
                citizen = await CitizenRepository(session).get_or_create(CHANNEL, identity, now=now)
                chat = WebChatRepository(session)
                stored = await chat.add(citizen.id, entries, now)
                if since is not None:
                    stored = await chat.after(citizen.id, since - 1)
                return Appended(stored, citizen.language)
        except IntegrityError:
            log.info("web chat append collided (attempt %d)", attempt)
            earlier = await since_sent(sessions, identity, client_id) if client_id else None
            if earlier is not None:
                return earlier
    raise RuntimeError(f"could not append to a web chat after {ATTEMPTS} attempts")


async def claim(
    sessions: async_sessionmaker[AsyncSession], identity: str, sent: NewEntry, *, now: datetime
) -> Appended:
    """Store the citizen's message before it is handled; if its client id was stored before, that instead.

    Processes sharing a database (PostgreSQL) each keep their own turns apart, not each other's: a message
    the page sends again, reaching another process while the first handles it, is told apart here, by the
    unique client id, and handled once. The entries returned for a message sent before (``duplicate``) may
    lack its replies still; the page gets them as news.
    """
    return await append(sessions, identity, [sent], now=now)


async def withdraw(sessions: async_sessionmaker[AsyncSession], identity: str, seq: int) -> None:
    """Take back a claimed message the dialogue refused (the flood limit): as refused, it was never said."""
    async with sessions.begin() as session:
        chat = WebChatRepository(session)
        citizen = await chat.citizen(identity)
        if citizen is not None:
            await session.execute(delete(WebEntry).where(WebEntry.user_id == citizen[0], WebEntry.seq == seq))


async def since_sent(
    sessions: async_sessionmaker[AsyncSession], identity: str, client_id: str
) -> Appended | None:
    """The entries from a message sent before under ``client_id`` onwards; None if it never arrived."""
    async with sessions() as session:
        chat = WebChatRepository(session)
        citizen = await chat.citizen(identity)
        if citizen is None:
            return None
        sent = await chat.sent(citizen[0], client_id)
        if sent is None:
            return None
        return Appended(await chat.after(citizen[0], sent.seq - 1), citizen[1], duplicate=True)


def _entry(row: WebEntry) -> ChatEntry:
    return ChatEntry(
        seq=row.seq,
        role=row.role,
        text=row.text,
        kind=row.kind,
        buttons=list(row.buttons or []),
        document=dict(row.document) if row.document else None,
        client_id=row.client_id,
        created_at=row.created_at,
    )
