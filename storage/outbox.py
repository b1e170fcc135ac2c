"""The outbox: events for departments, written with the change they describe, delivered at least once.

Dispatchers claim due events with one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`` statement
(on SQLite, where there is one writer at a time, the same statement without the lock clause) and hold them
under a lease: a dispatcher that dies mid-delivery loses its claim when the lease runs out, and the next
claim records the lost attempt as ``interrupted``. Events of one case to one department go out in order:
an event is not claimed while an earlier one of its stream is pending or dead.
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    bindparam,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import db
from storage.models import Base, Department
from storage.numbers import whole_number

ID = BigInteger().with_variant(Integer(), "sqlite")
"""Big on PostgreSQL; SQLite only auto-increments an INTEGER primary key."""
ERROR_LENGTH = 500


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class DeliveryInFlight(Exception):
    """The event is being delivered now (a running lease): queued again, it would go out twice at once."""


class Outcome(enum.StrEnum):
    """What one attempt came to."""

    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    FAILED = "failed"
    GONE = "gone"
    """The endpoint answered 410 Gone: it is disabled, the event waits."""
    INTERRUPTED = "interrupted"
    """The dispatcher stopped (or died) before it could record the result."""


class OutboxEvent(Base):
    """An event for a department's endpoint, with its delivery state."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_due", "status", "next_attempt_at"),
        Index("ix_outbox_events_stream", "case_id", "department", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    """The ``webhook-id`` header: the same on every attempt, so receivers can drop duplicates."""
    type: Mapped[str] = mapped_column(String(50))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(50), index=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts ever begun (numbers the attempt records)."""
    tries: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts begun since the event was queued or replayed (drives the retry schedule)."""
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    """When it was delivered or dead-lettered."""


class DeliveryAttempt(Base):
    """One attempt at delivering an event: who tried, when, and what came of it."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (UniqueConstraint("event_id", "number"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    dispatcher: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(12))
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))


async def plan_afresh(session: AsyncSession) -> None:
    """Plan this transaction's claim with today's numbers, not a plan cached when the table was empty.

    A connection keeps prepared statements; PostgreSQL may settle on a generic plan made when the outbox
    was empty, whose anti-join then scans the whole table per candidate once a backlog builds up.
    """
    if db.shared(session):
        await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def new_webhook_id() -> str:
    """A unique message id for the ``webhook-id`` header."""
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Delivery:
    """A claimed event, with what is needed to deliver it."""

    id: int
    webhook_id: str
    type: str
    case_id: int
    department: str
    payload: dict[str, Any]
    attempt: int
    tries: int
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class AttemptResult:
    """What one delivery attempt came to, and what happens to the event next."""

    delivery: Delivery
    outcome: Outcome
    started_at: datetime
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    """When to try again after a failure; None after a failure means dead-letter."""


@dataclass(frozen=True)
class EventSummary:
    """An outbox event as staff list it."""

    id: int
    webhook_id: str
    type: str
    ticket: str | None
    department: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class AttemptRecord:
    number: int
    dispatcher: str
    started_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: int | None
    error: str | None


_cases = sa.table("cases", sa.column("id", Integer), sa.column("ticket", String))


class OutboxRepository:
    """The outbox within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self, type_: str, case_id: int, department: str, payload: dict[str, Any], now: datetime
    ) -> str:
        """Queue an event in the caller's transaction; returns its webhook id (also in ``payload["id"]``)."""
        webhook_id = str(payload.get("id") or new_webhook_id())
        self.session.add(
            OutboxEvent(
                webhook_id=webhook_id,
                type=type_,
                case_id=case_id,
                department=department,
                payload=payload,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                tries=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        await self.session.flush()
        return webhook_id

    async def claim(
        self, dispatcher: str, now: datetime, *, limit: int, lease: timedelta, leave_out: Sequence[str] = ()
    ) -> list[Delivery]:
        """Claim up to ``limit`` due events whose endpoint is usable, oldest first, one per stream.

        ``leave_out``: departments whose events this claim must not take (the dispatcher's share of them
        is in flight)."""
        await plan_afresh(self.session)
        dialect = self.session.get_bind().dialect.name
        params: dict[str, Any] = {"b_now": now, "b_limit": limit, "b_lease": now + lease,
                                  "b_claimer": dispatcher}
        if leave_out:
            params["b_leave_out"] = list(leave_out)
        statement = _claim_statement(dialect, leaving_out=bool(leave_out))
        rows = (await self.session.execute(statement, params)).all()
        if not rows:
            return []
        # Only an event tried before can have an attempt left in progress by a dispatcher that died.
        retried = [row.id for row in rows if row.attempts > 1]
        if retried:
            await self._mark_interrupted(retried)
        await self.session.execute(
            sa.insert(_attempts),
            [
                {
                    "event_id": row.id,
                    "number": row.attempts,
                    "dispatcher": dispatcher,
                    "started_at": now,
                    "outcome": Outcome.IN_PROGRESS.value,
                }
                for row in rows
            ],
        )
        deliveries = [
            Delivery(
                id=row.id,
                webhook_id=row.webhook_id,
                type=row.type,
                case_id=row.case_id,
                department=row.department,
                payload=dict(row.payload),
                attempt=row.attempts,
                tries=row.tries,
                url=row.url or "",
                secrets=tuple(row.secrets or ()),
            )
            for row in rows
        ]
        return sorted(deliveries, key=lambda d: d.id)

    async def record(self, dispatcher: str, results: Sequence[AttemptResult], now: datetime) -> None:
        """Write the results of attempts and move their events on (delivered, retry, dead)."""
        if not results:
            return
        await self.session.execute(_RECORD_ATTEMPTS, [_attempt_values(result) for result in results])
        await self.session.execute(_RECORD_EVENTS, [_event_values(r, dispatcher, now) for r in results])

    async def release(self, dispatcher: str, ids: Sequence[int]) -> None:
        """Give back claims that were never attempted (shutdown), so another dispatcher takes them now."""
        if ids:
            await self.session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_(list(ids)), OutboxEvent.claimed_by == dispatcher)
                .values(lease_until=None, claimed_by=None)
                .execution_options(synchronize_session=False)
            )

    async def events(
        self,
        *,
        status: str | None = None,
        department: str | None = None,
        limit: int = 100,
    ) -> list[EventSummary]:
        """Events newest first; ``status`` is pending, failed (pending after a failure), delivered or dead."""
        query = (
            select(OutboxEvent, _cases.c.ticket)
            .join(_cases, _cases.c.id == OutboxEvent.case_id, isouter=True)
            .order_by(OutboxEvent.id.desc())
            .limit(limit)
        )
        if status == "failed":
            query = query.where(
                OutboxEvent.status == DeliveryStatus.PENDING.value, OutboxEvent.last_error.is_not(None)
            )
        elif status is not None:
            query = query.where(OutboxEvent.status == status)
        if department is not None:
            query = query.where(OutboxEvent.department == department)
        return [_summary(event, ticket) for event, ticket in (await self.session.execute(query)).all()]

    async def event(self, key: str) -> EventSummary | None:
        """One event by its number or its webhook id."""
        number = whole_number(key)
        condition = OutboxEvent.id == number if number is not None else OutboxEvent.webhook_id == key
        row = (
            await self.session.execute(
                select(OutboxEvent, _cases.c.ticket)
                .join(_cases, _cases.c.id == OutboxEvent.case_id, isouter=True)
                .where(condition)
            )
        ).first()
        return _summary(row[0], row[1]) if row is not None else None

    async def attempts(self, event_id: int) -> list[AttemptRecord]:
        rows = await self.session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.event_id == event_id)
            .order_by(DeliveryAttempt.number)
        )
        return [
            AttemptRecord(
                r.number, r.dispatcher, r.started_at, r.outcome, r.status_code, r.latency_ms, r.error
            )
            for r in rows
        ]

    async def replay(self, key: str, now: datetime) -> EventSummary | None:
        """Queue an event again (same webhook id, a fresh retry schedule); None if there is no such event.

        DeliveryInFlight if a dispatcher holds it now: its lease and its result stay its own.
        """
        found = await self.event(key)
        if found is None:
            return None
        not_in_flight = or_(OutboxEvent.status != DeliveryStatus.PENDING.value, _unleased(now))
        if not await self._requeue(and_(OutboxEvent.id == found.id, not_in_flight), now):
            raise DeliveryInFlight(f"delivery {found.id} is being delivered right now; not queued again")
        return found

    async def replay_department(self, department: str, since: datetime, now: datetime) -> int:
        """Queue again every delivered or dead event of a department created since ``since``."""
        return await self._requeue(
            and_(
                OutboxEvent.department == department,
                OutboxEvent.created_at >= since,
                OutboxEvent.status != DeliveryStatus.PENDING.value,
            ),
            now,
        )

    async def start_afresh(self, department: str, now: datetime) -> int:
        """Give a department's waiting events a fresh retry schedule, due now (its endpoint is back)."""
        return await self._requeue(
            and_(
                OutboxEvent.department == department,
                OutboxEvent.status == DeliveryStatus.PENDING.value,
                _unleased(now),
            ),
            now,
        )

    async def counts(self) -> dict[str, int]:
        """How many events are in each status (pending, failed, delivered, dead)."""
        rows = await self.session.execute(
            select(OutboxEvent.status, OutboxEvent.last_error.is_not(None), sa.func.count()).group_by(
                OutboxEvent.status, OutboxEvent.last_error.is_not(None)
            )
        )
        counts = dict.fromkeys(("pending", "failed", "delivered", "dead"), 0)
        for status, failed, count in rows.all():
            key = "failed" if status == DeliveryStatus.PENDING.value and failed else status
            counts[key] = counts.get(key, 0) + int(count)
        return counts

    async def _requeue(self, condition: Any, now: datetime) -> int:
        result = await self.session.execute(
            update(OutboxEvent)
            .where(condition)
            .values(
                status=DeliveryStatus.PENDING.value,
                tries=0,
                next_attempt_at=now,
                finished_at=None,
                lease_until=None,
                claimed_by=None,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _mark_interrupted(self, ids: list[int]) -> None:
        await self.session.execute(
            update(DeliveryAttempt)
            .where(DeliveryAttempt.event_id.in_(ids), DeliveryAttempt.outcome == Outcome.IN_PROGRESS.value)
            .values(
                outcome=Outcome.INTERRUPTED.value,
                error="the dispatcher stopped before recording a result; its lease ran out",
            )
            .execution_options(synchronize_session=False)
        )


def _unleased(now: datetime) -> Any:
    """No dispatcher holds the event at ``now``: never claimed, or its lease has run out."""
    return or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now)


def leased_claim(
    table: sa.Table,
    dialect: str,
    *,
    due: Sequence[Any],
    in_order_by: Sequence[str],
    blocked_by: Sequence[str],
    returning: Sequence[Any],
    **values: Any,
) -> Any:
    """Claim a queue's oldest due rows under a lease: the UPDATE … RETURNING the outbox and the notices share.

    A row is due when ``due`` holds, its ``next_attempt_at`` has come and no lease is running, and no
    earlier row of its group (equal ``in_order_by`` columns) has a status in ``blocked_by``; PostgreSQL
    skips rows another claimer holds. Claimed rows get ``attempts`` + 1, the lease and the claimer, and
    ``values``. Parameters: ``b_now``, ``b_limit``, ``b_lease`` (the lease's end) and ``b_claimer``.
    """
    earlier = table.alias("earlier")
    now = bindparam("b_now", type_=table.c.next_attempt_at.type)
    query = (
        select(table.c.id)
        .where(
            *due,
            table.c.next_attempt_at <= now,
            or_(table.c.lease_until.is_(None), table.c.lease_until < now),
            ~exists().where(
                *(earlier.c[name] == table.c[name] for name in in_order_by),
                earlier.c.id < table.c.id,
                earlier.c.status.in_(blocked_by),
            ),
        )
        .order_by(table.c.id)
        .limit(bindparam("b_limit", type_=Integer))
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True, of=table)
    return (
        update(table)
        .where(table.c.id.in_(query))
        .values(
            attempts=table.c.attempts + 1,
            lease_until=bindparam("b_lease", type_=table.c.lease_until.type),
            claimed_by=bindparam("b_claimer"),
            **values,
        )
        .returning(*returning)
    )


@functools.cache
def _claim_statement(dialect: str, *, leaving_out: bool = False) -> Any:
    """The claim, built once per dialect (building and keying it cost more CPU than running it).

    Core tables, not the ORM's bulk UPDATE: nothing in the session is synchronised with it anyway.
    A case's events go to a department in order, and one that went dead holds back the rest. Events wait
    while their department is disabled or its endpoint is missing or disabled (410 Gone).
    ``leaving_out``: the form that skips the departments of the parameter ``b_leave_out`` (a list); the
    usual claim has no such condition to evaluate.
    """
    events, departments = _events, cast(sa.Table, Department.__table__)
    has_endpoint = exists().where(
        departments.c.code == events.c.department,
        departments.c.enabled.is_(True),
        departments.c.webhook_url.is_not(None),
        departments.c.webhook_enabled.is_(True),
    )
    due = [events.c.status == DeliveryStatus.PENDING.value, has_endpoint]
    if leaving_out:
        due.append(events.c.department.not_in(bindparam("b_leave_out", expanding=True)))
    return leased_claim(
        events,
        dialect,
        due=due,
        in_order_by=("case_id", "department"),
        blocked_by=(DeliveryStatus.PENDING.value, DeliveryStatus.DEAD.value),
        returning=[
            events.c.id,
            events.c.webhook_id,
            events.c.type,
            events.c.case_id,
            events.c.department,
            events.c.payload,
            events.c.attempts,
            events.c.tries,
            # The endpoint in the same round trip: read now, so a changed URL or secret applies.
            _endpoint(departments.c.webhook_url).label("url"),
            _endpoint(departments.c.secrets).label("secrets"),
        ],
        tries=events.c.tries + 1,
    )


def _endpoint(column: Any) -> Any:
    """``column`` of the claimed event's department, as a correlated subquery of the claim's RETURNING."""
    departments = cast(sa.Table, Department.__table__)
    found = select(column).where(departments.c.code == _events.c.department)
    return found.correlate(_events).scalar_subquery()



# Core tables: a list of parameters is one executemany (the ORM would want primary keys). Built once.
_attempts = cast(sa.Table, DeliveryAttempt.__table__)
_events = cast(sa.Table, OutboxEvent.__table__)
_RECORD_ATTEMPTS = (
    update(_attempts)
    .where(_attempts.c.event_id == bindparam("b_event"), _attempts.c.number == bindparam("b_number"))
    .values(
        outcome=bindparam("b_outcome"),
        status_code=bindparam("b_code"),
        latency_ms=bindparam("b_latency"),
        error=bindparam("b_error"),
    )
)
_RECORD_EVENTS = (
    update(_events)
    .where(_events.c.id == bindparam("b_id"), _events.c.claimed_by == bindparam("b_claimer"))
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next"),
        finished_at=bindparam("b_finished"),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        lease_until=None,
        claimed_by=None,
    )
)


def _attempt_values(result: AttemptResult) -> dict[str, Any]:
    return {
        "b_event": result.delivery.id,
        "b_number": result.delivery.attempt,
        "b_outcome": result.outcome.value,
        "b_code": result.status_code,
        "b_latency": result.latency_ms,
        "b_error": result.error[:ERROR_LENGTH] if result.error else None,
    }


def _event_values(result: AttemptResult, dispatcher: str, now: datetime) -> dict[str, Any]:
    if result.outcome is Outcome.DELIVERED:
        status, next_at, finished = DeliveryStatus.DELIVERED, now, now
    elif result.outcome is Outcome.GONE or result.retry_at is not None:
        status, next_at, finished = DeliveryStatus.PENDING, result.retry_at or now, None
    else:
        status, next_at, finished = DeliveryStatus.DEAD, now, now
    return {
        "b_id": result.delivery.id,
        "b_claimer": dispatcher,
        "b_status": status.value,
        "b_next": next_at,
        "b_finished": finished,
        "b_code": result.status_code,
        "b_error": result.error[:ERROR_LENGTH] if result.error else None,
    }


def _summary(event: OutboxEvent, ticket: str | None) -> EventSummary:
    return EventSummary(
        id=event.id,
        webhook_id=event.webhook_id,
        type=event.type,
        ticket=ticket,
        department=event.department,
        status=event.status,
        attempts=event.attempts,
        next_attempt_at=event.next_attempt_at,
        last_status_code=event.last_status_code,
        last_error=event.last_error,
        created_at=event.created_at,
        finished_at=event.finished_at,
    )
