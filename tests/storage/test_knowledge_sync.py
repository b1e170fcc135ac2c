"""Live updates: a running process picks up knowledge-base changes made by another, entry by entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.matcher import Decision
from storage import db
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge
from tests.handlers.conftest import small_kb

Sessions = async_sessionmaker[AsyncSession]


async def loaded(sessions: Sessions) -> LiveKnowledge:
    live = LiveKnowledge(sessions)
    await live.load()
    return live


async def test_edit_by_another_process_is_applied_without_a_rebuild(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "import:test")
    running = await loaded(sessions)
    index = running.matcher
    assert running.matcher.match("where can I get a fishing licence", "en").decision is Decision.NONE

    entry = small_kb().entries[2].replace(
        id="fishing-licence",
        question={"en": "How do I get a fishing licence?", "zh": "钓鱼证怎么办？"},
        alternatives={"en": ["fishing permit", "licence to fish", "angling licence"], "zh": ["钓鱼许可"]},
        answer={"en": "Apply at the harbour office.", "zh": "到港务办公室申请。"},
    )
    async with sessions.begin() as session:  # "another process": its own unit of work
        await KnowledgeRepository(session).save_entry(entry, "edit:staff")
        await KnowledgeRepository(session).delete_entry("tax-property-pay", "edit:staff")

    assert await running.refresh()
    assert running.matcher is index  # updated in place, not rebuilt
    match = running.matcher.match("where can I get a fishing licence", "en")
    assert match.best is not None
    assert match.best.entry_id == "fishing-licence"
    assert running.entry("tax-property-pay") is None
    assert "fishing-licence" in {e.id for e in running.entries_in("tax")}
    assert not await running.refresh()


async def test_synonym_change_rebuilds_the_index(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "import:test")
    running = await loaded(sessions)
    kb = small_kb()
    kb.synonyms.append(["property tax", "house levy"])
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(kb, "import:synonyms")
    assert await running.refresh()
    assert running.kb.synonyms[-1] == ["property tax", "house levy"]


async def test_an_unreachable_database_is_one_warning_not_a_traceback_every_refresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = db.create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")  # nothing listens there
    live = LiveKnowledge(db.sessionmaker(engine))
    follower = asyncio.create_task(live.follow(0.01))
    try:
        with caplog.at_level(logging.INFO, logger="storage.knowledge_sync"):
            await asyncio.sleep(0.3)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await engine.dispose()
    records = [r for r in caplog.records if r.name == "storage.knowledge_sync"]
    assert [r.levelname for r in records] == ["WARNING"]
    assert "out of reach" in records[0].getMessage()
    assert records[0].exc_info is None
