"""Everything held about one citizen, gathered for /mydata and erased for /forget, part by part.

Each feature contributes a :class:`Part`: how to collect its data about a citizen, how to erase it, and
(optionally) how to purge what is older than the retention period. The core parts are here; features
register theirs with :func:`register` (see storage/feature_data.py). Erasure keeps what aggregate figures
need (a question's decision, an answer's rating, a case's department and satisfaction) but nothing that
identifies or reaches the person: texts are emptied, contact data dropped, the channel id replaced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, inspect, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import AuditKind, AuditLog, citizen_ref
from storage.case_events import iso
from storage.consent import ConsentRecord, ConsentRequest
from storage.models import Answer, Conversation, InboxUpdate, Message, Question, User

TOMBSTONE = "erased-"
"""An erased citizen's channel id becomes ``erased-<id>``: the row stays for aggregate counts."""
MAX_ROWS = 10_000
"""Rows per part in a /mydata document; more than anyone writes to a government account."""

Collect = Callable[[AsyncSession, int], Awaitable[Any]]
Erase = Callable[[AsyncSession, int, datetime], Awaitable[int]]
Key = tuple[Any, ...]
"""A row's primary key."""


@dataclass(frozen=True)
class Sweep:
    """Rows of one table that a purge deletes, or rewrites with ``values`` (texts emptied): those that meet
    ``conditions``. A swept row no longer meets them, so a purge cut short is finished by the next one."""

    model: Any
    conditions: tuple[Any, ...]
    values: dict[str, Any] = field(default_factory=dict)

    async def count(self, session: AsyncSession) -> int:
        """How many rows the sweep would take."""
        return await count_rows(session, self.model, *self.conditions)

    async def batch(self, session: AsyncSession, after: Key | None, limit: int) -> tuple[int, Key | None]:
        """Sweep up to ``limit`` rows with keys above ``after``, in key order; how many it took, and the key
        to go on after (None: none is left)."""
        key = tuple_(*inspect(self.model).primary_key)
        found = select(*inspect(self.model).primary_key).where(*self.conditions)
        if after is not None:
            found = found.where(key > tuple_(*after))
        found = found.order_by(*key.clauses).limit(limit)
        keys = [tuple(row) for row in (await session.execute(found)).all()]
        if not keys:
            return 0, None
        # A range of the key, not a list: PostgreSQL reads a range from the index, a list of row values
        # row by row. The conditions again: a row may have changed since it was found (a citizen wrote).
        chosen = (key >= tuple_(*keys[0]), key <= tuple_(*keys[-1]), *self.conditions)
        statement = (update(self.model).where(*chosen).values(**self.values) if self.values
                     else delete(self.model).where(*chosen))
        result = await session.execute(statement.execution_options(synchronize_session=False))
        return _count(result), keys[-1] if len(keys) == limit else None


Purge = Callable[[datetime], Sequence[Sweep]]


@dataclass(frozen=True)
class Part:
    """One feature's data about citizens."""

    name: str
    collect: Collect
    erase: Erase | None = None
    """Erases the citizen's data of this part; returns how many items it erased."""
    purge: Purge | None = None
    """What to purge of what was written before the cut-off."""
    order: int = 50
    """Erasure runs in this order, low first: cases before messages, the profile last."""


_parts: dict[str, Part] = {}


def register(part: Part) -> Part:
    """Add a feature's part (a second registration of the same name replaces the first)."""
    _parts[part.name] = part
    return part


def parts() -> list[Part]:
    """Every registered part, in erasure order."""
    import storage.feature_data  # noqa: F401 - features register their parts on import

    return sorted(_parts.values(), key=lambda part: (part.order, part.name))


def is_erased(user: User | None) -> bool:
    """Whether a citizen erased their data (or their row is gone)."""
    return user is None or user.external_id.startswith(TOMBSTONE)


async def collect(session: AsyncSession, citizen_id: int, now: datetime) -> dict[str, Any]:
    """The /mydata document: every part's data about the citizen."""
    document: dict[str, Any] = {"generated_at": iso(now), "citizen": citizen_ref(citizen_id)}
    for part in parts():
        document[part.name] = await part.collect(session, citizen_id)
    return document


async def erase(session: AsyncSession, citizen_id: int, now: datetime) -> dict[str, int]:
    """Erase every part in order and write the ``erasure`` audit record; returns counts per part."""
    user = await session.get(User, citizen_id, with_for_update=True)
    if is_erased(user):
        return {}
    counts: dict[str, int] = {}
    for part in parts():
        if part.erase is not None:
            counts[part.name] = await part.erase(session, citizen_id, now)
    await AuditLog(session).append(
        AuditKind.ERASURE,
        now=now,
        citizen=citizen_ref(citizen_id),
        fields=[name for name, count in counts.items() if count],
        basis={"request": "citizen"},
        details={"erased": counts},
    )
    return counts


def sweeps(cutoff: datetime) -> dict[str, Sequence[Sweep]]:
    """What every part purges of its data older than ``cutoff``, by part, in erasure order."""
    return {part.name: part.purge(cutoff) for part in parts() if part.purge}


# The core parts.


async def _profile(session: AsyncSession, citizen_id: int) -> dict[str, Any] | None:
    user = await session.get(User, citizen_id)
    if user is None:
        return None
    return {
        "reference": citizen_ref(user.id),
        "channel": user.channel,
        "chat_id": user.external_id,
        "language": user.language,
        "first_seen": iso(user.created_at),
        "last_seen": iso(user.last_seen_at),
    }


async def _erase_profile(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    user = await session.get(User, citizen_id)
    if user is None:
        return 0
    user.external_id, user.language = f"{TOMBSTONE}{user.id}", None
    return 1


async def _conversation(session: AsyncSession, citizen_id: int) -> dict[str, Any] | None:
    row = await session.get(Conversation, citizen_id)
    return {"state": row.state, "data": row.data, "updated": iso(row.updated_at)} if row else None


async def _erase_conversation(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    result = await session.execute(delete(Conversation).where(Conversation.user_id == citizen_id))
    return _count(result)


def _purge_conversations(cutoff: datetime) -> list[Sweep]:
    return [Sweep(Conversation, (Conversation.updated_at < cutoff,))]


async def _messages(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Message.direction, Message.text, Message.created_at)
        .where(Message.user_id == citizen_id)
        .order_by(Message.id)
        .limit(MAX_ROWS)
    )
    return [{"direction": d, "text": t, "at": iso(at)} for d, t, at in rows.all()]


async def _erase_messages(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    return _count(await session.execute(delete(Message).where(Message.user_id == citizen_id)))


def _purge_messages(cutoff: datetime) -> list[Sweep]:
    return [Sweep(Message, (Message.created_at < cutoff,))]


async def _questions(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Question).where(Question.user_id == citizen_id).order_by(Question.id).limit(MAX_ROWS)
    )
    return [
        {
            "text": row.text,
            "language": row.language,
            "outcome": row.decision,
            "chosen_entry": row.chosen_entry_id or None,
            "at": iso(row.created_at),
        }
        for row in rows
    ]


async def _erase_questions(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    # The decision, language and candidates stay: they are what the answer rate is counted from.
    result = await session.execute(
        update(Question)
        .where(Question.user_id == citizen_id, Question.text != "")
        .values(text="", normalised="")
        .execution_options(synchronize_session=False)
    )
    return _count(result)


def _purge_questions(cutoff: datetime) -> list[Sweep]:
    emptied = {"text": "", "normalised": ""}
    return [Sweep(Question, (Question.created_at < cutoff, Question.text != ""), emptied)]


async def _answers(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Answer).where(Answer.user_id == citizen_id).order_by(Answer.id).limit(MAX_ROWS)
    )
    return [
        {"entry": row.entry_id, "how": row.how, "rating": row.rating, "at": iso(row.created_at)}
        for row in rows
    ]


async def _consents(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.user_id == citizen_id)
        .order_by(ConsentRecord.department, ConsentRecord.field)
    )
    return [
        {
            "department": row.department,
            "field": row.field,
            "granted": row.granted,
            "source": row.source,
            "decided": iso(row.decided_at),
        }
        for row in rows
    ]


async def _erase_consents(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    requests = await session.execute(delete(ConsentRequest).where(ConsentRequest.user_id == citizen_id))
    decisions = await session.execute(delete(ConsentRecord).where(ConsentRecord.user_id == citizen_id))
    return _count(requests) + _count(decisions)


async def _disclosures(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    entries = await AuditLog(session).search(citizen=citizen_ref(citizen_id), limit=MAX_ROWS)
    return [
        {
            "kind": entry.kind,
            "department": entry.department,
            "case": entry.ticket,
            "fields": list(entry.fields),
            "basis": entry.basis,
            "at": iso(entry.at),
        }
        for entry in reversed(entries)
        if entry.kind in (AuditKind.DISCLOSURE, AuditKind.CONSENT)
    ]


async def _channel_updates(session: AsyncSession, citizen_id: int) -> list[dict[str, Any]]:
    """The raw updates, each with why handling it failed, if it did: the error quotes what they sent."""
    user = await session.get(User, citizen_id)
    if user is None:
        return []
    return [
        {"update": row.payload, "received": iso(row.received_at), "error": row.error}
        for row in await _updates_of(session, user)
    ]


async def _erase_channel_updates(session: AsyncSession, citizen_id: int, now: datetime) -> int:
    user = await session.get(User, citizen_id)
    if user is None:
        return 0
    rows = await _updates_of(session, user)
    for row in rows:
        # Emptied and marked handled, as processing leaves an update, not deleted: the /forget press being
        # handled is one of them, and without its id a re-send of it would run again, as a new citizen.
        row.payload, row.error, row.processed_at = {}, None, now
    return len(rows)


def _purge_channel_updates(cutoff: datetime) -> list[Sweep]:
    # Handled or not: one whose attempts ran out keeps the raw update (names, words) and is never retried.
    return [Sweep(InboxUpdate, (InboxUpdate.received_at < cutoff,))]


async def _updates_of(session: AsyncSession, user: User) -> list[InboxUpdate]:
    """The raw channel updates still stored that came from this citizen's chat.

    Only unprocessed ones hold anything: processing empties an update's content (its id stays, so that a
    re-send is dropped), and the channel's processed history is not read for each export or erasure."""
    rows = await session.scalars(
        select(InboxUpdate).where(InboxUpdate.channel == user.channel, InboxUpdate.processed_at.is_(None))
    )
    return [row for row in rows if user.external_id in _sender_ids(row.payload)]


_SENDERS = ("from", "user", "sender_chat")
"""Where an update names its sender (``sender_chat``: an anonymous group admin, as the channel sees them)."""


def _sender_ids(payload: Any) -> set[str]:
    """Ids of whoever sent a channel update: the sender of what it carries (a message, a button press…).

    Only that level: a reply in a group also names the author of the message replied to, another citizen
    whose export must not carry it and whose erasure must not delete it.
    """
    found: set[str] = set()
    for item in payload.values() if isinstance(payload, dict) else ():
        for key in _SENDERS:
            sender = item.get(key) if isinstance(item, dict) else None
            if isinstance(sender, dict) and "id" in sender:
                found.add(str(sender["id"]))
    return found


async def count_rows(session: AsyncSession, model: Any, *conditions: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


register(Part("profile", _profile, _erase_profile, order=100))
register(Part("conversation", _conversation, _erase_conversation, _purge_conversations, order=90))
register(Part("messages", _messages, _erase_messages, _purge_messages, order=60))
register(Part("questions", _questions, _erase_questions, _purge_questions, order=60))
register(Part("answers", _answers))
register(Part("consents", _consents, _erase_consents, order=80))
register(Part("disclosures", _disclosures))
register(Part("channel_updates", _channel_updates, _erase_channel_updates, _purge_channel_updates, order=70))
