"""The inbox: channel updates are stored before processing, so re-sends are dropped and none is lost."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, TextClause, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.masking import mask
from storage.models import InboxUpdate, utcnow

MAX_ATTEMPTS = 3
"""Processing attempts after which a failing update is left alone (it stays in the table for staff)."""
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
"""``attempted_at`` of an update whose attempt was given up (at shutdown): older than any lease."""
ERROR_LENGTH = 500
CHANNEL_LENGTH = 20
UPDATE_ID_LENGTH = 64

_TABLE = cast(Table, InboxUpdate.__table__)
_COLUMNS = _TABLE.c
MAX_ACCEPT_BATCH = 100
"""Most updates stored by one statement of ``accept_many`` (two bound values each)."""


# On the table, not the ORM entity (the ORM looked for the rows in the session on every batch), and built
# once: an expanding IN list is cached as one statement whatever the batch's size.
_MARK_PROCESSED = (
    update(_TABLE)
    .where(_COLUMNS.channel == bindparam("b_channel"),
           _COLUMNS.update_id.in_(bindparam("b_ids", expanding=True)))
    .values(processed_at=bindparam("b_now"), error=None, payload={})
)


@functools.cache
def _accept_many(rows: int) -> TextClause:
    """Storing ``rows`` updates in one statement, made once for each number of rows.

    Written out because SQLAlchemy compiles its dialects' upserts afresh for every execution (they are not
    cacheable), which cost more CPU than the insert itself; SQLite and PostgreSQL both accept this form.
    """
    values = ", ".join(f"(:channel, :update_id_{n}, :payload_{n}, :received_at, 1)" for n in range(rows))
    head = "INSERT INTO inbox_updates (channel, update_id, payload, received_at, attempts) VALUES "
    tail = " ON CONFLICT (channel, update_id) DO NOTHING RETURNING update_id"
    # Only numbered placeholders are put together here; every value is bound.
    return text(head + values + tail).bindparams(
        bindparam("received_at", type_=_COLUMNS.received_at.type),
        *(bindparam(f"payload_{n}", type_=_COLUMNS.payload.type) for n in range(rows)),
    )


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
        return update_id in await self.accept_many(channel, [(update_id, payload)], received_at=received_at)

    async def accept_many(self, channel: str, updates: Sequence[tuple[str, dict[str, Any]]], *,
                          received_at: datetime | None = None) -> set[str]:
        """Store several updates (distinct ids, at most MAX_ACCEPT_BATCH) in one statement; the ids new here.

        An update stored before (a re-send) is left untouched and its id is not in the result.
        """
        if not 0 < len(updates) <= MAX_ACCEPT_BATCH:
            raise ValueError(f"between 1 and {MAX_ACCEPT_BATCH} updates at once")
        values: dict[str, Any] = {"channel": channel, "received_at": received_at or utcnow()}
        for n, (update_id, payload) in enumerate(updates):
            _check_key(channel, update_id)
            values[f"update_id_{n}"], values[f"payload_{n}"] = update_id, payload
        if len(values) != 2 + 2 * len({update_id for update_id, _ in updates}):
            raise ValueError("an update id appears twice")
        return set((await self.session.execute(_accept_many(len(updates)), values)).scalars())

    async def claim(self, channel: str, update_id: str, attempts: int, *,
                    now: datetime | None = None) -> bool:
        """Begin another attempt at a pending update seen with ``attempts``; False if someone else did."""
        statement = (
            update(InboxUpdate)
            .where(InboxUpdate.channel == channel, InboxUpdate.update_id == update_id,
                   InboxUpdate.attempts == attempts, InboxUpdate.processed_at.is_(None))
            .values(attempts=attempts + 1, attempted_at=now or utcnow())
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
        values = {"b_channel": channel, "b_ids": list(update_ids), "b_now": utcnow()}
        await self.session.execute(_MARK_PROCESSED, values)

    async def release(self, channel: str, update_ids: Sequence[str]) -> None:
        """Give up the running attempts at these updates, so that any process may take them up now."""
        if not update_ids:
            return
        await self.session.execute(
            update(_TABLE)
            .where(_COLUMNS.channel == channel, _COLUMNS.update_id.in_(update_ids),
                   _COLUMNS.processed_at.is_(None))
            .values(attempted_at=RELEASED)
        )

    async def mark_failed(self, channel: str, update_id: str, error: str) -> None:
        """Record why the latest attempt failed; the update stays pending until its attempts run out.

        Masked as any stored text: an exception's message can quote what the citizen sent.
        """
        await self.session.execute(
            update(_TABLE)
            .where(_COLUMNS.channel == channel, _COLUMNS.update_id == update_id)
            .values(error=mask(error[: 2 * ERROR_LENGTH])[:ERROR_LENGTH])
        )

    async def pending(self, channel: str, *, max_attempts: int = MAX_ATTEMPTS, limit: int = 1000,
                      stale_before: datetime | None = None) -> list[PendingUpdate]:
        """Unprocessed updates of a channel with attempts left, oldest first.

        With ``stale_before``, only those whose latest attempt began before it: an attempt begun later
        may still be running in another process.
        """
        statement = (
            select(InboxUpdate)
            .where(InboxUpdate.channel == channel, InboxUpdate.processed_at.is_(None),
                   InboxUpdate.attempts < max_attempts)
            .order_by(InboxUpdate.received_at, InboxUpdate.update_id)
            .limit(limit)
        )
        if stale_before is not None:
            began = func.coalesce(InboxUpdate.attempted_at, InboxUpdate.received_at)
            statement = statement.where(began < stale_before)
        rows = await self.session.scalars(statement)
        return [
            PendingUpdate(row.channel, row.update_id, row.payload, row.attempts, row.received_at, row.error)
            for row in rows
        ]


def _check_key(channel: str, update_id: str) -> None:
    if not 0 < len(channel) <= CHANNEL_LENGTH:
        raise ValueError(f"channel must be 1 to {CHANNEL_LENGTH} characters")
    if not 0 < len(update_id) <= UPDATE_ID_LENGTH:
        raise ValueError(f"update_id must be 1 to {UPDATE_ID_LENGTH} characters")
