"""/forget and the retention purge leave none of a citizen's data anywhere, and /mydata holds all of it.

The database is scanned as it is, its tables and columns read from the database itself (not from govbot's
models), so a table or column added later is scanned without anyone remembering to add it here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from storage.outbox import OutboxEvent
from storage.retention import run_retention
from tests.escalation.dispatching import Clock
from tests.governance.citizen_everywhere import (
    NEEDLES,
    Citizen,
    button,
    citizen_world,
    forget,
    live_everywhere,
    mark,
)
from tests.handlers.conftest import knowledge

__all__ = ["knowledge"]

Sessions = async_sessionmaker[AsyncSession]
Cell = tuple[str, str]
"""A table and one of its columns."""

KEPT_AFTER_ERASURE: dict[Cell, str] = {}
"""What the law lets govbot keep of an erased citizen, with why (README, "Personal data"): nothing that
holds their words, names or ids. The audit log keeps its records, which name citizens by reference only."""
_CASE_RECORD = "a case outlives the retention period as the departments' record of what was done (README)"
KEPT_AFTER_RETENTION: dict[Cell, str] = {
    ("cases", "description"): _CASE_RECORD,
    ("cases", "contact"): _CASE_RECORD,
    ("cases", "chat_id"): _CASE_RECORD + ", and its replies still reach the citizen",
    ("case_changes", "text"): _CASE_RECORD + ": what the citizen added, the departments' replies and notes",
    ("users", "external_id"): "the citizen's account (channel id) stays while they use govbot, until /forget",
}
"""What the retention purge leaves of a citizen's old data, with why (README, ``GOVBOT_RETENTION_DAYS``)."""
COPIES_AFTER_RETENTION: dict[Cell, str] = {
    ("outbox_events", "payload"): "an event still waiting for its department carries the case as kept",
}
"""Where the retention purge may leave a citizen's words only as copies of what it keeps elsewhere."""
NOT_EXPORTED: dict[Cell, str] = {
    ("questions", "normalised"): "the matcher's normalised form of questions.text, which is exported",
    ("suggestions", "key"): "the normalised form of suggestions.text, exported as the question picked for it",
}
"""Derived forms of the citizen's data that /mydata carries as written, with where."""

_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def leaves(value: Any) -> Iterator[str]:
    """Every piece of text in a stored value: JSON walked (keys too), bytes and base64 decoded."""
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, bytes | memoryview):
        yield from leaves(bytes(value).decode("utf-8", errors="replace"))
    elif isinstance(value, str):
        yield from _decoded(value)
    else:
        yield str(value)


def _decoded(text: str) -> Iterator[str]:
    """The text, or what it holds in another form: JSON written as text, a file encoded in base64."""
    stripped = text.strip()
    try:
        if stripped[:1] in ("{", "["):
            yield from leaves(json.loads(stripped))
            return
        if len(stripped) % 4 == 0 and _BASE64.fullmatch(stripped):
            yield from leaves(base64.b64decode(stripped, validate=True).decode("utf-8"))
            return
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        pass
    yield text


def folded(text: str) -> str:
    """Text as compared: NFKC, case-folded, one space between words, no sentence punctuation at the end."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).rstrip("?？!！.。,，;；")


async def scan(engine: AsyncEngine) -> dict[Cell, set[str]]:
    """Every table and column of the database that holds a needle, with the pieces of text that hold it."""
    needles = [folded(needle) for needle in NEEDLES]
    metadata = MetaData()
    found: dict[Cell, set[str]] = {}
    async with engine.connect() as conn:
        await conn.run_sync(metadata.reflect)
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    for leaf in leaves(value):
                        if any(needle in folded(leaf) for needle in needles):
                            found.setdefault((table.name, column), set()).add(leaf)
    return found


def left_over(found: dict[Cell, set[str]], allowed: dict[Cell, str]) -> dict[Cell, list[str]]:
    """What the scan found where nothing may be, as sorted lists for a readable failure."""
    return {cell: sorted(texts) for cell, texts in found.items() if cell not in allowed}


def not_copies(
    found: dict[Cell, set[str]], kept: dict[Cell, str], copies: dict[Cell, str]
) -> dict[Cell, list[str]]:
    """The pieces of text in ``copies`` cells that no ``kept`` cell holds (the purge left more there)."""
    kept_texts = [folded(text) for cell, texts in found.items() if cell in kept for text in texts]
    missing: dict[Cell, list[str]] = {}
    for cell, texts in found.items():
        if cell in copies:
            extra = sorted(text for text in texts if not any(folded(text) in held for held in kept_texts))
            if extra:
                missing[cell] = extra
    return missing


def not_in_export(found: dict[Cell, set[str]], exports: dict[str, dict[str, Any]]) -> dict[Cell, list[str]]:
    """The pieces of the citizen's data stored that no export carries, by table and column."""
    exported = [folded(leaf) for document in exports.values() for leaf in leaves(document)]
    missing: dict[Cell, list[str]] = {}
    for cell, texts in found.items():
        if cell in NOT_EXPORTED:
            continue
        for text in sorted(texts):
            if not any(folded(text) in leaf for leaf in exported):
                missing.setdefault(cell, []).append(text)
    return missing


async def test_mydata_holds_everything_stored_about_the_citizen(
    engine: AsyncEngine, sessions: Sessions, knowledge: Any
) -> None:
    clock = Clock()
    async with citizen_world(Dialogue(sessions, knowledge, clock=clock), sessions, clock) as world:
        await live_everywhere(world)
        found = await scan(engine)
    assert found, "the scenario stored nothing of the citizen"
    assert not_in_export(found, world.exports) == {}


async def test_forget_leaves_nothing_of_the_citizen_but_what_the_law_keeps(
    engine: AsyncEngine, sessions: Sessions, knowledge: Any
) -> None:
    clock = Clock()
    async with citizen_world(Dialogue(sessions, knowledge, clock=clock), sessions, clock) as world:
        await live_everywhere(world)
        assert await scan(engine), "the scenario stored nothing of the citizen"
        await forget(world)
        await world.dispatch()  # the departments learn the case was closed, and nothing else
        assert _received_after_erasure(world) == []
    assert left_over(await scan(engine), KEPT_AFTER_ERASURE) == {}


async def test_retention_leaves_nothing_of_an_old_conversation_but_what_it_keeps(
    engine: AsyncEngine, sessions: Sessions, knowledge: Any
) -> None:
    clock = Clock()
    async with citizen_world(Dialogue(sessions, knowledge, clock=clock), sessions, clock) as world:
        await live_everywhere(world)
        await _an_event_left_waiting(world)
    await run_retention(sessions, days=30, now=clock() + timedelta(days=31))
    found = await scan(engine)
    assert left_over(found, KEPT_AFTER_RETENTION | COPIES_AFTER_RETENTION) == {}
    assert not_copies(found, KEPT_AFTER_RETENTION, COPIES_AFTER_RETENTION) == {}
    async with sessions() as session:  # still deliverable, with the case as kept
        [waiting] = await session.scalars(select(OutboxEvent).where(OutboxEvent.status == "pending"))
    assert (waiting.payload["data"]["excerpt"], waiting.payload["data"]["case"]["description"]) == (
        [], f"{mark(8)} the fireworks kept my children awake until 2 am")


async def _an_event_left_waiting(world: Citizen) -> None:
    """REGISTRY's endpoint answers 410 Gone to what the citizen adds next: it waits past the period."""
    [ticket] = (await world.telegram("/status"))[0].buttons[0]
    world.receivers["REGISTRY"].answers.append(410)
    await world.telegram(payload=button(await world.telegram(f"/status {ticket.label}"), "case:add:"))
    await world.telegram(f"{mark(10)} the video is ready")
    await world.dispatch()
    async with world.sessions() as session:
        [waiting] = await session.scalars(select(OutboxEvent).where(OutboxEvent.status == "pending"))
    assert waiting.payload["data"]["excerpt"], "the waiting event carries no excerpt to purge"


def _received_after_erasure(world: Citizen) -> list[str]:
    """Needles in the case.closed deliveries that erasure sent."""
    closed = [r.payload for receiver in world.receivers.values() for r in receiver.received
              if r.payload.get("type") == "case.closed"]
    assert closed
    return [leaf for payload in closed for leaf in leaves(payload)
            if any(folded(needle) in folded(leaf) for needle in NEEDLES)]
