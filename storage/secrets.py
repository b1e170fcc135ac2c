"""Secrets a deployment makes for itself once and shares between all its processes through the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class StoredSecret(Base):
    """A generated secret (cookie signing key, webhook secret token), the same for every process."""

    __tablename__ = "stored_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


async def stored_secret(
    sessions: async_sessionmaker[AsyncSession], name: str, make: Callable[[], str]
) -> str:
    """The stored secret ``name``; the first process to ask makes it, the others read the same one."""
    async with sessions() as session:
        row = await session.get(StoredSecret, name)
        if row is not None:
            return row.value
    try:
        async with sessions.begin() as session:
            value = make()
            session.add(StoredSecret(name=name, value=value, created_at=utcnow()))
            return value
    except IntegrityError:
        async with sessions() as session:
            row = await session.get(StoredSecret, name)
            assert row is not None
            return row.value
