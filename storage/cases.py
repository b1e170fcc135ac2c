"""Cases: what a citizen asked a department, its ticket, its history, and the events and notices it causes.

Every change is one unit of work: the case row, its history, the outbox event for the department and the
notice for the citizen are written in the caller's transaction, so none exists without the others.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Index, Integer, Row, String, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import case_events
from storage.case_events import event_payload, excerpt_item, iso
from storage.citizens import for_storage
from storage.departments import DepartmentRepository
from storage.models import Base, Message
from storage.notices import NoticeRepository
from storage.outbox import OutboxRepository, new_webhook_id

EXCERPT_MESSAGES = 20
TICKET = re.compile(r"^[A-Z][A-Z0-9]{0,7}-\d{4}-\d{6,}$")


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.RESOLVED: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset(),
}
"""Which status a department may move a case to from each status; a closed case stays closed."""


class CaseError(Exception):
    """A change to a case that cannot be made; ``reason`` is a stable slug, the message says why."""

    reason = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CaseNotFound(CaseError):
    reason = "unknown-case"


class CaseClosed(CaseError):
    reason = "case-closed"


class InvalidStatus(CaseError):
    reason = "invalid-status"


class InvalidTransfer(CaseError):
    reason = "invalid-transfer"


class CaseRecord(Base):
    """A case as stored."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket: Mapped[str] = mapped_column(String(32), unique=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), index=True)
    description: Mapped[str] = mapped_column(String(5000))
    contact: Mapped[str | None] = mapped_column(String(500))
    contact_consent_at: Mapped[datetime | None]
    entry_id: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    question_id: Mapped[int | None] = mapped_column(Integer)
    excerpt: Mapped[list[dict[str, Any]]]
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
    """Indexed for the public figures' months and for retention, which both read cases by when they came."""
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class CaseChangeRecord(Base):
    """One thing that happened to a case: created, information added, reply, status, transfer, rating."""

    __tablename__ = "case_changes"
    __table_args__ = (Index("ix_case_changes_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(60))
    """``citizen`` or the department's code."""
    text: Mapped[str | None] = mapped_column(String(5000))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class TicketCounter(Base):
    """The last ticket number given per prefix and year; writers lock the row, so numbers are unique."""

    __tablename__ = "ticket_counters"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Case:
    """A case as the dialogue, the API and the payloads see it."""

    id: int
    ticket: str
    department: str
    citizen_id: int | None
    channel: str
    chat_id: str
    language: str
    status: CaseStatus
    description: str
    contact: str | None
    contact_consent_at: datetime | None
    entry_id: str | None
    category: str | None
    question_id: int | None
    excerpt: tuple[dict[str, Any], ...]
    satisfaction: int | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Not closed: the citizen may still add to it and the department may still act on it."""
        return self.status is not CaseStatus.CLOSED

    def for_department(self) -> dict[str, Any]:
        """The case as JSON for its department (API and webhooks alike)."""
        return {
            "ticket": self.ticket,
            "status": self.status.value,
            "department": self.department,
            "language": self.language,
            "channel": self.channel,
            "description": self.description,
            "entry_id": self.entry_id,
            "category": self.category,
            "satisfaction": self.satisfaction,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "closed_at": iso(self.closed_at),
        }


@dataclass(frozen=True)
class CaseChange:
    id: int
    kind: str
    actor: str
    text: str | None
    data: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "actor": self.actor,
            "text": self.text,
            "data": self.data,
            "at": iso(self.created_at),
        }


@dataclass(frozen=True)
class NewCase:
    """What the escalation dialogue collected."""

    citizen_id: int
    channel: str
    chat_id: str
    language: str
    department: str
    description: str
    contact: str | None = None
    contact_consent_at: datetime | None = None
    entry_id: str | None = None
    category: str | None = None
    question_id: int | None = None
    excerpt_until: int | None = None
    """The id of the last message that belongs in the excerpt (None: the latest)."""


def normalise_ticket(text: str) -> str | None:
    """``tr-2026-000123`` → ``TR-2026-000123``; None when it is not a ticket number.

    Tickets are copied from messages and typed with Chinese input methods: full-width forms
    (``ＴＡ－２０２６``), other dashes, and the sentence's punctuation around the number are accepted.
    """
    wide = unicodedata.normalize("NFKC", text)
    folded = "".join("-" if unicodedata.category(ch) == "Pd" else ch for ch in wide)
    ticket = folded.strip(_AROUND_TICKET).upper()
    return ticket if TICKET.match(ticket) else None


_AROUND_TICKET = " \t\n\r.,;:!?'\"()[]<>{}«»“”‘’「」『』【】《》〈〉。，、；：！？…"
"""What may surround a copied ticket (after NFKC): spaces, quotes, brackets, a sentence's punctuation."""


class CaseRepository:
    """Cases within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.departments = DepartmentRepository(session)
        self.outbox = OutboxRepository(session)

    async def open_case(self, new: NewCase, now: datetime, *, zone: tzinfo = UTC) -> Case:
        """Create the case with its ticket, history and ``case.created`` event.

        The ticket's year is the year in ``zone``, the service desk's: numbering restarts at its New Year.
        """
        department = await self.departments.get(new.department)
        if department is None:
            raise InvalidTransfer(f"no department {new.department!r}")
        row = CaseRecord(
            ticket=await self._next_ticket(department.ticket_prefix, now.astimezone(zone).year),
            department=department.code,
            user_id=new.citizen_id,
            channel=new.channel,
            chat_id=new.chat_id,
            language=new.language,
            status=CaseStatus.OPEN.value,
            description=for_storage(new.description),
            contact=new.contact[:500] if new.contact and new.contact_consent_at else None,
            contact_consent_at=new.contact_consent_at if new.contact else None,
            entry_id=new.entry_id,
            category=new.category,
            question_id=new.question_id,
            excerpt=await self._excerpt(new.citizen_id, new.excerpt_until),
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        await self._change(row.id, "created", "citizen", None, {"department": department.code}, now)
        case = case_of(row)
        await self._event(case_events.CASE_CREATED, case, department.code, now)
        return case

    async def get(self, case_id: int, *, lock: bool = False) -> Case | None:
        row = await self._locked(case_id) if lock else await self.session.get(CaseRecord, case_id)
        return case_of(row) if row is not None else None

    async def by_ticket(self, ticket: str, *, lock: bool = False) -> Case | None:
        query = select(CaseRecord).where(CaseRecord.ticket == ticket)
        if lock:
            await self._sqlite_write_lock(CaseRecord.ticket == ticket)
        row = await self.session.scalar(query.with_for_update() if lock else query)
        return case_of(row) if row is not None else None

    async def of_citizen(self, citizen_id: int, *, limit: int = 20) -> list[Case]:
        """The citizen's cases, newest first."""
        rows = await self.session.scalars(
            select(CaseRecord)
            .where(CaseRecord.user_id == citizen_id)
            .order_by(CaseRecord.id.desc())
            .limit(limit)
        )
        return [case_of(row) for row in rows]

    async def of_department(
        self, department: str, *, status: CaseStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Case]:
        """A department's cases, newest first."""
        query = select(CaseRecord).where(CaseRecord.department == department)
        if status is not None:
            query = query.where(CaseRecord.status == status.value)
        rows = await self.session.scalars(query.order_by(CaseRecord.id.desc()).limit(limit).offset(offset))
        return [case_of(row) for row in rows]

    async def history(self, case_id: int) -> list[CaseChange]:
        rows = await self.session.scalars(
            select(CaseChangeRecord).where(CaseChangeRecord.case_id == case_id).order_by(CaseChangeRecord.id)
        )
        return [CaseChange(r.id, r.kind, r.actor, r.text, dict(r.data), r.created_at) for r in rows]

    async def last_message_id(self, citizen_id: int) -> int | None:
        """The newest message of the citizen's conversation, to end a case's excerpt at."""
        found = await self.session.scalar(
            select(Message.id).where(Message.user_id == citizen_id).order_by(Message.id.desc()).limit(1)
        )
        return int(found) if found is not None else None

    async def add_information(self, case_id: int, citizen_id: int, text: str, now: datetime) -> Case:
        """The citizen adds to their open case; the department gets ``case.updated``."""
        row = await self._citizens_open_case(case_id, citizen_id)
        text = for_storage(text)
        row.updated_at = now
        await self._change(row.id, "information", "citizen", text, {}, now)
        case = case_of(row)
        await self._event(
            case_events.CASE_UPDATED, case, case.department, now, {"update": {"text": text, "at": iso(now)}}
        )
        return case

    async def withdraw(self, case_id: int, citizen_id: int, now: datetime) -> Case:
        """The citizen withdraws their case; the department gets ``case.closed``."""
        row = await self._citizens_open_case(case_id, citizen_id)
        row.status, row.updated_at, row.closed_at = CaseStatus.CLOSED.value, now, now
        await self._change(row.id, "withdrawn", "citizen", None, {}, now)
        case = case_of(row)
        await self._event(case_events.CASE_CLOSED, case, case.department, now, {"reason": "withdrawn"})
        return case

    async def reply(self, case_id: int, department: str, text: str, now: datetime) -> CaseChange:
        """A department's reply, queued for the citizen's chat."""
        row = await self._departments_case(case_id, department)
        if row.status == CaseStatus.CLOSED.value:
            raise CaseClosed(f"case {row.ticket} is closed; a closed case takes no replies")
        row.updated_at = now
        change = await self._change(row.id, "reply", department, text, {}, now)
        await self._notify(row, "reply", {"text": text}, now)
        return change

    async def set_status(
        self, case_id: int, department: str, status: CaseStatus, note: str | None, now: datetime
    ) -> Case:
        """Move the case on (see TRANSITIONS); the citizen is told, and asked to rate once it is done."""
        row = await self._departments_case(case_id, department)
        current = CaseStatus(row.status)
        if current is CaseStatus.CLOSED:
            raise CaseClosed(f"case {row.ticket} is closed; its status cannot change")
        if status not in TRANSITIONS[current]:
            raise InvalidStatus(
                f"case {row.ticket} is {current.value}; it can move to "
                + ", ".join(sorted(s.value for s in TRANSITIONS[current]))
            )
        row.status, row.updated_at = status.value, now
        row.closed_at = now if status is CaseStatus.CLOSED else None
        await self._change(
            row.id, "status", department, note, {"from": current.value, "to": status.value}, now
        )
        await self._notify(row, "status", {"status": status.value, "note": note}, now)
        return case_of(row)

    async def transfer(self, case_id: int, department: str, to: str, note: str | None, now: datetime) -> Case:
        """Hand the case to another department, which gets ``case.transferred``."""
        row = await self._departments_case(case_id, department)
        if row.status == CaseStatus.CLOSED.value:
            raise CaseClosed(f"case {row.ticket} is closed; it cannot be transferred")
        if to == department:
            raise InvalidTransfer(f"case {row.ticket} is already with {department}")
        target = await self.departments.get(to)
        if target is None:
            raise InvalidTransfer(f"there is no department {to[:60]!r}")
        if not target.enabled:
            raise InvalidTransfer(f"department {to} is disabled and takes no cases")
        row.department, row.updated_at = target.code, now
        await self._change(
            row.id, "transferred", department, note, {"from": department, "to": target.code}, now
        )
        case = case_of(row)
        transfer = {"from": department, "note": note}
        await self._event(case_events.CASE_TRANSFERRED, case, target.code, now, {"transfer": transfer})
        await self._notify(row, "transferred", {}, now)
        return case

    async def rate(self, case_id: int, citizen_id: int, score: int, now: datetime) -> Case | None:
        """The citizen's satisfaction (1–5) with a resolved or closed case; None if not theirs or not done."""
        row = await self._locked(case_id)
        done = {CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value}
        if row is None or row.user_id != citizen_id or row.status not in done or not 1 <= score <= 5:
            return None
        row.satisfaction, row.rated_at = score, now
        await self._change(row.id, "rated", "citizen", None, {"satisfaction": score}, now)
        return case_of(row)

    async def _citizens_open_case(self, case_id: int, citizen_id: int) -> CaseRecord:
        row = await self._locked(case_id)
        if row is None or row.user_id != citizen_id:
            raise CaseNotFound("no such case")
        if row.status == CaseStatus.CLOSED.value:
            raise CaseClosed(f"case {row.ticket} is closed")
        return row

    async def _departments_case(self, case_id: int, department: str) -> CaseRecord:
        row = await self._locked(case_id)
        if row is None or row.department != department:
            raise CaseNotFound("no such case")
        return row

    async def _locked(self, case_id: int) -> CaseRecord | None:
        """The case's row, locked until commit: a change is decided on the case as it is, not as it was."""
        await self._sqlite_write_lock(CaseRecord.id == case_id)
        return await self.session.get(CaseRecord, case_id, with_for_update=True)

    async def _sqlite_write_lock(self, where: ColumnElement[bool]) -> None:
        """Take SQLite's write lock before the case is read, with an UPDATE that changes nothing.

        SQLite ignores FOR UPDATE, and its driver begins the transaction only at the first write: requests
        read the case side by side and each acted on it (a case transferred 4 times, a closed one reopened).
        """
        if self.session.get_bind().dialect.name == "sqlite":
            await self.session.execute(
                update(CaseRecord)
                .where(where)
                .values(status=CaseRecord.status)
                .execution_options(synchronize_session=False)
            )

    async def _next_ticket(self, prefix: str, year: int) -> str:
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await self.session.execute(
            insert(TicketCounter).values(prefix=prefix, year=year, value=0).on_conflict_do_nothing()
        )
        # The UPDATE locks the counter row until commit: concurrent cases of one prefix queue up here.
        value = await self.session.scalar(
            update(TicketCounter)
            .where(TicketCounter.prefix == prefix, TicketCounter.year == year)
            .values(value=TicketCounter.value + 1)
            .returning(TicketCounter.value)
        )
        return f"{prefix}-{year:04d}-{int(value or 0):06d}"

    async def _excerpt(self, citizen_id: int, until: int | None) -> list[dict[str, Any]]:
        query = select(Message.direction, Message.text, Message.created_at).where(
            Message.user_id == citizen_id
        )
        if until is not None:
            query = query.where(Message.id <= until)
        rows = (await self.session.execute(query.order_by(Message.id.desc()).limit(EXCERPT_MESSAGES))).all()
        return [excerpt_item(d, t, at) for d, t, at in reversed(rows)]

    async def _change(
        self, case_id: int, kind: str, actor: str, text: str | None, data: dict[str, Any], now: datetime
    ) -> CaseChange:
        row = CaseChangeRecord(case_id=case_id, kind=kind, actor=actor, text=text, data=data, created_at=now)
        self.session.add(row)
        await self.session.flush()
        return CaseChange(row.id, kind, actor, text, data, now)

    async def _event(
        self, event_type: str, case: Case, department: str, now: datetime, extra: dict[str, Any] | None = None
    ) -> None:
        webhook_id = new_webhook_id()
        payload = event_payload(event_type, webhook_id, now, case, extra)
        await self.outbox.enqueue(event_type, case.id, department, payload, now)

    async def _notify(self, row: CaseRecord, kind: str, data: dict[str, Any], now: datetime) -> None:
        await notify_citizen(self.session, case_of(row), kind, data, now)


async def notify_citizen(
    session: AsyncSession,
    case: Case,
    kind: str,
    data: dict[str, Any],
    now: datetime,
    *,
    department: str | None = None,
) -> int:
    """Queue a notice about ``case`` for the citizen's chat, naming ``department`` (the case's by default)."""
    code = department or case.department
    target = await DepartmentRepository(session).get(code)
    return await NoticeRepository(session).enqueue(
        citizen_id=case.citizen_id,
        channel=case.channel,
        chat_id=case.chat_id,
        language=case.language,
        case_id=case.id,
        kind=kind,
        data={
            "ticket": case.ticket,
            "case_id": case.id,
            "department": code,
            "department_name": dict(target.name) if target is not None else {},
        }
        | data,
        now=now,
    )


def case_of(row: CaseRecord | Row[Any]) -> Case:
    """The case of a stored row: an ORM object, or a result row of the ``cases`` table's columns."""
    return Case(
        id=row.id,
        ticket=row.ticket,
        department=row.department,
        citizen_id=row.user_id,
        channel=row.channel,
        chat_id=row.chat_id,
        language=row.language,
        status=CaseStatus(row.status),
        description=row.description,
        contact=row.contact,
        contact_consent_at=row.contact_consent_at,
        entry_id=row.entry_id,
        category=row.category,
        question_id=row.question_id,
        excerpt=tuple(row.excerpt or ()),
        satisfaction=row.satisfaction,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
    )
