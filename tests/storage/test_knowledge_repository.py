"""The knowledge base in the database: imports, revisions, change sequence — on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.entry import Category, DepartmentRef, Entry, KnowledgeBase
from storage.knowledge import KnowledgeRepository

Sessions = async_sessionmaker[AsyncSession]


def entry(entry_id: str, answer: str = "Bring your old card.", **changes: object) -> Entry:
    base = Entry(
        id=entry_id,
        category="civil-registry",
        department="REGISTRY",
        question={"en": f"Question {entry_id}?", "zh": f"问题{entry_id}？"},
        alternatives={"en": ["one", "two", "three"], "zh": ["一", "二", "三"]},
        answer={"en": answer, "zh": "请带旧证。"},
    )
    return base.replace(**changes)


def knowledge_base(*entries: Entry) -> KnowledgeBase:
    return KnowledgeBase(
        entries=list(entries),
        categories=[Category("civil-registry", {"en": "Civil registry", "zh": "户籍"})],
        departments=[DepartmentRef("REGISTRY", {"en": "Registry", "zh": "户籍处"})],
        synonyms=[["identity card", "ID card"]],
    )


async def import_kb(sessions: Sessions, kb: KnowledgeBase, source: str = "import:test") -> object:
    async with sessions.begin() as session:
        return await KnowledgeRepository(session).apply_import(kb, source)


async def test_import_writes_entries_categories_departments_and_synonyms(sessions: Sessions) -> None:
    kb = knowledge_base(entry("a"), entry("b"))
    await import_kb(sessions, kb)
    async with sessions() as session:
        loaded, seq = await KnowledgeRepository(session).load()
    assert [e.id for e in loaded.entries] == ["a", "b"]
    assert loaded.entries[0] == kb.entries[0]
    assert loaded.categories == kb.categories
    assert loaded.departments == kb.departments
    assert loaded.synonyms == [["identity card", "ID card"]]
    assert seq == 1


async def test_importing_the_same_files_again_changes_nothing(sessions: Sessions) -> None:
    kb = knowledge_base(entry("a"), entry("b"))
    await import_kb(sessions, kb)
    async with sessions.begin() as session:
        plan = await KnowledgeRepository(session).apply_import(kb, "import:again")
        assert not plan.has_changes
        assert plan.count("unchanged") == 2
        assert await KnowledgeRepository(session).current_seq() == 1


async def test_changed_entry_gets_a_new_revision_naming_the_changed_fields(sessions: Sessions) -> None:
    await import_kb(sessions, knowledge_base(entry("a"), entry("b")))
    async with sessions.begin() as session:
        plan = await KnowledgeRepository(session).apply_import(
            knowledge_base(entry("a", answer="Bring two photos."), entry("b")), "import:edit"
        )
    assert [(c.entry_id, c.kind, c.fields) for c in plan.entries if c.kind != "unchanged"] == [
        ("a", "updated", ("answer",))
    ]
    async with sessions() as session:
        history = await KnowledgeRepository(session).history("a")
    assert [(r.revision, r.change, r.source) for r in history] == [
        (1, "created", "import:test"),
        (2, "updated", "import:edit"),
    ]
    assert history[-1].entry is not None
    assert history[-1].entry.answer["en"] == "Bring two photos."


async def test_dry_run_plan_writes_nothing(sessions: Sessions) -> None:
    async with sessions() as session:
        plan = await KnowledgeRepository(session).plan_import(knowledge_base(entry("a")))
        assert plan.count("created") == 1
        assert plan.meta == ["synonyms", "categories", "department REGISTRY (new)"]
    async with sessions() as session:
        assert await KnowledgeRepository(session).is_empty()


async def test_an_import_of_more_entries_than_one_query_may_name_is_planned(sessions: Sessions) -> None:
    """PostgreSQL takes at most 32767 parameters in a statement."""
    await import_kb(sessions, knowledge_base(entry("a"), entry("b")))
    many = [entry("a", answer="new"), entry("b")] + [entry(f"e{i}") for i in range(40_000)]
    async with sessions() as session:
        plan = await KnowledgeRepository(session).plan_import(knowledge_base(*many))
    assert (plan.count("created"), plan.count("updated"), plan.count("unchanged")) == (40_000, 1, 1)


async def test_failed_import_transaction_leaves_the_database_as_it_was(sessions: Sessions) -> None:
    await import_kb(sessions, knowledge_base(entry("a")))
    try:
        async with sessions.begin() as session:
            await KnowledgeRepository(session).apply_import(
                knowledge_base(entry("a", answer="new"), entry("b")), "x"
            )
            raise RuntimeError("disk full")
    except RuntimeError:
        pass
    async with sessions() as session:
        loaded, seq = await KnowledgeRepository(session).load()
    assert [e.id for e in loaded.entries] == ["a"]
    assert loaded.entries[0].answer["en"] == "Bring your old card."
    assert seq == 1


async def test_changes_since_returns_only_newer_entries_and_deletions(sessions: Sessions) -> None:
    await import_kb(sessions, knowledge_base(entry("a"), entry("b")))
    async with sessions.begin() as session:
        repo = KnowledgeRepository(session)
        await repo.save_entry(entry("a", answer="changed"), "edit")
        assert await repo.delete_entry("b", "edit")
        assert not await repo.delete_entry("missing", "edit")
    async with sessions() as session:
        changes = await KnowledgeRepository(session).changes_since(1)
        nothing = await KnowledgeRepository(session).changes_since(changes.seq)
    assert [e.id for e in changes.entries] == ["a"]
    assert changes.deleted == ["b"]
    assert not changes.meta_changed
    assert nothing.empty


async def test_deleted_entry_can_be_imported_again_and_keeps_its_history(sessions: Sessions) -> None:
    await import_kb(sessions, knowledge_base(entry("a")))
    async with sessions.begin() as session:
        await KnowledgeRepository(session).delete_entry("a", "edit")
    await import_kb(sessions, knowledge_base(entry("a")), "import:restore")
    async with sessions() as session:
        repo = KnowledgeRepository(session)
        assert await repo.entry("a") == entry("a")
        assert [r.change for r in await repo.history("a")] == ["created", "deleted", "created"]
