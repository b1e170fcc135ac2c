"""Citizens' consent, per department and field: asked when a field would be shared, remembered, revocable.

Answers may come out of order (an old prompt pressed after a newer decision, a prompt pressed twice): a
"yes" never overrides a decision made after its prompt was asked, a "no" always counts, and a prompt is
answered once. Every decision that changes something is written to the audit log.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.audit import AuditKind, AuditLog, citizen_ref
from storage.classification import FIELD_CLASSES, needs_consent
from storage.models import Base

CONSENTABLE = tuple(sorted(name for name, data_class in FIELD_CLASSES.items() if needs_consent(data_class)))
"""Fields that need consent; withdrawing consent for a department refuses them all."""


class Source(enum.StrEnum):
    ESCALATION = "escalation"
    """Implied by the citizen sending a request to the department (their text) or agreeing to be contacted."""
    PROMPT = "prompt"
    """The citizen answered a consent prompt."""
    PRIVACY = "privacy"
    """The citizen withdrew consent with /privacy."""


class Answered(enum.StrEnum):
    RECORDED = "recorded"
    PARTLY = "partly"
    """Some fields were decided later than the prompt was asked; those decisions stand."""
    STALE = "stale"
    """Every field was decided later than the prompt was asked; nothing changed."""
    ALREADY = "already"
    NOT_FOUND = "not_found"


class ConsentRecord(Base):
    """The citizen's latest decision on sharing one field with one department."""

    __tablename__ = "consents"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    department: Mapped[str] = mapped_column(String(50), primary_key=True)
    field: Mapped[str] = mapped_column(String(30), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[datetime]


class ConsentRequest(Base):
    """A consent prompt sent to a citizen; answered once."""

    __tablename__ = "consent_requests"
    __table_args__ = (Index("ix_consent_requests_user", "user_id", "department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(50))
    fields: Mapped[list[str]] = mapped_column(JSON)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(String(10))


@dataclass(frozen=True)
class Decision:
    granted: bool
    source: str
    decided_at: datetime


@dataclass(frozen=True)
class Prompt:
    """A pending consent prompt."""

    id: int
    citizen_id: int
    department: str
    fields: tuple[str, ...]
    case_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class AnswerResult:
    outcome: Answered
    department: str | None = None
    applied: tuple[str, ...] = ()
    granted: bool = False


class ConsentRepository:
    """Consent decisions and prompts within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def decisions(self, citizen_id: int, department: str) -> dict[str, Decision]:
        """The citizen's decisions for one department, by field."""
        rows = await self.session.scalars(
            select(ConsentRecord).where(
                ConsentRecord.user_id == citizen_id, ConsentRecord.department == department
            )
        )
        return {row.field: Decision(row.granted, row.source, row.decided_at) for row in rows}

    async def all_decisions(self, citizen_id: int) -> dict[str, dict[str, Decision]]:
        """Every decision of the citizen: department → field → decision."""
        rows = await self.session.scalars(select(ConsentRecord).where(ConsentRecord.user_id == citizen_id))
        found: dict[str, dict[str, Decision]] = {}
        for row in rows:
            found.setdefault(row.department, {})[row.field] = Decision(
                row.granted, row.source, row.decided_at
            )
        return found

    async def decide(
        self,
        citizen_id: int,
        department: str,
        fields: Iterable[str],
        *,
        granted: bool,
        source: Source,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> tuple[str, ...]:
        """Record a decision on these fields for the department; the audit log gets one record."""
        names = tuple(sorted(set(fields)))
        for name in names:
            row = await self.session.get(ConsentRecord, (citizen_id, department, name), with_for_update=True)
            if row is None:
                self.session.add(
                    ConsentRecord(
                        user_id=citizen_id,
                        department=department,
                        field=name,
                        granted=granted,
                        source=source.value,
                        decided_at=now,
                    )
                )
            else:
                row.granted, row.source, row.decided_at = granted, source.value, now
        if names:
            await AuditLog(self.session).append(
                AuditKind.CONSENT,
                now=now,
                citizen=citizen_ref(citizen_id),
                department=department,
                fields=names,
                basis={"granted": granted, "source": source.value},
                details=details or {},
            )
        return names

    async def withdraw(self, citizen_id: int, department: str, now: datetime) -> tuple[str, ...]:
        """Refuse every consentable field for the department from now on (overrides implied consent)."""
        return await self.decide(
            citizen_id, department, CONSENTABLE, granted=False, source=Source.PRIVACY, now=now
        )

    async def ask(
        self, citizen_id: int, department: str, fields: Iterable[str], case_id: int | None, now: datetime
    ) -> Prompt | None:
        """A new prompt for these fields, unless one for the department is still unanswered (None)."""
        pending = await self.session.scalar(
            select(ConsentRequest.id).where(
                ConsentRequest.user_id == citizen_id,
                ConsentRequest.department == department,
                ConsentRequest.answered_at.is_(None),
            )
        )
        names = sorted(set(fields))
        if pending is not None or not names:
            return None
        row = ConsentRequest(
            user_id=citizen_id, department=department, fields=names, case_id=case_id, created_at=now
        )
        self.session.add(row)
        await self.session.flush()
        return _prompt(row)

    async def prompt(self, request_id: int) -> Prompt | None:
        row = await self.session.get(ConsentRequest, request_id)
        return _prompt(row) if row is not None else None

    async def answer(self, request_id: int, citizen_id: int, *, granted: bool, now: datetime) -> AnswerResult:
        """The citizen's answer to a prompt, applied by the out-of-order rules of this module."""
        row = await self.session.get(ConsentRequest, request_id, with_for_update=True)
        if row is None or row.user_id != citizen_id:
            return AnswerResult(Answered.NOT_FOUND)
        if row.answered_at is not None:
            return AnswerResult(Answered.ALREADY, row.department, granted=row.answer == "granted")
        current = await self.decisions(citizen_id, row.department)
        # A "yes" to an old prompt must not undo a later "no" (or a later withdrawal in /privacy).
        applicable = [
            name
            for name in row.fields
            if not granted or name not in current or current[name].decided_at <= row.created_at
        ]
        row.answered_at, row.answer = now, "granted" if granted else "refused"
        applied = await self.decide(
            citizen_id,
            row.department,
            applicable,
            granted=granted,
            source=Source.PROMPT,
            now=now,
            details={"prompt": row.id, "case_id": row.case_id},
        )
        outcome = Answered.RECORDED if len(applied) == len(set(row.fields)) else Answered.PARTLY
        if not applied:
            outcome = Answered.STALE
        return AnswerResult(outcome, row.department, applied, granted)


def _prompt(row: ConsentRequest) -> Prompt:
    return Prompt(row.id, row.user_id, row.department, tuple(row.fields), row.case_id, row.created_at)
