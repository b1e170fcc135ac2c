"""The audit log: append-only, each record carrying the hash of the one before, so edits and deletions show.

A record says what personal data went where and why: a disclosure (which fields of which citizen went to
which department, for which case, under which clearance and consent), a staff export, an erasure, a
consent decision, a clearance change. Citizens appear only as a pseudonymous reference (``C42``), never
with contact data. Appends take the single ``audit_head`` row's lock for the rest of their transaction,
so records get gapless ids and a linear chain even with many writers on PostgreSQL; a record exists only
if the change it describes was committed with it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    Row,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""
BATCH = 1000
_CITIZEN_REF = re.compile(r"^[Cc]?([0-9]{1,12})$")
ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditKind(enum.StrEnum):
    DISCLOSURE = "disclosure"
    """Fields of a citizen sent to a department (webhook delivery, API response)."""
    EXPORT = "export"
    """Staff took citizen-derived data out of govbot (a report, a file)."""
    ERASURE = "erasure"
    """A citizen's data was erased at their request (/forget)."""
    ACCESS = "access"
    """A citizen was sent everything held about them (/mydata)."""
    CONSENT = "consent"
    """A citizen granted or withdrew consent for a department."""
    CLEARANCE = "clearance"
    """A department's clearance was changed."""
    RETENTION = "retention"
    """Old conversations were purged by the retention job."""


class AuditUnavailable(Exception):
    """The log cannot be appended to (its head row is missing); nothing that needs a record may proceed."""


class AuditUnreadable(Exception):
    """A stored record holds a value govbot never writes (a time that is not one, JSON that is not JSON…)."""

    def __init__(self, record_id: int, columns: Sequence[str]) -> None:
        super().__init__(f"record {record_id} was altered (its {', '.join(columns)} cannot be read)")
        self.record_id = record_id


class AuditRecord(Base):
    """One record of the audit log; never updated or deleted (the database refuses it too)."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(20))
    citizen_ref: Mapped[str | None] = mapped_column(String(40), index=True)
    department: Mapped[str | None] = mapped_column(String(50), index=True)
    ticket: Mapped[str | None] = mapped_column(String(32))
    fields: Mapped[list[str]] = mapped_column(JSON)
    basis: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row naming the last record; appenders lock it, so the chain stays linear."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(ID)
    last_hash: Mapped[str] = mapped_column(String(64))


_HEAD = cast(Table, AuditHead.__table__)
# Built once: the dispatcher appends for every claim, and a statement built per call is compiled per call.
_TAKE_IDS = (
    update(_HEAD).where(_HEAD.c.id == 1)
    .values(last_id=_HEAD.c.last_id + bindparam("count"))
    .returning(_HEAD.c.last_id, _HEAD.c.last_hash)
)
_READ_HEAD = select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == 1)
_SET_HASH = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("last_hash"))
_RECORDS = cast(Table, AuditRecord.__table__)
_INSERT_RECORDS = insert(_RECORDS)
_JSON_SHAPES: dict[str, type] = {"fields": list, "basis": dict, "details": dict}
# Read as text and decoded here, not by the column types: a value edited by hand (the sqlite3 shell) that was
# not JSON, or not a time, stopped verify and show with a traceback instead of naming the record.
_STORED = select(*(
    sql_cast(column, Text).label(column.name) if column.name in _JSON_SHAPES
    else type_coerce(column, Text).label(column.name) if column.name == "at"
    else column
    for column in _RECORDS.c
))  # fmt: skip


@dataclass(frozen=True)
class AuditEntry:
    """A record as staff and citizens see it."""

    id: int
    at: datetime
    kind: str
    citizen_ref: str | None
    department: str | None
    ticket: str | None
    fields: tuple[str, ...]
    basis: dict[str, Any]
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "kind": self.kind,
            "citizen": self.citizen_ref,
            "department": self.department,
            "ticket": self.ticket,
            "fields": list(self.fields),
            "basis": self.basis,
            "details": self.details,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class NewRecord:
    """A record to append (see :meth:`AuditLog.append` for the fields)."""

    kind: AuditKind
    citizen: str | None = None
    department: str | None = None
    ticket: str | None = None
    fields: tuple[str, ...] = ()
    basis: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    """The outcome of walking the chain: ok, or the first record that is broken and how."""

    ok: bool
    checked: int
    broken_id: int | None = None
    problem: str | None = None
    head_hash: str = GENESIS
    rewritten: bool = False
    """The log does not hold what an earlier verify saw: the records before the broken one prove nothing."""


@dataclass
class _Walk:
    expected_id: int = 1
    prev_hash: str = GENESIS
    checked: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    earlier: tuple[int, str] | None = None
    rewritten: bool = False


def citizen_ref(citizen_id: int | None) -> str | None:
    """The pseudonymous reference of a citizen in the log and in payloads: ``C42``."""
    return f"C{citizen_id}" if citizen_id is not None else None


def parse_citizen_ref(text: str) -> str | None:
    """``C42``, ``c42`` or ``42`` → ``C42``; None for anything else."""
    found = _CITIZEN_REF.match(text.strip())
    return f"C{int(found.group(1))}" if found else None


def record_hash(values: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a record's values, ``prev_hash`` included."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """The audit log within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        kind: AuditKind,
        *,
        now: datetime,
        citizen: str | None = None,
        department: str | None = None,
        ticket: str | None = None,
        fields: Iterable[str] = (),
        basis: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add a record in the caller's transaction; the head stays locked until it commits."""
        record = NewRecord(kind, citizen, department, ticket, tuple(fields), basis or {}, details or {})
        [entry] = await self.append_many([record], now=now)
        return entry

    async def append_many(self, records: Sequence[NewRecord], *, now: datetime) -> list[AuditEntry]:
        """Add records in order, in the caller's transaction, with three statements whatever their number."""
        if not records:
            return []
        # The UPDATE comes first: it takes the lock (the write lock on SQLite) before anything is read.
        head = (await self.session.execute(_TAKE_IDS, {"count": len(records)})).one_or_none()
        if head is None:
            raise AuditUnavailable("the audit log has no head row; run `govbot db upgrade`")
        values, prev_hash = [], str(head.last_hash)
        for number, record in enumerate(records, start=int(head.last_id) - len(records) + 1):
            row = _row_values(number, record, now, prev_hash)
            values.append(row)
            prev_hash = row["hash"]
        # Core on the table, not the ORM's bulk path: one executemany for the batch, no per-row bookkeeping.
        await self.session.execute(_INSERT_RECORDS, values)
        await self.session.execute(_SET_HASH, {"last_hash": prev_hash})
        return [_entry_of(row) for row in values]

    async def search(
        self,
        *,
        citizen: str | None = None,
        department: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Records of a citizen and/or a department, newest first."""
        query = _STORED.order_by(_RECORDS.c.id.desc()).limit(limit)
        if citizen is not None:
            query = query.where(_RECORDS.c.citizen_ref == citizen)
        if department is not None:
            query = query.where(_RECORDS.c.department == department)
        if kind is not None:
            query = query.where(_RECORDS.c.kind == kind)
        return [_entry_of(_stored_values(row)) for row in await self.session.execute(query)]

    async def verify(self, *, batch: int = BATCH, earlier: tuple[int, str] | None = None) -> Verification:
        """Walk the chain from the first record: gapless ids, right hashes, each linked to the one before.

        ``earlier``: the record count and head hash an earlier verify gave (kept outside the database); the
        log must still hold that record with that hash. Only this catches a log rewritten with its head.
        """
        # The walk stops at the head read before it: the bot keeps appending while an auditor verifies, and a
        # record committed after the walk passed was reported as a deletion.
        head = (await self.session.execute(_READ_HEAD)).one_or_none()
        walk = _Walk(earlier=earlier if earlier is not None and earlier[0] > 0 else None)
        while not walk.problems:
            query = _STORED.order_by(_RECORDS.c.id).limit(batch)
            if walk.checked:  # the first batch has no lower bound: a record numbered below 1 is a forgery
                query = query.where(_RECORDS.c.id >= walk.expected_id)
            if head is not None:
                query = query.where(_RECORDS.c.id <= head.last_id)
            rows = (await self.session.execute(query)).all()
            for row in rows:
                if not _check(walk, row):
                    break
            if len(rows) < batch:
                break
        if not walk.problems:
            await self._check_head(walk, head)
        if not walk.problems and walk.earlier is not None and walk.earlier[0] >= walk.expected_id:
            seen = walk.earlier[0]
            cut = f"the log ends at record {walk.expected_id - 1}; an earlier verify saw {seen} (cut back)"
            walk.problems.append((walk.expected_id, cut))
            walk.rewritten = True
        if walk.problems:
            broken, problem = walk.problems[0]
            return Verification(False, walk.checked, broken, problem, walk.prev_hash, walk.rewritten)
        return Verification(True, walk.checked, head_hash=walk.prev_hash)

    async def _check_head(self, walk: _Walk, head: Row[Any] | None) -> None:
        last = walk.expected_id - 1
        if head is None:
            walk.problems.append((last, "the audit head row is missing"))
            return
        if head.last_id > last:
            missing = f"record {last + 1} is missing (deleted); the log has {head.last_id}"
            walk.problems.append((last + 1, missing))
            return
        # Records above the head are either appended since it was read (the head has moved past them by now)
        # or written outside the log. The highest id is read before the head, so an append committed between
        # the two reads is under the head it moved.
        highest = await self.session.scalar(select(func.max(AuditRecord.id)))
        now = (await self.session.execute(_READ_HEAD)).one_or_none()
        beyond = now.last_id if now is not None else head.last_id
        if highest is not None and highest > beyond:
            walk.problems.append((beyond + 1, f"record {beyond + 1} was added outside the log"))
        elif head.last_hash != walk.prev_hash:
            walk.problems.append((last, f"record {last} does not match the head of the log (altered)"))


def _check(walk: _Walk, row: Row[Any]) -> bool:
    if row.id < walk.expected_id:
        walk.problems.append((row.id, f"record {row.id} was added outside the log"))
        return False
    if row.id != walk.expected_id:
        walk.problems.append((walk.expected_id, f"record {walk.expected_id} is missing (deleted)"))
        return False
    if row.prev_hash != walk.prev_hash:
        walk.problems.append((row.id, f"record {row.id} does not follow record {row.id - 1} (chain broken)"))
        return False
    try:
        values = _stored_values(row)
    except AuditUnreadable as unreadable:
        walk.problems.append((row.id, str(unreadable)))
        return False
    if record_hash(_hashed(values)) != row.hash:
        walk.problems.append((row.id, f"record {row.id} was altered (its hash does not match)"))
        return False
    if walk.earlier is not None and walk.earlier[0] == row.id and walk.earlier[1] != row.hash:
        rewritten = f"record {row.id} is not the one an earlier verify saw (the log was rewritten up to it)"
        walk.problems.append((row.id, rewritten))
        walk.rewritten = True
        return False
    walk.expected_id, walk.prev_hash, walk.checked = row.id + 1, row.hash, walk.checked + 1
    return True


def _row_values(number: int, record: NewRecord, now: datetime, prev_hash: str) -> dict[str, Any]:
    """The column values of a new record, its hash included."""
    row: dict[str, Any] = {
        "id": number,
        "at": now.astimezone(UTC),
        "kind": AuditKind(record.kind).value,
        "citizen_ref": record.citizen,
        "department": record.department,
        "ticket": record.ticket,
        "fields": sorted(set(record.fields)),
        "basis": _plain(record.basis),
        "details": _plain(record.details),
        "prev_hash": prev_hash,
    }
    row["hash"] = record_hash(_hashed(row))
    return row


def _hashed(values: dict[str, Any]) -> dict[str, Any]:
    """What a record's hash is computed over: its values but the hash, the time as UTC ISO text."""
    return {name: value for name, value in values.items() if name != "hash"} | {"at": _iso(values["at"])}


def _stored_values(row: Row[Any]) -> dict[str, Any]:
    """A stored record's values as govbot wrote them; AuditUnreadable names any that are not."""
    values = dict(row._mapping)
    values["at"] = _moment(values["at"])
    unreadable = ["time"] if values["at"] is None else []
    for name, shape in _JSON_SHAPES.items():
        values[name] = _json(values[name])
        if not isinstance(values[name], shape) or not all(isinstance(key, str) for key in values[name]):
            unreadable.append(name)
    if unreadable:
        raise AuditUnreadable(row.id, unreadable)
    return values


def _moment(value: object) -> datetime | None:
    """A stored time (text on SQLite, as SQLAlchemy writes it; UTC when it names no zone)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json(text: object) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _entry_of(values: dict[str, Any]) -> AuditEntry:
    """The entry of a record's column values (as stored, or as just written)."""
    copies = {"fields": tuple(values["fields"] or ()), "basis": dict(values["basis"] or {}),
              "details": dict(values["details"] or {})}
    return AuditEntry(**values | copies)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """What the JSON column gives back, so the hash computed now is the hash verified later."""
    plain: dict[str, Any] = json.loads(json.dumps(value, default=str, ensure_ascii=False))
    return plain


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def record_export(
    sessions: async_sessionmaker[AsyncSession],
    what: str,
    *,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Write a staff export of citizen-derived data (a report of their texts, a file) to the audit log."""
    async with sessions.begin() as session:
        await AuditLog(session).append(AuditKind.EXPORT, now=now, details={"what": what, **(details or {})})
