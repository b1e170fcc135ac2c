"""Live updates: a running process picks up knowledge-base changes made by another, entry by entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import pytest
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.matcher import Decision
from storage import db
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge
from storage.models import KbEntry, KbEntryRevision, KbMeta, KbSequence
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


_HISTORY = [cast(Table, model.__table__) for model in (KbEntry, KbEntryRevision, KbMeta, KbSequence)]
Backup = dict[str, list[dict[str, Any]]]


async def backed_up(sessions: Sessions) -> Backup:
    """The knowledge base's tables as a backup holds them."""
    async with sessions() as session:
        return {table.name: [dict(row) for row in (await session.execute(select(table))).mappings()]
                for table in _HISTORY}


async def restore(sessions: Sessions, backup: Backup) -> None:
    """What restoring the backup does to the knowledge base: its rows as they were, later changes gone."""
    async with sessions.begin() as session:
        for table in reversed(_HISTORY):
            await session.execute(delete(table))
        for table in _HISTORY:
            if backup[table.name]:
                await session.execute(insert(table), backup[table.name])


async def edited(sessions: Sessions, entry_id: str, answer: str) -> None:
    entry = small_kb().entries[0].replace(id=entry_id, answer={"en": answer, "zh": answer})
    async with sessions.begin() as session:
        await KnowledgeRepository(session).save_entry(entry, "edit:staff")


async def test_followers_reload_once_when_the_database_is_restored_from_a_backup(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "import:test")
    first, second = await loaded(sessions), await loaded(sessions)  # two processes' worth of knowledge
    backup = await backed_up(sessions)
    await edited(sessions, "lost-edit", "Made after the backup.")
    assert await first.refresh()
    assert await second.refresh()

    await restore(sessions, backup)  # the change numbers go back
    caplog.clear()  # the loads above are logged as well when an earlier test left the root at INFO
    with caplog.at_level(logging.INFO, logger="storage.knowledge_sync"):
        assert await first.refresh()
    assert first.entry("lost-edit") is None
    restored = [r for r in caplog.records if r.name == "storage.knowledge_sync"]
    assert len(restored) == 1
    assert "restored from a backup" in restored[0].getMessage()

    await edited(sessions, "new-edit", "Made after the restore.")  # back at the number the lost edit had
    assert await first.refresh()
    assert await second.refresh()
    for live in (first, second):
        assert live.entry("lost-edit") is None
        found = live.entry("new-edit")
        assert found is not None
        assert found.answer["en"] == "Made after the restore."
    await edited(sessions, "later-edit", "Picked up as any edit.")
    assert await second.refresh()
    assert second.entry("later-edit") is not None
