"""Keep a process's matcher in step with the knowledge base in the database, without restarts."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.entry import Category, Entry, KnowledgeBase
from knowledge.matcher import RECENT_MATCHES, Matcher, MatcherConfig
from storage import db
from storage.knowledge import KnowledgeRepository, RevisionMark

log = logging.getLogger(__name__)


class LiveKnowledge:
    """The knowledge base a process answers from: loaded once, then updated entry by entry."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], config: MatcherConfig | None = None, *,
        recent: int = RECENT_MATCHES,
    ) -> None:
        """``recent``: matches kept for questions asked again (see ``Matcher``)."""
        self._sessions = sessions
        self._config = config
        self._recent = recent
        self.kb = KnowledgeBase()
        self.matcher = Matcher(self.kb, config, recent=recent)
        self.seq = -1
        self.loaded = False
        self._revision: RevisionMark | None = None
        """The newest revision known: with ``seq``, how far this process knows the history."""

    async def load(self) -> None:
        """Read the whole knowledge base and build the index."""
        await self._read()
        log.info("knowledge base loaded: %d entries at change %d", len(self.kb.entries), self.seq)

    async def refresh(self) -> bool:
        """Apply changes made since the last look (by any process); True when something changed.

        After a restore from a backup the change numbers go back: the whole knowledge base is read again."""
        async with self._sessions() as session:
            repo = KnowledgeRepository(session)
            newest = await repo.newest_revision()  # before the changes: it is one of them or older
            changes = await repo.changes_since(self.seq)
            # A restore from an older backup puts the change number back, or loses the newest revision known.
            restored = changes.seq < self.seq or (
                self._revision not in (None, newest) and not await repo.has_revision(self._revision))
        if restored:
            known = self.seq
            await self._read()
            log.warning("knowledge base: change %d is no longer in the database (restored from a backup?); "
                        "read again whole: %d entries at change %d", known, len(self.kb.entries), self.seq)
            return True
        self._revision = newest
        if changes.empty:
            self.seq = max(self.seq, changes.seq)
            return False
        if changes.meta_changed:
            # Synonyms and category policies affect every entry's index: rebuild once.
            await self.load()
            return True
        for entry in changes.entries:
            self.matcher.upsert(entry)
        for entry_id in changes.deleted:
            self.matcher.remove(entry_id)
        self._update_entries(changes.entries, changes.deleted)
        self.seq = changes.seq
        log.info(
            "knowledge base updated to change %d: %d changed, %d deleted",
            changes.seq,
            len(changes.entries),
            len(changes.deleted),
        )
        return True

    async def follow(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled; a failed look is logged and retried.

        A database out of reach is one warning when it goes and one line when it is back, not a traceback
        every ``interval``."""
        outage = db.Outage(log, "knowledge base refresh",
                           f"keeping the current index and trying again every {interval:g} s")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception as exc:
                if not outage.began(exc):
                    log.exception("knowledge base refresh failed; keeping the current index")
                continue
            outage.ended()

    async def _read(self) -> None:
        async with self._sessions() as session:
            repo = KnowledgeRepository(session)
            newest = await repo.newest_revision()  # before the entries: it is one of them or older
            kb, seq = await repo.load()
        self.kb = kb
        self.matcher = Matcher(kb, self._config, recent=self._recent)
        self.seq, self._revision = seq, newest
        self.loaded = True

    def entry(self, entry_id: str) -> Entry | None:
        return self.matcher.entry(entry_id)

    def category(self, code: str) -> Category | None:
        return next((c for c in self.kb.categories if c.code == code), None)

    def entries_in(self, category: str) -> list[Entry]:
        """Entries of a category, in a stable order for browsing."""
        return sorted((e for e in self.kb.entries if e.category == category), key=lambda e: e.id)

    def _update_entries(self, changed: list[Entry], deleted: list[str]) -> None:
        gone = set(deleted) | {entry.id for entry in changed}
        self.kb.entries = [e for e in self.kb.entries if e.id not in gone] + changed
