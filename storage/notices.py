"""Messages for citizens (department replies, status changes, replies a channel could not send in their
turn), queued so a channel outage only delays them.

A notice is written in the same transaction as the change it tells of, then claimed by a notifier under a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and sent through the citizen's channel. Notices of one
chat go out in order. A failed send is retried with back-off for as long as it takes; only a channel that
says the chat can never be reached (the citizen blocked the bot) ends it as ``dead``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ForeignKey, Index, Integer, Row, String, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, User
from storage.outbox import ID, leased_claim, plan_afresh

ERROR_LENGTH = 500


class NoticeStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class CitizenNotice(Base):
    """A message waiting to be sent to a citizen's chat."""

    __tablename__ = "citizen_notices"
    __table_args__ = (
        Index("ix_citizen_notices_due", "status", "next_attempt_at"),
        Index("ix_citizen_notices_chat", "channel", "chat_id", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    thread_id: Mapped[str | None] = mapped_column(String(100))
    """The chat's thread (a forum topic) it goes into; None for the chat itself."""
    language: Mapped[str] = mapped_column(String(10))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    """``reply``, ``status``, ``transferred``, ``consent`` or ``kept``: how handlers/escalation.py renders it
    (``notice_replies``)."""
    data: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12), default=NoticeStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Notice:
    """A claimed notice, ready to render and send."""

    id: int
    citizen_id: int | None
    channel: str
    chat_id: str
    language: str
    case_id: int | None
    kind: str
    data: dict[str, Any]
    attempts: int
    created_at: datetime
    thread_id: str | None = None


def _notice(r: CitizenNotice | Row[Any]) -> Notice:
    return Notice(
        r.id,
        r.user_id,
        r.channel,
        r.chat_id,
        r.language,
        r.case_id,
        r.kind,
        dict(r.data),
        r.attempts,
        r.created_at,
        r.thread_id,
    )


class NoticeRepository:
    """Citizen notices within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        *,
        citizen_id: int | None,
        channel: str,
        chat_id: str,
        language: str,
        case_id: int | None,
        kind: str,
        data: dict[str, Any],
        now: datetime,
    ) -> int:
        """Queue a notice in the caller's transaction."""
        row = CitizenNotice(
            user_id=citizen_id,
            channel=channel,
            chat_id=chat_id,
            language=language,
            case_id=case_id,
            kind=kind,
            data=data,
            status=NoticeStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def enqueue_for_account(
        self,
        *,
        channel: str,
        account: str | None,
        chat_id: str,
        language: str,
        kind: str,
        data: dict[str, Any],
        now: datetime,
        thread_id: str | None = None,
    ) -> None:
        """Queue a notice for the citizen the channel knows as ``account`` (none when None or unknown), in
        the caller's transaction: one statement, the citizen found inside it. ``thread_id``: the chat's
        thread (a forum topic) it goes into."""
        known = (User.channel == channel, User.external_id == account)
        citizen = select(User.id).where(*known).scalar_subquery() if account is not None else None
        await self.session.execute(insert(CitizenNotice).values(
            user_id=citizen, channel=channel, chat_id=chat_id, thread_id=thread_id, language=language,
            case_id=None, kind=kind, data=data, status=NoticeStatus.PENDING.value, attempts=0,
            next_attempt_at=now, created_at=now))

    async def claim(
        self, channels: Sequence[str], notifier: str, now: datetime, *, limit: int, lease: timedelta
    ) -> list[Notice]:
        """Claim due notices of these channels, oldest first, one per chat at a time."""
        if not channels:
            return []
        await plan_afresh(self.session)
        dialect = self.session.get_bind().dialect.name
        params = {"b_channels": list(channels), "b_now": now, "b_limit": limit, "b_lease": now + lease,
                  "b_claimer": notifier}
        rows = (await self.session.execute(_claim_statement(dialect), params)).all()
        notices = [_notice(r) for r in rows]
        return sorted(notices, key=lambda n: n.id)

    async def sent(
        self, notice_id: int, notifier: str, now: datetime, *, data: dict[str, Any] | None = None
    ) -> bool:
        """Mark the notice sent; False when it is gone (erased with its citizen) or no longer this claim's.

        ``data`` replaces the notice's data (what is kept of it once sent).
        """
        values: dict[str, Any] = {} if data is None else {"data": data}
        return await self._finish(
            notice_id, notifier, status=NoticeStatus.SENT, sent_at=now, last_error=None, **values
        )

    async def failed(
        self,
        notice_id: int,
        notifier: str,
        error: str,
        *,
        retry_at: datetime | None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record a failed send: try again at ``retry_at``, or give up (None) when the chat is unreachable.

        ``data`` replaces the notice's data (the notifier keeps its progress there).
        """
        values: dict[str, Any] = {"last_error": error[:ERROR_LENGTH]}
        if data is not None:
            values["data"] = data
        if retry_at is None:
            await self._finish(notice_id, notifier, status=NoticeStatus.DEAD, **values)
        else:
            values["next_attempt_at"] = retry_at
            await self._finish(notice_id, notifier, status=NoticeStatus.PENDING, **values)

    async def pending(self, *, case_id: int | None = None) -> list[Notice]:
        """Notices not sent yet (oldest first), e.g. to see what a citizen is still to be told."""
        query = select(CitizenNotice).where(CitizenNotice.status == NoticeStatus.PENDING.value)
        if case_id is not None:
            query = query.where(CitizenNotice.case_id == case_id)
        rows = await self.session.scalars(query.order_by(CitizenNotice.id))
        return [_notice(r) for r in rows]

    async def _finish(self, notice_id: int, notifier: str, *, status: NoticeStatus, **values: Any) -> bool:
        result = await self.session.execute(
            update(CitizenNotice)
            .where(CitizenNotice.id == notice_id, CitizenNotice.claimed_by == notifier)
            .values(status=status.value, lease_until=None, claimed_by=None, **values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """The claim, built once per dialect: built per poll, it was half an idle bot's CPU.

    Due notices of the channels ``b_channels``, oldest first, one per chat at a time (a chat's later
    notices wait for its earlier ones); parameters as :func:`storage.outbox.leased_claim` has them.
    """
    notices = cast(Table, CitizenNotice.__table__)
    return leased_claim(
        notices,
        dialect,
        due=[notices.c.status == NoticeStatus.PENDING.value,
             notices.c.channel.in_(bindparam("b_channels", expanding=True))],
        in_order_by=("channel", "chat_id"),
        blocked_by=(NoticeStatus.PENDING.value,),
        returning=[notices.c[name] for name in _NOTICE_COLUMNS],
    )


_NOTICE_COLUMNS = ("id", "user_id", "channel", "chat_id", "language", "case_id", "kind", "data", "attempts",
                   "created_at", "thread_id")
