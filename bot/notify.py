"""Citizen notices go out through the citizen's channel; a channel outage delays them, never drops them.

Channels register a :class:`Sender` in ``app[SENDERS]``; the notifier claims due notices of those channels
(one at a time per chat, so they arrive in order), renders them in the citizen's language (the one they
chose, else the one the notice was queued in) and sends them.
A failed send is retried with back-off; only :class:`Unreachable` (e.g. the citizen blocked the bot) or a
week of failures ends a notice as dead, with an ERROR in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.polling import PollTimer
from handlers.escalation import notice_replies
from handlers.kept import KEPT, at_rest
from handlers.types import Reply
from storage import cases as _cases  # noqa: F401 - the notices' foreign keys point at its tables
from storage.citizens import CitizenRepository
from storage.db import Outage, reconnecting
from storage.models import utcnow
from storage.notices import Notice, NoticeRepository

log = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
"""Waits after the 1st, 2nd… failed send; after the last, every hour until GIVE_UP_AFTER."""
GIVE_UP_AFTER = timedelta(days=7)
JITTER = 0.2


class Unreachable(Exception):
    """A channel's way of saying a chat can never be reached (e.g. the citizen blocked the bot)."""


class Sender(Protocol):
    """What a channel offers the notifier: send replies to a chat, raising on failure.

    ``thread``: the chat's thread (a forum topic) they answer, for a channel that has threads; one that is
    gone is the channel's to fall back from, to the chat itself.
    """

    async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None: ...


@dataclass(frozen=True)
class Sent:
    """What became of one notice."""

    notice: Notice
    text: str | None
    error: str | None = None
    retry_at: datetime | None = None
    parts_sent: int = 0
    """After a failure: the notice's messages the chat has, earlier attempts' too; a retry sends the rest."""


PARTS_SENT = "parts_sent"
"""Key of a notice's data: how many of its messages reached the chat before an attempt failed."""


def parts_sent(notice: Notice) -> int:
    """Messages of the notice already in the chat (0 unless an attempt failed part-way)."""
    value = notice.data.get(PARTS_SENT, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def notice_retry_at(notice: Notice, now: datetime, rng: random.Random) -> datetime | None:
    """When to try a failed notice again; None once it has failed for GIVE_UP_AFTER.

    Failed through the whole back-off schedule as well: a notice that waited a week for its channel (no
    process could send through it) is not given up at the first blip once it can.
    """
    if now - notice.created_at >= GIVE_UP_AFTER and notice.attempts > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[min(notice.attempts, len(RETRY_DELAYS)) - 1]
    return now + delay * rng.uniform(1 - JITTER, 1 + JITTER)


class Notifier:
    """Sends queued notices: ``run_once`` for one round (tests), ``run`` until ``stop``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        poll: float = 0.2,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 32,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.senders = senders
        self.clock = clock
        self.rng = rng or random.Random()
        self.lease = lease
        self.batch = batch
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._poll = PollTimer(poll)

    def wake(self) -> None:
        """Look for due notices now instead of at the next poll."""
        self._poll.wake()

    def stop(self) -> None:
        """Finish the round in progress and return from :meth:`run`."""
        self._poll.stop()

    async def run_once(self) -> int:
        """Claim due notices of the registered channels, send them, record the outcome; how many."""
        async with self.sessions.begin() as session:
            notices = await NoticeRepository(session).claim(
                sorted(self.senders), self.name, self.clock(), limit=self.batch, lease=self.lease
            )
            if not notices:
                return 0
            languages = await _languages(session, notices)
        outcomes = await asyncio.gather(
            *(self._send(notice, language) for notice, language in zip(notices, languages, strict=True))
        )
        # Outcomes lost to a restarted database would have the citizen told a second time.
        await reconnecting(lambda: self._record(outcomes))
        return len(outcomes)

    async def run(self) -> None:
        """Send until :meth:`stop`; a failing round is logged and the next one tried after the poll.

        A database out of reach is one warning when it goes and one line when it is back, not a traceback
        every poll."""
        outage = Outage(log, f"notifier {self.name}", "notices wait until it is back")
        while not self._poll.stopping:
            try:
                sent = await self.run_once()
            except Exception as exc:
                sent = 0
                if not outage.began(exc):
                    log.exception("notifier %s: a round failed; trying again shortly", self.name)
            else:
                outage.ended()
            if sent < self.batch:
                await self._poll.pause()

    async def _send(self, notice: Notice, language: str) -> Sent:
        try:
            replies = notice_replies(notice.kind, notice.data, language)
        except (ValueError, KeyError, TypeError) as exc:
            return Sent(notice, None, error=f"cannot render: {exc}")
        sender = self.senders.get(notice.channel)
        if sender is None:
            return Sent(notice, None, error="no sender", retry_at=self.clock())
        sent = parts_sent(notice)

        async def deliver() -> None:
            # One message at a time, counted, so a failure part-way is not followed by the first part again.
            nonlocal sent
            for reply in replies[sent:]:
                await sender.send(notice.chat_id, [reply], thread=notice.thread_id)
                sent += 1

        try:
            await asyncio.wait_for(deliver(), timeout=self.lease.total_seconds() / 2)
        except Unreachable as exc:
            return Sent(notice, None, error=f"unreachable: {exc}", parts_sent=sent)
        except Exception as exc:  # any failure of the channel is retried: nothing is dropped
            error = f"{type(exc).__name__}: {exc}"[:500]
            retry_at = notice_retry_at(notice, self.clock(), self.rng)
            return Sent(notice, None, error=error, retry_at=retry_at, parts_sent=sent)
        if notice.kind == KEPT:  # replies of a turn, which the turn recorded in the conversation
            return Sent(notice, None)
        return Sent(notice, "\n\n".join(r.text for r in replies if r.text))

    async def _record(self, outcomes: Sequence[Sent]) -> None:
        now = self.clock()
        async with self.sessions.begin() as session:
            notices = NoticeRepository(session)
            for outcome in outcomes:
                notice = outcome.notice
                if outcome.error is None:
                    # A notice erased with its citizen while it was on its way joins no conversation.
                    kept = await notices.sent(notice.id, self.name, now, data=_finished(notice))
                    if kept and notice.citizen_id is not None and outcome.text:
                        await CitizenRepository(session).record_message(
                            notice.citizen_id, "out", outcome.text, now=now
                        )
                    continue
                moved = outcome.parts_sent > parts_sent(notice)
                progress = notice.data | {PARTS_SENT: outcome.parts_sent} if moved else None
                if outcome.retry_at is None:
                    progress = _finished(notice) or progress
                await notices.failed(
                    notice.id, self.name, outcome.error, retry_at=outcome.retry_at, data=progress
                )
                if outcome.retry_at is None:
                    log.error(
                        "notice %d (%s of case %s) to %s chat is dead: %s",
                        notice.id,
                        notice.kind,
                        notice.case_id,
                        notice.channel,
                        outcome.error,
                    )
                else:
                    log.warning(
                        "notice %d to %s failed (%s); retry at %s",
                        notice.id,
                        notice.channel,
                        outcome.error,
                        outcome.retry_at,
                    )


def _finished(notice: Notice) -> dict[str, Any] | None:
    """What a notice's data becomes once it is finished, if not all of it is kept: kept replies are masked."""
    return at_rest(notice.data) if notice.kind == KEPT else None


async def _languages(session: AsyncSession, notices: Sequence[Notice]) -> list[str]:
    """Each notice's language: the one its citizen chose (``/start``'s buttons), else its own.

    A notice is queued in the case's language; a citizen who chose another since reads it in theirs,
    as /status already answers them.
    """
    ids = [notice.citizen_id for notice in notices if notice.citizen_id is not None]
    chosen = await CitizenRepository(session).chosen_languages(ids) if ids else {}
    return [chosen.get(notice.citizen_id or 0) or notice.language for notice in notices]
