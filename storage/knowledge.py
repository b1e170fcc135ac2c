"""The knowledge base in the database: current entries, their revisions, and the change sequence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.entry import Category, DepartmentRef, Entry, KnowledgeBase
from storage.models import Department, KbEntry, KbEntryRevision, KbMeta, KbSequence, utcnow

ChangeKind = Literal["created", "updated", "deleted", "unchanged"]
RevisionMark = tuple[int, datetime]
"""A revision's key and time: both, as a restored database may hold another revision under the same key."""
_IDS_PER_QUERY = 10_000
"""Entry ids named in one query: PostgreSQL (asyncpg) takes at most 32767 parameters in a statement."""


@dataclass(frozen=True)
class EntryChange:
    """What an import or edit does to one entry."""

    entry_id: str
    kind: ChangeKind
    fields: tuple[str, ...] = ()
    """Top-level fields that differ, for updates."""


@dataclass
class ImportPlan:
    """The changes an import would make, computed before anything is written."""

    entries: list[EntryChange] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    """Knowledge-base-wide changes, e.g. ``synonyms`` or ``department TAX``."""

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for change in self.entries if change.kind == kind)

    @property
    def has_changes(self) -> bool:
        return bool(self.meta) or any(change.kind != "unchanged" for change in self.entries)


@dataclass(frozen=True)
class Revision:
    """One stored version of an entry."""

    entry_id: str
    revision: int
    change: str
    entry: Entry | None
    source: str
    created_at: datetime


@dataclass(frozen=True)
class KnowledgeChanges:
    """What changed in the knowledge base after a given sequence number."""

    seq: int
    entries: list[Entry]
    deleted: list[str]
    meta_changed: bool

    @property
    def empty(self) -> bool:
        return not (self.entries or self.deleted or self.meta_changed)


class KnowledgeRepository:
    """Reads and writes the knowledge base within one unit of work (session)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load(self) -> tuple[KnowledgeBase, int]:
        """The whole current knowledge base and the sequence number it reflects."""
        seq = await self.current_seq()
        rows = await self.session.scalars(
            select(KbEntry).where(KbEntry.deleted.is_(False)).order_by(KbEntry.id)
        )
        departments = await self.session.scalars(select(Department).order_by(Department.code))
        meta = await self._meta()
        kb = KnowledgeBase(
            entries=[Entry.from_dict(row.data) for row in rows],
            categories=[
                Category(code=c["code"], name=c.get("name", {}), auto_answer=c.get("auto_answer", True))
                for c in meta.get("categories", [])
            ],
            departments=[DepartmentRef(code=d.code, name=dict(d.name)) for d in departments],
            synonyms=[list(group) for group in meta.get("synonyms", [])],
        )
        return kb, seq

    async def category_codes(self) -> set[str]:
        """The codes of the categories imported so far."""
        return {str(category["code"]) for category in (await self._meta()).get("categories", [])}

    async def is_empty(self) -> bool:
        return await self.session.scalar(select(KbEntry.id).limit(1)) is None

    async def current_seq(self) -> int:
        return int(await self.session.scalar(select(KbSequence.value).where(KbSequence.id == 1)) or 0)

    async def newest_revision(self) -> RevisionMark | None:
        """The key and time of the newest revision: how far a reader knows the history of edits."""
        newest = select(KbEntryRevision.pk, KbEntryRevision.created_at).order_by(KbEntryRevision.pk.desc())
        row = (await self.session.execute(newest.limit(1))).first()
        return None if row is None else (row.pk, row.created_at)

    async def has_revision(self, revision: RevisionMark) -> bool:
        """Whether the history still holds ``revision``: not after a restore from a backup taken before it,
        even once new edits have taken the change number past it again (another revision under its key)."""
        pk, created_at = revision
        found = await self.session.scalar(select(KbEntryRevision.created_at).where(KbEntryRevision.pk == pk))
        return found == created_at

    async def entry(self, entry_id: str, *, for_update: bool = False) -> Entry | None:
        """The current entry; ``for_update`` locks its row until commit, for an edit built on it."""
        row = await self.session.get(KbEntry, entry_id, with_for_update=for_update)
        return None if row is None or row.deleted else Entry.from_dict(row.data)

    async def plan_import(self, kb: KnowledgeBase) -> ImportPlan:
        """Compare ``kb`` with the database without writing anything."""
        ids = [entry.id for entry in kb.entries]
        existing: dict[str, KbEntry] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start:start + _IDS_PER_QUERY]
            existing.update((row.id, row) for row in await self.session.scalars(
                select(KbEntry).where(KbEntry.id.in_(chunk))))
        plan = ImportPlan()
        for entry in kb.entries:
            plan.entries.append(_compare(entry, existing.get(entry.id)))
        plan.meta = await self._plan_meta(kb)
        return plan

    async def apply_import(self, kb: KnowledgeBase, source: str) -> ImportPlan:
        """Write ``kb`` (all or nothing, within the caller's transaction); one revision per changed entry."""
        plan = await self.plan_import(kb)
        if not plan.has_changes:
            return plan
        seq = await self._next_seq()
        by_id = {entry.id: entry for entry in kb.entries}
        for change in plan.entries:
            if change.kind != "unchanged":
                await self._write(by_id[change.entry_id], seq, source)
        await self._write_meta(kb, seq)
        return plan

    async def save_entry(self, entry: Entry, source: str) -> EntryChange:
        """Create or update one entry as a new revision (no-op when nothing changed)."""
        change = _compare(entry, await self.session.get(KbEntry, entry.id))
        if change.kind != "unchanged":
            await self._write(entry, await self._next_seq(), source)
        return change

    async def delete_entry(self, entry_id: str, source: str) -> bool:
        """Mark an entry deleted, keeping its history; False when there was no such entry."""
        row = await self.session.get(KbEntry, entry_id)
        if row is None or row.deleted:
            return False
        row.deleted = True
        row.revision += 1
        row.seq = await self._next_seq()
        row.updated_at = utcnow()
        self.session.add(
            KbEntryRevision(
                entry_id=entry_id, revision=row.revision, change="deleted", data=None, source=source[:500]
            )
        )
        return True

    async def history(self, entry_id: str) -> list[Revision]:
        rows = await self.session.scalars(
            select(KbEntryRevision)
            .where(KbEntryRevision.entry_id == entry_id)
            .order_by(KbEntryRevision.revision)
        )
        return [
            Revision(
                row.entry_id,
                row.revision,
                row.change,
                Entry.from_dict(row.data) if row.data else None,
                row.source,
                row.created_at,
            )
            for row in rows
        ]

    async def changes_since(self, seq: int) -> KnowledgeChanges:
        """Entries and knowledge-base-wide data changed after ``seq``."""
        current = await self.current_seq()
        if current <= seq:
            return KnowledgeChanges(seq=current, entries=[], deleted=[], meta_changed=False)
        rows = list(await self.session.scalars(select(KbEntry).where(KbEntry.seq > seq)))
        meta_changed = (
            await self.session.scalar(select(KbMeta.key).where(KbMeta.seq > seq).limit(1)) is not None
        )
        return KnowledgeChanges(
            seq=current,
            entries=[Entry.from_dict(row.data) for row in rows if not row.deleted],
            deleted=[row.id for row in rows if row.deleted],
            meta_changed=meta_changed,
        )

    async def _next_seq(self) -> int:
        # The UPDATE locks the row until commit, so writers are serialised and readers never skip a change.
        result = await self.session.execute(
            update(KbSequence)
            .where(KbSequence.id == 1)
            .values(value=KbSequence.value + 1)
            .returning(KbSequence.value)
        )
        return int(result.scalar_one())

    async def _write(self, entry: Entry, seq: int, source: str) -> None:
        data = entry.to_dict()
        row = await self.session.get(KbEntry, entry.id)
        if row is None:
            row = KbEntry(
                id=entry.id,
                category=entry.category,
                department=entry.department,
                data=data,
                revision=1,
                deleted=False,
                seq=seq,
                updated_at=utcnow(),
            )
            self.session.add(row)
            change = "created"
            # The revision's foreign key needs the entry row first.
            await self.session.flush()
        else:
            change = "created" if row.deleted else "updated"
            row.category, row.department, row.data = entry.category, entry.department, data
            row.revision += 1
            row.deleted = False
            row.seq = seq
            row.updated_at = utcnow()
        self.session.add(
            KbEntryRevision(
                entry_id=entry.id, revision=row.revision, change=change, data=data, source=source[:500]
            )
        )

    async def _meta(self) -> dict[str, Any]:
        return {row.key: row.value for row in await self.session.scalars(select(KbMeta))}

    async def _plan_meta(self, kb: KnowledgeBase) -> list[str]:
        changes: list[str] = []
        meta = await self._meta()
        if kb.synonyms and _synonym_value(kb) != meta.get("synonyms"):
            changes.append("synonyms")
        if kb.categories and _category_value(kb.categories, meta.get("categories", [])) != meta.get(
            "categories"
        ):
            changes.append("categories")
        for ref in kb.departments:
            row = await self.session.get(Department, ref.code)
            if row is None:
                changes.append(f"department {ref.code} (new)")
            elif ref.name and dict(row.name) != ref.name:
                changes.append(f"department {ref.code} (name)")
        return changes

    async def _write_meta(self, kb: KnowledgeBase, seq: int) -> None:
        meta = await self._meta()
        if kb.synonyms and _synonym_value(kb) != meta.get("synonyms"):
            await self._set_meta("synonyms", _synonym_value(kb), seq)
        if kb.categories:
            value = _category_value(kb.categories, meta.get("categories", []))
            if value != meta.get("categories"):
                await self._set_meta("categories", value, seq)
        for ref in kb.departments:
            row = await self.session.get(Department, ref.code)
            if row is None:
                self.session.add(Department(code=ref.code, name=dict(ref.name), enabled=True))
            elif ref.name and dict(row.name) != ref.name:
                row.name = dict(ref.name)

    async def _set_meta(self, key: str, value: Any, seq: int) -> None:
        row = await self.session.get(KbMeta, key)
        if row is None:
            self.session.add(KbMeta(key=key, value=value, seq=seq))
        else:
            row.value, row.seq = value, seq


def _compare(entry: Entry, row: KbEntry | None) -> EntryChange:
    if row is None or row.deleted:
        return EntryChange(entry.id, "created")
    new = entry.to_dict()
    differing = tuple(sorted(key for key in set(new) | set(row.data) if new.get(key) != row.data.get(key)))
    return EntryChange(entry.id, "updated", differing) if differing else EntryChange(entry.id, "unchanged")


def _synonym_value(kb: KnowledgeBase) -> list[list[str]]:
    return [list(group) for group in kb.synonyms]


def _category_value(new: Iterable[Category], stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored categories with ``new`` merged in by code, in a stable order."""
    merged = {item["code"]: item for item in stored}
    merged.update({category.code: category.to_dict() for category in new})
    return [merged[code] for code in sorted(merged)]
