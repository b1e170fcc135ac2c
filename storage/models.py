"""SQLAlchemy 2 declarative models; every change to them comes with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[dict[str, Any]]: JSON,
        datetime: UTCDateTime,
    }


class KbEntry(Base):
    """The current revision of a knowledge-base entry."""

    __tablename__ = "kb_entries"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), index=True)
    department: Mapped[str] = mapped_column(String(50), index=True)
    data: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    """Position in the knowledge base's change sequence; running bots reload rows above what they saw."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbEntryRevision(Base):
    """Every version an entry has had, newest with the highest revision."""

    __tablename__ = "kb_entry_revisions"
    __table_args__ = (UniqueConstraint("entry_id", "revision"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("kb_entries.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(20))
    """created, updated or deleted."""
    data: Mapped[dict[str, Any] | None]
    source: Mapped[str] = mapped_column(String(500))
    """Where the change came from, e.g. ``import:knowledge/sample/tax.yaml``."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbMeta(Base):
    """Knowledge-base-wide data that is not an entry: categories and synonyms."""

    __tablename__ = "kb_meta"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    seq: Mapped[int] = mapped_column(BigInteger)


class KbSequence(Base):
    """A single row counting knowledge-base changes; writers lock it, so the sequence has no gaps reused."""

    __tablename__ = "kb_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Department(Base):
    """A government department that receives cases and answers citizens."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Escalation (migration 0004, storage/departments.py).
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """False after the endpoint answered 410 Gone; events wait until an operator re-enables it."""
    webhook_disabled_reason: Mapped[str | None] = mapped_column(String(500))
    secrets: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    """Signing secrets ``whsec_…``, newest first; every one signs each delivery (rotation)."""
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the department's API token; the token itself is shown once and never stored."""
    categories: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    ticket_prefix: Mapped[str | None] = mapped_column(String(8))
    # Governance (migration 0005, storage/classification.py).
    clearance: Mapped[str] = mapped_column(String(10), default="personal", server_default="personal")
    """The highest data class the department may receive: public, internal, personal or sensitive."""


class User(Base):
    """A citizen as one channel knows them."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(10))
    """The language the citizen chose; None until they choose."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    flood_window: Mapped[datetime | None]
    """When the citizen's current flood-limit window began (storage/flood.py); None before any message."""
    flood_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    flood_previous: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    flood_warned: Mapped[bool] = mapped_column(default=False, server_default=false())


class InboxUpdate(Base):
    """An update from a channel, stored before it is processed: re-sends are dropped, nothing is lost."""

    __tablename__ = "inbox_updates"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempted_at: Mapped[datetime | None]
    """When the latest processing attempt began, if not when the update was received (the first)."""
    error: Mapped[str | None] = mapped_column(String(500))


class Conversation(Base):
    """Where a citizen is in the dialogue (e.g. waiting for a comment), so it survives restarts."""

    __tablename__ = "conversations"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    """A message of a conversation, in or out; the excerpt a case carries comes from here."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    """``in`` from the citizen, ``out`` to them."""
    text: Mapped[str] = mapped_column(String(5000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Question(Base):
    """A free-text question and what the matcher made of it."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    text: Mapped[str] = mapped_column(String(5000))
    normalised: Mapped[str] = mapped_column(String(5000))
    language: Mapped[str] = mapped_column(String(10))
    decision: Mapped[str] = mapped_column(String(10), index=True)
    reason: Mapped[str] = mapped_column(String(100))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """Best candidates with their scores: ``[{"entry_id": …, "score": …}]``."""
    signals: Mapped[dict[str, Any]]
    chosen_entry_id: Mapped[str | None] = mapped_column(String(200))
    """The entry the citizen picked from "did you mean", if they did."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Answer(Base):
    """An entry shown to a citizen as an answer; ratings attach here."""

    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id", ondelete="SET NULL"))
    entry_id: Mapped[str] = mapped_column(String(200), index=True)
    how: Mapped[str] = mapped_column(String(10))
    """``matched`` (the matcher answered), ``picked`` (did you mean), ``browsed`` (menu), ``linked`` (a
    Telegram deep link, ``/start <entry id>``)."""
    score: Mapped[float | None]
    rating: Mapped[str | None] = mapped_column(String(12))
    """``helpful`` or ``not_helpful``; a second press changes it."""
    rated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
