"""The audit log: append-only, a linear hash chain under concurrent writers, any edit or deletion detected."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.util import await_only

from storage import db
from storage.audit import (
    GENESIS,
    AuditKind,
    AuditLog,
    AuditRecord,
    AuditUnreadable,
    NewRecord,
    citizen_ref,
    parse_citizen_ref,
    record_hash,
)

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
CHAIN = 8


async def append_some(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    for number in range(count):
        async with sessions.begin() as session:
            await AuditLog(session).append(
                AuditKind.DISCLOSURE,
                now=NOW + timedelta(seconds=number),
                citizen=citizen_ref(number % 3),
                department=("TAX", "HOUSING")[number % 2],
                ticket=f"TX-2026-{number:06d}",
                fields=["free_text", "contact"],
                basis={"clearance": "personal", "consent": {"contact": "escalation"}},
                details={"webhook_id": f"msg_{number}", "attempt": 1},
            )


async def test_an_untouched_chain_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    await append_some(sessions, 5)
    async with sessions() as session:
        result = await AuditLog(session).verify(batch=2)
    assert result.ok
    assert result.checked == 5
    assert result.head_hash != GENESIS


async def test_a_batch_appends_in_order_between_single_records(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await append_some(sessions, 1)
    async with sessions.begin() as session:
        batch = [NewRecord(AuditKind.DISCLOSURE, citizen=f"C{n}", department="TAX") for n in range(3)]
        entries = await AuditLog(session).append_many(batch, now=NOW)
        assert await AuditLog(session).append_many([], now=NOW) == []
    await append_some(sessions, 1)
    assert [e.id for e in entries] == [2, 3, 4]
    assert [e.citizen_ref for e in entries] == ["C0", "C1", "C2"]
    assert entries[1].prev_hash == entries[0].hash
    async with sessions() as session:
        result = await AuditLog(session).verify(batch=2)
    assert result.ok
    assert result.checked == 5


async def test_an_empty_log_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        result = await AuditLog(session).verify()
    assert result.ok
    assert result.checked == 0


async def test_concurrent_writers_make_one_gapless_chain(sessions: async_sessionmaker[AsyncSession]) -> None:
    async def one(number: int) -> int:
        async with sessions.begin() as session:
            entry = await AuditLog(session).append(AuditKind.EXPORT, now=NOW, details={"n": number})
            return entry.id

    ids = await asyncio.gather(*(one(n) for n in range(20)))
    assert sorted(ids) == list(range(1, 21))
    async with sessions() as session:
        result = await AuditLog(session).verify()
    assert result.ok
    assert result.checked == 20


async def test_a_rolled_back_append_leaves_no_gap(sessions: async_sessionmaker[AsyncSession]) -> None:
    await append_some(sessions, 2)
    async with sessions() as session:
        await AuditLog(session).append(AuditKind.EXPORT, now=NOW)
        await session.rollback()  # the change the record describes failed
    await append_some(sessions, 1)
    async with sessions() as session:
        result = await AuditLog(session).verify()
        assert [e.id for e in await AuditLog(session).search()] == [3, 2, 1]
    assert result.ok


async def test_the_database_refuses_updates_and_deletes(sessions: async_sessionmaker[AsyncSession]) -> None:
    await append_some(sessions, 2)
    for statement in (
        update(AuditRecord).where(AuditRecord.id == 1).values(department="OTHER"),
        delete(AuditRecord).where(AuditRecord.id == 2),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sessions.begin() as session:
                await session.execute(statement)


@pytest.mark.parametrize("forged_id", [0, -7])
async def test_a_record_slipped_in_before_the_first_is_detected(
    sessions: async_sessionmaker[AsyncSession], forged_id: int
) -> None:
    await append_some(sessions, 3)
    async with sessions.begin() as session:  # inserts pass the append-only trigger: no update, no delete
        forged: dict[str, Any] = {
            "id": forged_id, "at": NOW, "kind": "erasure", "citizen_ref": "C1", "department": None,
            "ticket": None, "fields": [], "basis": {"request": "citizen"}, "details": {},
            "prev_hash": GENESIS,
        }  # fmt: skip
        session.add(AuditRecord(**forged, hash=record_hash(forged | {"at": NOW.isoformat()})))
    async with sessions() as session:
        assert [e.id for e in await AuditLog(session).search(citizen="C1")][-1] == forged_id  # shown as real
        result = await AuditLog(session).verify(batch=2)
    assert not result.ok
    assert result.broken_id == forged_id
    assert result.problem == f"record {forged_id} was added outside the log"


async def test_search_by_citizen_and_department(sessions: async_sessionmaker[AsyncSession]) -> None:
    await append_some(sessions, 6)
    async with sessions() as session:
        log = AuditLog(session)
        of_citizen = await log.search(citizen="C1")
        of_department = await log.search(department="TAX")
        both = await log.search(citizen="C0", department="TAX")
    assert [e.id for e in of_citizen] == [5, 2]
    assert [e.id for e in of_department] == [5, 3, 1]
    assert [e.id for e in both] == [1]
    assert of_citizen[0].to_json()["fields"] == ["contact", "free_text"]


async def test_details_that_are_not_json_are_kept_as_text_and_still_verify(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await AuditLog(session).append(AuditKind.EXPORT, now=NOW, details={"when": NOW, "ids": (1, 2)})
    async with sessions() as session:
        assert (await AuditLog(session).verify()).ok
        [entry] = await AuditLog(session).search()
    assert entry.details == {"when": str(NOW), "ids": [1, 2]}


@pytest.mark.parametrize(("text_", "expected"), [("C42", "C42"), ("c7", "C7"), (" 12 ", "C12"), ("x1", None)])
def test_citizen_references(text_: str, expected: str | None) -> None:
    assert parse_citizen_ref(text_) == expected


# Tampering: the chain is built once per backend; each example edits or deletes one record inside a
# transaction (with the append-only trigger lifted), verifies, and rolls back.

EDITS: dict[str, Any] = {
    "kind": "export",
    "department": "OTHER",
    "citizen_ref": "C999",
    "ticket": "TX-2026-999999",
    "fields": ["national_id"],
    "basis": {"clearance": "sensitive"},
    "details": {"attempt": 2},
    "at": NOW - timedelta(days=1),
    "hash": "f" * 64,
    "prev_hash": "e" * 64,
}


@pytest.fixture
def chain(database_url: str) -> str:
    async def build() -> None:
        engine = db.create_engine(database_url)
        try:
            if engine.url.get_backend_name() == "sqlite":
                await db.upgrade(engine)  # a new file: the log is empty
            else:
                async with engine.begin() as conn:  # TRUNCATE passes the row triggers, which stay on
                    await conn.execute(text("TRUNCATE audit_records"))
                    reset = text("UPDATE audit_head SET last_id = 0, last_hash = :g")
                    await conn.execute(reset, {"g": GENESIS})
            await append_some(db.sessionmaker(engine), CHAIN)
        finally:
            await engine.dispose()

    asyncio.run(build())
    return database_url


async def _lift_trigger(conn: Any) -> None:
    """Within the current transaction only: the tests play an intruder with write access."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only"))
    else:
        await conn.execute(text("UPDATE audit_head SET last_id = last_id"))  # opens the transaction
        for operation in ("UPDATE", "DELETE"):
            await conn.execute(text(f"DROP TRIGGER IF EXISTS audit_records_append_only_{operation}"))


async def _tampered_verification(url: str, record: int, column: str | None) -> tuple[bool, int | None]:
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await _lift_trigger(conn)
            if column is None:
                await conn.execute(delete(AuditRecord).where(AuditRecord.id == record))
            else:
                edit = update(AuditRecord).where(AuditRecord.id == record).values({column: EDITS[column]})
                await conn.execute(edit)
            session = AsyncSession(bind=conn)
            result = await AuditLog(session).verify(batch=3)
            await transaction.rollback()
        return result.ok, result.broken_id
    finally:
        await engine.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.integers(1, CHAIN), column=st.sampled_from([None, *EDITS]))
def test_any_single_edit_or_deletion_is_detected_at_that_record(
    chain: str, record: int, column: str | None
) -> None:
    ok, broken = asyncio.run(_tampered_verification(chain, record, column))
    assert not ok
    assert broken == record


async def test_records_appended_while_verify_walks_are_no_false_alarm(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The bot keeps writing while an auditor verifies: an append committed mid-walk is not a deletion."""
    await append_some(sessions, 3)
    appended: list[int] = []

    async def append_elsewhere() -> None:
        async with AsyncSession(engine) as other, other.begin():
            appended.append((await AuditLog(other).append(AuditKind.EXPORT, now=NOW)).id)

    def after_the_records_are_read(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not appended and "FROM audit_records" in statement:
            await_only(append_elsewhere())  # a writer's commit, between the walk and what follows it

    event.listen(engine.sync_engine, "after_cursor_execute", after_the_records_are_read)
    try:
        async with sessions() as session:
            result = await AuditLog(session).verify()
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after_the_records_are_read)
    assert appended == [4]
    assert result.ok, result.problem
    assert result.checked == 3


async def test_a_well_forged_record_written_past_the_head_is_detected(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await append_some(sessions, 3)
    async with sessions() as session:
        [last] = await AuditLog(session).search(limit=1)
    async with sessions.begin() as session:  # a forged record chained to the last one, the head left alone
        forged: dict[str, Any] = {
            "id": 4, "at": NOW, "kind": "erasure", "citizen_ref": "C1", "department": None,
            "ticket": None, "fields": [], "basis": {"request": "citizen"}, "details": {},
            "prev_hash": last.hash,
        }  # fmt: skip
        at = NOW.isoformat(timespec="microseconds")
        session.add(AuditRecord(**forged, hash=record_hash(forged | {"at": at})))
    async with sessions() as session:
        result = await AuditLog(session).verify(batch=2)
    assert not result.ok
    assert (result.broken_id, result.problem) == (4, "record 4 was added outside the log")


UNREADABLE = [
    ("UPDATE audit_records SET details = '[1]' WHERE id = 3", "details"),
    ("UPDATE audit_records SET basis = '\"clearance\"' WHERE id = 3", "basis"),
    ("UPDATE audit_records SET fields = 'null' WHERE id = 3", "fields"),
    ("UPDATE audit_records SET fields = '[1, [2]]' WHERE id = 3", "fields"),
]
UNREADABLE_ON_SQLITE = [  # PostgreSQL's column types refuse these
    ("UPDATE audit_records SET details = '{not json' WHERE id = 3", "details"),
    ("UPDATE audit_records SET at = 'yesterday' WHERE id = 3", "time"),
]


async def _unreadable_verification(url: str, edit: str) -> tuple[Any, str]:
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await _lift_trigger(conn)
            await conn.execute(text(edit))
            session = AsyncSession(bind=conn)
            result = await AuditLog(session).verify(batch=2)
            with pytest.raises(AuditUnreadable) as shown:
                await AuditLog(session).search(department="TAX")
            await transaction.rollback()
        return result, str(shown.value)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("edit", "name"), UNREADABLE)
def test_a_value_edited_to_one_govbot_never_writes_is_named_by_verify_and_search(
    chain: str, edit: str, name: str
) -> None:
    _named_as_unreadable(chain, edit, name)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("edit", "name"), UNREADABLE_ON_SQLITE)
def test_a_value_only_sqlite_stores_edited_in_is_named_by_verify_and_search(
    chain: str, edit: str, name: str
) -> None:
    _named_as_unreadable(chain, edit, name)


def _named_as_unreadable(chain: str, edit: str, name: str) -> None:
    result, shown = asyncio.run(_unreadable_verification(chain, edit))
    assert not result.ok
    assert (result.broken_id, result.checked) == (3, 2)
    assert result.problem == f"record 3 was altered (its {name} cannot be read)"
    assert shown == result.problem


async def _rewritten_verifications(url: str, earlier: list[tuple[int, str] | None]) -> list[Any]:
    """Records 2 on deleted and others appended in their place, head and all: a rewrite by someone who
    can write to the database, which the chain alone cannot show."""
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await _lift_trigger(conn)
            await conn.execute(delete(AuditRecord).where(AuditRecord.id >= 2))
            first = text(
                "UPDATE audit_head SET last_id = 1, last_hash = (SELECT hash FROM audit_records WHERE id = 1)"
            )
            await conn.execute(first)
            session = AsyncSession(bind=conn)
            log = AuditLog(session)
            await log.append(AuditKind.EXPORT, now=NOW, details={"what": "a record not written then"})
            results = [await log.verify(batch=2, earlier=copy) for copy in earlier]
            await transaction.rollback()
        return results
    finally:
        await engine.dispose()


def test_a_log_rewritten_with_its_head_is_caught_only_against_an_earlier_head(chain: str) -> None:
    async def heads() -> list[tuple[int, str]]:
        engine = db.create_engine(chain)
        try:
            async with db.sessionmaker(engine)() as session:
                entries = await AuditLog(session).search(limit=CHAIN)
        finally:
            await engine.dispose()
        return [(entry.id, entry.hash) for entry in entries]

    by_id = dict(asyncio.run(heads()))
    plain, cut_back, rewritten, before = asyncio.run(
        _rewritten_verifications(chain, [None, (CHAIN, by_id[CHAIN]), (2, by_id[2]), (1, by_id[1])])
    )
    assert plain.ok  # what an intruder with write access can do: the chain holds together
    assert before.ok  # record 1 was left as it was
    assert (cut_back.ok, cut_back.broken_id, cut_back.rewritten) == (False, 3, True)
    assert cut_back.problem == f"the log ends at record 2; an earlier verify saw {CHAIN} (cut back)"
    assert (rewritten.ok, rewritten.broken_id, rewritten.rewritten) == (False, 2, True)
    assert rewritten.problem == (
        "record 2 is not the one an earlier verify saw (the log was rewritten up to it)"
    )


async def test_a_log_that_grew_since_an_earlier_verify_passes_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await append_some(sessions, 3)
    async with sessions() as session:
        earlier = await AuditLog(session).verify()
    await append_some(sessions, 2)
    async with sessions() as session:
        result = await AuditLog(session).verify(batch=2, earlier=(earlier.checked, earlier.head_hash))
        empty_then = await AuditLog(session).verify(earlier=(0, GENESIS))
    assert result.ok
    assert result.checked == 5
    assert empty_then.ok
