"""Idempotency keys of the department API: a write repeated with the same key gets the first response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

MAX_KEY_LENGTH = 255
PENDING = 0
"""The status of a key whose first request is still being handled."""


class IdempotencyRecord(Base):
    """The response given to the first request with a key, per department."""

    __tablename__ = "idempotency_keys"

    department: Mapped[str] = mapped_column(String(50), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the request (method, ticket, operation, parsed body; in keys stored before, of method, path
    and body bytes): the same key with another request is refused."""
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: dict[str, Any]


class IdempotencyRepository:
    """Idempotency keys within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reserve(
        self, department: str, key: str, fingerprint: str, now: datetime
    ) -> StoredResponse | None:
        """Take the key for this request (None), or return what the key already holds.

        The insert comes first in the transaction: a concurrent request with the same key waits on it and
        then finds the first one's response instead of doing the work twice.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        taken = await self.session.scalar(
            insert(IdempotencyRecord)
            .values(
                department=department,
                key=key,
                fingerprint=fingerprint,
                status=PENDING,
                body={},
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
        if taken is not None:
            return None
        row = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.department == department, IdempotencyRecord.key == key
            )
        )
        assert row is not None
        return StoredResponse(row.fingerprint, row.status, dict(row.body))

    async def complete(self, department: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Store the response the reserved key will replay."""
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.department == department, IdempotencyRecord.key == key)
            .values(status=status, body=body)
            .execution_options(synchronize_session=False)
        )
