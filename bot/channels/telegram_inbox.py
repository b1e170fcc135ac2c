"""The Telegram channel's inbox writes: updates stored and outcomes recorded, in batches.

Batching is group commit: an idle bot writes each item at once, a busy one many with one statement and
commit, which was a third of the inbox's cost (docs/PERFORMANCE.md, "Telegram channel").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram_updates import CHANNEL
from storage.db import Outage, autocommit, reconnecting
from storage.inbox import MAX_ACCEPT_BATCH, InboxRepository

log = logging.getLogger(__name__)

OUTCOME_BATCH = 500
"""Most outcomes written to the inbox in one transaction."""
OUTCOME_DELAY = 0.02
"""Seconds an outcome waits for others to be written with it: it is written after the reply, so the wait
delays no one, and a busy bot writes several together (one statement per update was a tenth of its CPU)."""
OUTCOME_BACKOFF_MAX = 30.0
"""Most seconds between tries to write outcomes while the database is out of reach."""
JSON = dict[str, Any]
V = TypeVar("V")


class Batched(Generic[V]):
    """Items waiting to be written to the inbox together, keyed by update id.

    The first item starts a writer, which waits ``delay`` seconds to gather more and then writes up to
    ``limit`` at a time until none are left; an item that comes in while a batch is being written goes
    in the next one.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, name: str, limit: int,
                 delay: float = 0.0) -> None:
        self._sessions = sessions
        self._name, self._limit, self._delay = name, limit, delay
        self._waiting: dict[str, V] = {}
        self._writing: dict[str, V] = {}
        self._writer: asyncio.Task[None] | None = None

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name=self._name)

    async def flush(self) -> None:
        """Wait until everything handed in so far has been written (or its failure handled)."""
        while self._writer is not None:
            await asyncio.wait({self._writer})  # not cancelled with the caller: the items still go in

    async def settle(self, timeout: float) -> bool:  # noqa: ASYNC109
        """flush(), waiting at most ``timeout`` seconds: a database that does not answer (frozen, cut off by
        the network) holds a statement forever, so at shutdown the writer is then cancelled and what waits
        is dropped. False if it was."""
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            if self._writer is not None:
                self._writer.cancel()
            self._drop_waiting()
            return False
        return True

    def _drop_waiting(self) -> None:
        self._waiting.clear()

    async def _write_all(self) -> None:
        try:
            if self._delay:
                await asyncio.sleep(self._delay)  # real time, not the channel's faked sleep: it only gathers
            while self._waiting:
                batch = dict(itertools.islice(self._waiting.items(), self._limit))
                for key in batch:
                    del self._waiting[key]
                self._writing = batch
                await self._write(batch)
        finally:
            self._writer, self._writing = None, {}

    async def _write(self, batch: dict[str, V]) -> None:
        raise NotImplementedError


class Outcomes(Batched[str | None]):
    """Outcomes of processed updates, written to the inbox one transaction per batch, not per update.

    An outcome is written OUTCOME_DELAY after it comes in, with all that came in meanwhile or while the
    last batch was being written, so a busy bot writes many together.
    While the database is out of reach, outcomes wait in memory and are written once it is back: a lost
    one left its update unprocessed, and the inbox sweep answered the citizen a second time after the
    lease. An outcome not yet written when the process stops or dies leaves its update to be processed
    again, as a crash between the reply and the write always could.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], delay: float = OUTCOME_DELAY) -> None:
        super().__init__(sessions, name="telegram-inbox-outcomes", limit=OUTCOME_BATCH, delay=delay)
        self._outage = Outage(log, "telegram inbox", "outcomes of processed updates wait until it is back")
        self._failures = 0
        self._closing = asyncio.Event()

    async def close(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Write what is waiting, trying once more if the database is out of reach, then give the rest up;
        False if the database did not answer within ``timeout`` seconds (see settle)."""
        self._closing.set()
        return await self.settle(timeout)

    def add(self, update_id: str, error: str | None) -> None:
        """Record that an update was processed (``error`` None) or failed, soon."""
        self._waiting[update_id] = error
        self._start_writer()

    async def _write(self, batch: dict[str, str | None]) -> None:
        async def write() -> None:
            async with autocommit(self._sessions) as session:  # each statement stands alone
                inbox = InboxRepository(session)
                await inbox.mark_processed_many(CHANNEL, [key for key, err in batch.items() if err is None])
                for update_id, error in batch.items():
                    if error is not None:
                        await inbox.mark_failed(CHANNEL, update_id, error)

        try:
            # Lost to a restarted database, these outcomes would have their updates answered again.
            await reconnecting(write)
        except Exception as exc:  # a bug too: the writer goes on with the outcomes that came in meanwhile
            if not self._outage.began(exc):
                log.exception("telegram: could not record the outcome of %d update(s)", len(batch))
            elif self._closing.is_set():
                log.warning("telegram: stopping with the outcome of %d update(s) unrecorded; they are "
                            "processed again after their lease", len(batch) + len(self._waiting))
                self._waiting.clear()
            else:
                self._waiting = batch | self._waiting  # first in the next batch, after a back-off
                self._failures += 1
                with contextlib.suppress(TimeoutError):  # a stop cuts the wait short
                    await asyncio.wait_for(self._closing.wait(), backoff(self._failures, OUTCOME_BACKOFF_MAX))
            return
        self._failures = 0
        self._outage.ended()


def backoff(failures: int, most: float) -> float:
    """Seconds before the next try after ``failures`` in a row: 1, 2, 4 … up to ``most``."""
    return min(2.0 ** (failures - 1), most)


class Arrivals(Batched[tuple[JSON, list["asyncio.Future[bool]"]]]):
    """Updates waiting to be stored in the inbox, written together: one statement and commit per batch.

    An update that arrives while a batch is being written goes in the next one (group commit): an idle bot
    stores each at once, a busy one many with one commit, which was a third of the inbox's cost. Whoever
    stores an update learns whether it was new once the statement has returned, i.e. once it is durably
    stored; a new one is handed to ``stored`` by the writer, so it is processed even if the webhook
    request that brought it was cancelled meanwhile.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 stored: Callable[[JSON, str], None]) -> None:
        super().__init__(sessions, name="telegram-inbox-arrivals", limit=MAX_ACCEPT_BATCH)
        self._stored = stored

    async def store(self, update_id: str, payload: JSON) -> bool:
        """Store an update (with others arriving meanwhile); False for one stored before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(update_id, (payload, []))
        waiting[1].append(future)  # the same update twice in one batch: the first is the new one
        self._start_writer()
        return await future

    async def _write(self, batch: dict[str, tuple[JSON, list[asyncio.Future[bool]]]]) -> None:
        async def write() -> set[str]:
            async with autocommit(self._sessions) as session:  # one statement: stored when it returns
                return await InboxRepository(session).accept_many(
                    CHANNEL, [(update_id, payload) for update_id, (payload, _) in batch.items()])

        try:
            new = await reconnecting(write)  # after a database restart: answered now, not when re-sent
        except asyncio.CancelledError:  # given up at shutdown: nothing waits for it any more
            _cancel(batch)
            raise
        except Exception as exc:  # every webhook waiting on the batch answers with it (503)
            for _, futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for update_id, (payload, futures) in batch.items():
            if update_id in new:
                self._stored(payload, update_id)
            for number, future in enumerate(futures):
                if not future.done():  # done: its request was cancelled
                    future.set_result(update_id in new and number == 0)

    def _drop_waiting(self) -> None:
        _cancel(self._writing)  # its cancelled writer may take a while to let go of the database
        _cancel(self._waiting)
        self._waiting.clear()


def _cancel(items: dict[str, tuple[JSON, list[asyncio.Future[bool]]]]) -> None:
    for _, futures in items.values():
        for future in futures:
            future.cancel()
