"""The inbox: channel updates are stored before processing, so re-sends are dropped and none is lost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxUpdate, utcnow

MAX_ATTEMPTS = 3
"""Processing attempts after which a failing update is left alone (it stays in the table for staff)."""
ERROR_LENGTH = 500
CHANNEL_LENGTH = 20
UPDATE_ID_LENGTH = 64

_COLUMNS = InboxUpdate.__table__.c
_ACCEPT = text(
    "INSERT INTO inbox_updates (channel, update_id, payload, received_at, attempts) "
    "VALUES (:channel, :update_id, :payload, :received_at, 1) "
    "ON CONFLICT (channel, update_id) DO NOTHING RETURNING update_id"
).bindparams(bindparam("payload", type_=_COLUMNS.payload.type),
             bindparam("received_at", type_=_COLUMNS.received_at.type))
"""Written out because SQLAlchemy compiles its dialects' upserts afresh for every execution (they are not
cacheable), which cost more CPU than the insert itself; SQLite and PostgreSQL both accept this form."""


@dataclass(frozen=True)
class PendingUpdate:
    """An update that was stored but has not been processed successfully yet."""

    channel: str
    update_id: str
    payload: dict[str, Any]
    attempts: int
    received_at: datetime
    error: str | None


class InboxRepository:
    """Reads and writes the inbox within one unit of work (session).

    ``attempts`` counts the processing attempts begun: accepting an update begins the first, because the
    process that stores an update processes it at once; ``claim`` begins each later one.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def accept(self, channel: str, update_id: str, payload: dict[str, Any], *,
                     received_at: datetime | None = None) -> bool:
        """Store an update; False when it was stored before (a re-send), which is then left untouched."""
        _check_key(channel, update_id)
        values = {"channel": channel, "update_id": update_id, "payload": payload,
                  "received_at": received_at or utcnow()}
        return (await self.session.execute(_ACCEPT, values)).scalar_one_or_none() is not None

    async def claim(self, channel: str, update_id: str, attempts: int) -> bool:
        """Begin another attempt at a pending update seen with ``attempts``; False if someone else did."""
        statement = (
            update(InboxUpdate)
            .where(InboxUpdate.channel == channel, InboxUpdate.update_id == update_id,
                   InboxUpdate.attempts == attempts, InboxUpdate.processed_at.is_(None))
            .values(attempts=attempts + 1)
            .returning(InboxUpdate.update_id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def mark_processed(self, channel: str, update_id: str) -> None:
        """Record that the update was handled; it is never processed again."""
        await self.mark_processed_many(channel, [update_id])

    async def mark_processed_many(self, channel: str, update_ids: Sequence[str]) -> None:
        """Record that these updates were handled, in one statement.

        The raw update (the citizen's words, name and username) is dropped: only the id is needed
        from now on, to recognise a re-send.
        """
        if not update_ids:
            return
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.channel == channel, InboxUpdate.update_id.in_(update_ids))
            .values(processed_at=utcnow(), error=None, payload={})
        )

    async def mark_failed(self, channel: str, update_id: str, error: str) -> None:
        """Record why the latest attempt failed; the update stays pending until its attempts run out."""
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.channel == channel, InboxUpdate.update_id == update_id)
            .values(error=error[:ERROR_LENGTH])
        )

    async def pending(self, channel: str, *, max_attempts: int = MAX_ATTEMPTS,
                      limit: int = 1000) -> list[PendingUpdate]:
        """Unprocessed updates of a channel with attempts left, oldest first."""
        rows = await self.session.scalars(
            select(InboxUpdate)
            .where(InboxUpdate.channel == channel, InboxUpdate.processed_at.is_(None),
                   InboxUpdate.attempts < max_attempts)
            .order_by(InboxUpdate.received_at, InboxUpdate.update_id)
            .limit(limit)
        )
        return [
            PendingUpdate(row.channel, row.update_id, row.payload, row.attempts, row.received_at, row.error)
            for row in rows
        ]


def _check_key(channel: str, update_id: str) -> None:
    if not 0 < len(channel) <= CHANNEL_LENGTH:
        raise ValueError(f"channel must be 1 to {CHANNEL_LENGTH} characters")
    if not 0 < len(update_id) <= UPDATE_ID_LENGTH:
        raise ValueError(f"update_id must be 1 to {UPDATE_ID_LENGTH} characters")
