"""Retention: conversations, messages and stored free text older than the retention period are purged.

What goes is decided by the parts of storage/citizen_data.py and storage/feature_data.py (messages,
conversation state, channel updates, question and feedback texts, the web chat transcript, cases' copies of
the chat, events delivered to departments, the excerpts of those still waiting, and notices sent to
citizens); the cases themselves and aggregate counts stay. The audit log is kept: it holds no contact data
and is the proof of what was shared. A purge that removed something is itself recorded in the audit log.

A purge goes in batches of BATCH rows (a batch goes on into the next table when one runs out), each its own
short transaction with its own audit record, so a purge killed outright has recorded all it removed. In one
transaction, a citizen whose conversation it deleted waited for all of it, as a turn locks the
conversation's row (storage/citizens.py): half a second and more on a database with two million old
conversations. A purge cut short leaves nothing half done that the next one would miss: what it did not
reach still meets the conditions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import AuditKind, AuditLog
from storage.citizen_data import Key, Sweep, sweeps
from storage.db import Outage
from storage.models import utcnow

log = logging.getLogger(__name__)

INTERVAL = timedelta(days=1)
FIRST_RUN = timedelta(minutes=10)
"""The first purge waits this long after start-up, so a restart loop does not purge over and over."""
BATCH = 5000
"""Rows a purge deletes or empties in one transaction; a citizen's turn waits behind at most one batch
(milliseconds) where it waited behind the whole purge."""


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime
    counts: dict[str, int]
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def cutoff_for(now: datetime, days: int) -> datetime:
    """The moment before which data is purged."""
    return now - timedelta(days=days)


async def run_retention(
    sessions: async_sessionmaker[AsyncSession], *, days: int, now: datetime, dry_run: bool = False,
    batch: int = BATCH,
) -> RetentionResult:
    """Purge (or with ``dry_run`` only count) everything older than ``days``, ``batch`` rows at a time.

    Each transaction appends the audit record of what it purged: a run of up to ``batch`` rows (a day's, as
    a rule) writes one record, a longer one a record per ``batch`` rows."""
    cutoff = cutoff_for(now, days)
    if dry_run:
        async with sessions() as session:  # never committed
            counts = {name: sum([await sweep.count(session) for sweep in part])
                      for name, part in sweeps(cutoff).items()}
        return RetentionResult(cutoff, counts, dry_run=True)
    parts = sweeps(cutoff)
    purged = dict.fromkeys(parts, 0)
    queue = [(name, sweep) for name, part in parts.items() for sweep in part]
    after: Key | None = None
    while queue:
        async with sessions.begin() as session:
            taken, after = await _batch(session, queue, after, batch)
            if taken:
                # In the batch's transaction: a purge killed outright has recorded every batch it committed.
                await AuditLog(session).append(
                    AuditKind.RETENTION,
                    now=now,
                    basis={"retention_days": days},
                    details={"cutoff": cutoff.isoformat(), "purged": taken},
                )
        for name, count in taken.items():
            purged[name] += count
    return RetentionResult(cutoff, purged, dry_run=False)


async def _batch(
    session: AsyncSession, queue: list[tuple[str, Sweep]], after: Key | None, batch: int
) -> tuple[dict[str, int], Key | None]:
    """Up to ``batch`` rows from the sweeps at the front of ``queue`` (finished ones are taken off it): how
    many by part, and the key the first sweep left goes on after."""
    taken: dict[str, int] = {}
    room = batch
    while queue and room > 0:
        name, sweep = queue[0]
        done, after = await sweep.batch(session, after, room)
        if done:
            taken[name] = taken.get(name, 0) + done
        room -= done
        if after is None:
            queue.pop(0)
    return taken, after


class RetentionJob:
    """Runs the retention purge FIRST_RUN after start and then every INTERVAL, until cancelled."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        days: int,
        *,
        clock: Callable[[], datetime] = utcnow,
        wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
        interval: timedelta = INTERVAL,
        first_run: timedelta = FIRST_RUN,
    ) -> None:
        self.sessions = sessions
        self.days = days
        self.clock = clock
        self.wait = wait
        self.interval = interval
        self.first_run = first_run
        self.runs = 0
        self._outage = Outage(log, "retention", f"the purge is tried again every {first_run}")

    async def run_once(self) -> RetentionResult | None:
        """One purge; a failure is logged and the purge tried again (see ``run``)."""
        try:
            result = await run_retention(self.sessions, days=self.days, now=self.clock())
        except Exception as exc:
            if not self._outage.began(exc):
                log.exception("retention: the purge failed; it runs again in %s", self.interval)
            return None
        finally:
            self.runs += 1
        self._outage.ended()
        if result.total:
            log.info("retention: purged %s older than %s", result.counts, result.cutoff.date())
        return result

    async def run(self) -> None:
        """Purge on schedule until cancelled; a purge the database was out of reach for is tried again after
        FIRST_RUN, not a day later (what it purges would be kept a day past the period)."""
        await self.wait(self.first_run.total_seconds())
        while True:
            await self.run_once()
            again = self.first_run if self._outage.ongoing else self.interval
            await self.wait(again.total_seconds())
