"""Citizens, where they are in the dialogue, and what they said and were told."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Row, String, Table, TextClause, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from storage import db
from storage.flood import FloodCount, Verdict, count_message
from storage.masking import mask
from storage.models import Conversation, Message, User, utcnow

MAX_STORED_TEXT = 4000
"""Longer messages are stored cut to this many characters (the matcher reads far less)."""
REPLY_CACHE = 512
"""Stored forms of the bot's own replies kept in memory: answers and menus repeat, and masking a long answer
(libphonenumber) was a twentieth of a turn's CPU."""
LAST_SEEN_PRECISION = timedelta(minutes=1)
"""``last_seen_at`` is rewritten only when it is older than this: a citizen sends several updates a minute,
and rewriting it on each cost an UPDATE of the citizen's row per turn."""


def for_storage(text: str) -> str:
    """The form in which a citizen's free text is kept: the one place where stored text is shaped.

    Personal data in it (phone numbers, e-mail, ID and bank card numbers) is masked (storage/masking.py).
    """
    # Masked before the cut, so a number at the edge is never kept half-unmasked; bounded first for cost.
    return mask(text[: 2 * MAX_STORED_TEXT])[:MAX_STORED_TEXT]


@functools.lru_cache(maxsize=REPLY_CACHE)
def _stored_reply(text: str) -> str:
    """``for_storage`` of a text the bot said; only the bot's words are cached, never a citizen's."""
    return for_storage(text)


@dataclass
class Citizen:
    """A citizen as one channel knows them."""

    id: int
    channel: str
    external_id: str
    language: str | None
    created_at: datetime


@dataclass
class DialogueState:
    """Where a citizen is in the dialogue; ``state`` None means "nothing pending"."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def set(self, state: str | None, **data: Any) -> None:
        self.state = state
        self.data = dict(data)

    def clear(self) -> None:
        self.set(None)


_USERS = cast(Table, User.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
_MESSAGES = cast(Table, Message.__table__)
_TURN_COLUMNS = (
    _USERS.c.id, _USERS.c.channel, _USERS.c.external_id, _USERS.c.language, _USERS.c.created_at,
    _USERS.c.last_seen_at, _USERS.c.flood_window, _USERS.c.flood_count, _USERS.c.flood_previous,
    _USERS.c.flood_warned, _CONVERSATIONS.c.user_id, _CONVERSATIONS.c.state, _CONVERSATIONS.c.data,
)
_CITIZEN = (_USERS.c.channel == bindparam("channel"), _USERS.c.external_id == bindparam("external_id"))
_TURN = (
    select(*_TURN_COLUMNS)
    .outerjoin(_CONVERSATIONS, _CONVERSATIONS.c.user_id == _USERS.c.id)
    .where(*_CITIZEN)
)
"""The citizen and their conversation in one round trip (Core statements: the ORM's unit of work cost
more CPU than the round trips themselves; docs/PERFORMANCE.md, "Telegram channel")."""
_LOCKED_TURN = (
    select(*_TURN_COLUMNS)
    .join(_CONVERSATIONS, _CONVERSATIONS.c.user_id == _USERS.c.id)
    .where(*_CITIZEN)
    .with_for_update()
)
"""On PostgreSQL a turn holds the citizen's rows locked until it commits, so two processes never run one
citizen's turns side by side. This is _TURN with both rows locked: a locking read that waited for another
turn reads the newest version of every row it locks, so it sees what that turn wrote. An outer join's
missing side cannot be locked, so a citizen without a conversation row takes _LOCK and then _TURN."""
_LOCK = select(_USERS.c.id).where(*_CITIZEN).with_for_update()
"""The citizen's row alone: _TURN must then start after the wait, as a locking read that waited sees the
other turn's row of ``users`` but its own snapshot's ``conversations``."""
_STATE = select(_CONVERSATIONS.c.state, _CONVERSATIONS.c.data).where(
    _CONVERSATIONS.c.user_id == bindparam("user_id")
)
_INSERT_USER = text(
    "INSERT INTO users (channel, external_id, created_at, last_seen_at) "
    "VALUES (:channel, :external_id, :now, :now) "
    "ON CONFLICT (channel, external_id) DO NOTHING RETURNING id"
).bindparams(bindparam("now", type_=_USERS.c.created_at.type))
"""Written out, as the inbox's insert: SQLAlchemy does not cache its dialects' upserts."""
# Built once: a statement built per call is cache-keyed per call, which cost more than running it.
_SEEN = (
    update(_USERS).where(_USERS.c.id == bindparam("citizen_id"))
    .values(last_seen_at=bindparam("seen_at", type_=_USERS.c.last_seen_at.type))
)
_FLOOD = (
    update(_USERS).where(_USERS.c.id == bindparam("citizen_id"))
    .values(flood_window=bindparam("window", type_=_USERS.c.flood_window.type),
            flood_count=bindparam("count"), flood_previous=bindparam("previous"),
            flood_warned=bindparam("warned", type_=_USERS.c.flood_warned.type))
)
_SAVE_STATE = (
    update(_CONVERSATIONS).where(_CONVERSATIONS.c.user_id == bindparam("citizen_id"))
    .values(state=bindparam("new_state", type_=_CONVERSATIONS.c.state.type),
            data=bindparam("new_data", type_=_CONVERSATIONS.c.data.type))
)
_INSERT_STATE = insert(_CONVERSATIONS)
_INSERT_MESSAGES = insert(_MESSAGES)
_COUNT = (
    "counted AS (UPDATE users SET flood_window = :window, flood_count = :count, "
    "flood_previous = :previous, flood_warned = :warned WHERE id = :citizen_id)"
)
_UPSERT_STATE = (
    "saved AS (INSERT INTO conversations (user_id, state, data, updated_at) "
    "VALUES (:user_id, :new_state, :new_data, :created_at) ON CONFLICT (user_id) DO UPDATE "
    "SET state = excluded.state, data = excluded.data, updated_at = excluded.updated_at)"
)
_KEEP = (
    "INSERT INTO messages (user_id, direction, text, created_at) "
    "SELECT :user_id, kept.direction, kept.text, :created_at "
    "FROM unnest(:directions, :texts) WITH ORDINALITY AS kept (direction, text, position) "
    "ORDER BY kept.position"
)
_KEEP_TYPES = {
    "user_id": Integer(), "created_at": _MESSAGES.c.created_at.type,
    "directions": ARRAY(String), "texts": ARRAY(String),
}
_COUNT_TYPES = {
    "citizen_id": Integer(), "count": Integer(), "previous": Integer(),
    "window": _USERS.c.flood_window.type, "warned": _USERS.c.flood_warned.type,
}
_STATE_TYPES = {"new_state": _CONVERSATIONS.c.state.type, "new_data": _CONVERSATIONS.c.data.type}


def _last_writes(counted: bool, saved: bool) -> TextClause:
    types = _KEEP_TYPES | (_COUNT_TYPES if counted else {}) | (_STATE_TYPES if saved else {})
    ctes = [cte for cte, wanted in ((_COUNT, counted), (_UPSERT_STATE, saved)) if wanted]
    return text(f"WITH {', '.join(ctes)} {_KEEP}").bindparams(
        *(bindparam(name, type_=type_) for name, type_ in types.items()))


_LAST_WRITES = {(counted, saved): _last_writes(counted, saved)
                for counted in (False, True) for saved in (False, True) if counted or saved}
"""PostgreSQL: a turn's messages (in order) with the flood count ``count_message`` left (_FLOOD) and its
changed state (an upsert: the row may be new, or erased during the turn), in one round trip, where each was
a statement of its own. A data-modifying WITH runs once whether or not the insert has rows."""
_NO_ROW = object()


class CitizenRepository:
    """Citizens and their conversations within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # The state each conversation had when read (None: no row yet), so that saving an unchanged
        # state writes nothing.
        self._read: dict[int, DialogueState | None] = {}
        self._flood: dict[int, FloodCount] = {}  # as read by begin_turn
        self._uncounted: dict[str, Any] | None = None  # _FLOOD's values, written with the next messages
        # Processes share a PostgreSQL database; SQLite has one writer at a time anyway.
        self._shared = db.shared(session)

    async def get_or_create(self, channel: str, external_id: str, *, now: datetime | None = None) -> Citizen:
        """The citizen for a channel identity, created on first contact."""
        citizen, _ = await self.begin_turn(channel, external_id, now=now)
        return citizen

    async def begin_turn(self, channel: str, external_id: str, *,
                         now: datetime | None = None) -> tuple[Citizen, DialogueState]:
        """The citizen (created on first contact) and where they are in the dialogue, in one query."""
        now = now or utcnow()
        found = await self._read_turn(channel, external_id)
        if found is None:
            values = {"channel": channel, "external_id": external_id, "now": now}
            new_id = (await self.session.execute(_INSERT_USER, values)).scalar_one_or_none()
            if new_id is not None:
                self._flood[new_id], self._read[new_id] = FloodCount(), None
                return Citizen(new_id, channel, external_id, None, now), DialogueState()
            # Known after all: their conversation was erased or purged, or another process has just
            # made them (the insert waited for its turn to commit).
            found = await self._read_turn(channel, external_id, conversation=False)
            assert found is not None
        citizen = _citizen(found)
        if now - found.last_seen_at >= LAST_SEEN_PRECISION:
            await self.session.execute(_SEEN, {"citizen_id": citizen.id, "seen_at": now})
        if found.user_id is None:
            self._read[citizen.id] = None
            return citizen, DialogueState()
        return citizen, self._remember(citizen.id, found.state, found.data)

    async def count_message(self, citizen_id: int, limit: int, *, now: datetime | None = None) -> Verdict:
        """Count one message against the citizen's flood limit (``limit`` a minute): allow, warn or drop.

        Counted in the citizen's row, which the turn holds locked, so every process sees one count. An
        allowed message's count is written with the turn's messages (``record_messages``, which every
        allowed turn calls, with nothing to keep too): one round trip fewer on every turn.
        """
        counted = self._flood.get(citizen_id, FloodCount())
        verdict, counts = count_message(counted, limit, now or utcnow())
        if counts != counted:
            values = {"citizen_id": citizen_id, "window": counts.window, "count": counts.count,
                      "previous": counts.previous, "warned": counts.warned}
            if verdict.allowed:
                self._uncounted = values
            else:
                await self.session.execute(_FLOOD, values)
            self._flood[citizen_id] = counts
        return verdict

    async def get(self, citizen_id: int) -> Citizen | None:
        row = await self.session.get(User, citizen_id)
        return _citizen(row) if row else None

    async def chosen_languages(self, citizen_ids: Iterable[int]) -> dict[int, str]:
        """The language each of these citizens chose, for those who chose one; one query."""
        rows = await self.session.execute(
            select(_USERS.c.id, _USERS.c.language)
            .where(_USERS.c.id.in_(set(citizen_ids)), _USERS.c.language.is_not(None))
        )
        return {int(row.id): str(row.language) for row in rows}

    async def set_language(self, citizen_id: int, language: str) -> None:
        row = await self.session.get(User, citizen_id)
        if row is not None:
            row.language = language

    async def state(self, citizen_id: int) -> DialogueState:
        read = self._read.get(citizen_id, _NO_ROW)
        if read is _NO_ROW:
            found = (await self.session.execute(_STATE, {"user_id": citizen_id})).first()
            if found is None:
                self._read[citizen_id] = None
                return DialogueState()
            return self._remember(citizen_id, found.state, found.data)
        return copy.deepcopy(read) if isinstance(read, DialogueState) else DialogueState()

    async def save_state(self, citizen_id: int, state: DialogueState) -> None:
        """Keep the state for the next turn; nothing is written when it did not change."""
        read = self._read.get(citizen_id, _NO_ROW)
        if read is _NO_ROW:
            await self.state(citizen_id)
            read = self._read[citizen_id]
        if read == state:
            return
        if read is not None:
            values = {"citizen_id": citizen_id, "new_state": state.state, "new_data": dict(state.data)}
            result = await self.session.execute(_SAVE_STATE, values)
            if result.rowcount:  # type: ignore[attr-defined]
                self._read[citizen_id] = copy.deepcopy(state)
                return
        # No row yet, or erased during the turn (/forget): the conversation starts afresh.
        await self.session.execute(
            _INSERT_STATE, {"user_id": citizen_id, "state": state.state, "data": dict(state.data)}
        )
        self._read[citizen_id] = copy.deepcopy(state)

    async def record_message(
        self, citizen_id: int, direction: str, text: str, *, now: datetime | None = None
    ) -> None:
        """Keep a message of the conversation, in its stored form."""
        await self.record_messages(citizen_id, [(direction, text)], now=now)

    async def record_messages(
        self, citizen_id: int, messages: list[tuple[str, str]], *, now: datetime | None = None
    ) -> None:
        """Keep several messages (direction, text) of the conversation, in order, with one statement, and
        the flood count ``count_message`` left to write."""
        await self._last_writes(citizen_id, messages, None, now or utcnow())

    async def end_turn(
        self, citizen_id: int, messages: list[tuple[str, str]], state: DialogueState, *,
        now: datetime | None = None,
    ) -> None:
        """A turn's last writes: its messages, its state for the next turn (written only if it changed), and
        the flood count ``count_message`` left; one statement on PostgreSQL."""
        read = self._read.get(citizen_id, _NO_ROW)
        if read is _NO_ROW:
            await self.state(citizen_id)
            read = self._read[citizen_id]
        await self._last_writes(citizen_id, messages, None if read == state else state, now or utcnow())

    async def _last_writes(
        self, citizen_id: int, messages: list[tuple[str, str]], state: DialogueState | None, at: datetime
    ) -> None:
        counted, self._uncounted = self._uncounted, None
        texts = [_stored_reply(text) if direction == "out" else for_storage(text)
                 for direction, text in messages]
        # Core statements, written at once: what the turn reads next (a case's excerpt) sees them, and the
        # ORM's unit of work at the commit, which cost more than the statement, has nothing to do.
        if self._shared and (counted is not None or state is not None):
            values = {"user_id": citizen_id, "created_at": at, "texts": texts,
                      "directions": [direction for direction, _ in messages]}
            if state is not None:
                values |= {"new_state": state.state, "new_data": dict(state.data)}
                self._read[citizen_id] = copy.deepcopy(state)
            await self.session.execute(_LAST_WRITES[counted is not None, state is not None],
                                       values | (counted or {}))
            return
        if counted is not None:
            await self.session.execute(_FLOOD, counted)
        if messages:
            await self.session.execute(_INSERT_MESSAGES, [
                {"user_id": citizen_id, "direction": direction, "created_at": at, "text": text}
                for (direction, _), text in zip(messages, texts, strict=True)])
        if state is not None:
            await self.save_state(citizen_id, state)

    async def last_typed(self, citizen_id: int) -> str | None:
        """The citizen's last message that is not a command, if any is kept."""
        text: str | None = await self.session.scalar(
            select(Message.text)
            .where(Message.user_id == citizen_id, Message.direction == "in", ~Message.text.startswith("/"))
            .order_by(Message.id.desc())
            .limit(1)
        )
        return text

    def _remember(self, citizen_id: int, state: str | None, data: dict[str, Any] | None) -> DialogueState:
        read = DialogueState(state, dict(data or {}))
        self._read[citizen_id] = copy.deepcopy(read)
        return read

    async def _read_turn(
        self, channel: str, external_id: str, *, conversation: bool = True
    ) -> Row[Any] | None:
        """_TURN's row, after taking the citizen's lock (PostgreSQL); their flood count is kept.

        ``conversation``: whether the citizen is expected to have a conversation row (_LOCKED_TURN) or
        not (_LOCK, then _TURN)."""
        key = {"channel": channel, "external_id": external_id}
        if not self._shared:
            found = (await self.session.execute(_TURN, key)).first()
        elif conversation:
            found = (await self.session.execute(_LOCKED_TURN, key)).first()
        else:
            await self.session.execute(_LOCK, key)
            found = (await self.session.execute(_TURN, key)).first()
        if found is not None:
            self._flood[found.id] = FloodCount(found.flood_window, found.flood_count, found.flood_previous,
                                               found.flood_warned)
        return found


def _citizen(row: User | Row[Any]) -> Citizen:
    return Citizen(row.id, row.channel, row.external_id, row.language, row.created_at)
