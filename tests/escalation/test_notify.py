"""The notifier: department replies reach the citizen's channel in order; an outage delays, never drops."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.keys import SENDERS, SESSIONS, SETTINGS, WAKE
from bot.notify import GIVE_UP_AFTER, RETRY_DELAYS, Notifier, Sender, Unreachable
from bot.workers import outbox_workers
from handlers.i18n import t
from handlers.types import Reply
from storage import citizen_data
from storage.cases import CaseRepository, CaseStatus
from storage.citizens import CitizenRepository
from storage.models import Message, utcnow
from storage.notices import CitizenNotice, NoticeRepository
from tests.conftest import close_every_connection
from tests.escalation.conftest import NOW, Dept, open_case

Sessions = async_sessionmaker[AsyncSession]


class RecordingSender:
    """A channel that records what it sends, or fails as told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Reply]]] = []
        self.failures: list[Exception] = []

    async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((chat_id, replies))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def notifier(sessions: Sessions, sender: RecordingSender, clock: Clock) -> Notifier:
    return Notifier(sessions, {"test": sender}, clock=clock, rng=random.Random(5), name="n1")


async def reply(sessions: Sessions, case_id: int, text: str) -> None:
    async with sessions.begin() as session:
        await CaseRepository(session).reply(case_id, "TRANSPORT", text, NOW)


async def statuses(sessions: Sessions) -> list[tuple[str, int, str | None]]:
    async with sessions() as session:
        rows = await session.scalars(select(CitizenNotice).order_by(CitizenNotice.id))
        return [(r.status, r.attempts, r.last_error) for r in rows]


async def test_replies_reach_the_chat_in_order_and_join_the_conversation(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    case = await open_case(sessions)
    await reply(sessions, case.id, "First")
    await reply(sessions, case.id, "Second")
    n = notifier(sessions, sender, clock)
    assert await n.run_once() == 1  # one at a time per chat
    assert await n.run_once() == 1
    assert await n.run_once() == 0
    assert [(chat, replies[0].text.split("\n\n")[1]) for chat, replies in sender.sent] == [
        ("42", "First"),
        ("42", "Second"),
    ]
    assert "Transport Bureau" in sender.sent[0][1][0].text
    async with sessions() as session:
        out = (await session.scalars(select(Message.text).where(Message.direction == "out"))).all()
    assert [text.split("\n\n")[1] for text in out] == ["First", "Second"]


async def test_a_notice_is_in_the_language_the_citizen_chose_after_opening_the_case(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    case = await open_case(sessions)  # opened in English
    async with sessions.begin() as session:
        await CitizenRepository(session).set_language(case.citizen_id or 0, "zh")
    await reply(sessions, case.id, "Your refund was sent.")
    await notifier(sessions, sender, clock).run_once()
    [(_, [message])] = sender.sent
    assert message.text.startswith(t("zh", "notice_reply", department="局", ticket=case.ticket))


async def test_an_outage_delays_the_notice_and_it_is_sent_later(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    case = await open_case(sessions)
    await reply(sessions, case.id, "Hello")
    sender.failures = [ConnectionError("Telegram is down"), TimeoutError()]
    n = notifier(sessions, sender, clock)
    await n.run_once()
    assert await statuses(sessions) == [("pending", 1, "ConnectionError: Telegram is down")]
    assert await n.run_once() == 0  # not before the retry time
    clock.now += timedelta(seconds=7)
    await n.run_once()
    clock.now += timedelta(seconds=40)
    await n.run_once()
    assert await statuses(sessions) == [("sent", 3, None)]
    assert len(sender.sent) == 1


class SecondCallFails(RecordingSender):
    """A channel whose second API call fails once, as a network blip between two messages would."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
        for one in replies:  # a channel makes one API call per message
            self.calls += 1
            if self.calls == 2:
                raise ConnectionError("network blip")
            self.sent.append((chat_id, [one]))


async def test_a_notice_that_failed_part_way_sends_only_what_is_left(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock
) -> None:
    case = await open_case(sessions)
    async with sessions.begin() as session:
        await CaseRepository(session).set_status(case.id, "TRANSPORT", CaseStatus.RESOLVED, None, NOW)
    sender = SecondCallFails()
    n = notifier(sessions, sender, clock)
    await n.run_once()
    clock.now += timedelta(minutes=1)
    await n.run_once()
    assert [replies[0].kind for _, replies in sender.sent] == ["notice_status", "csat_ask"]
    assert [status for status, _, _ in await statuses(sessions)] == ["sent"]


async def test_a_notice_on_its_way_while_the_citizen_erases_their_data_is_not_written_back(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock
) -> None:
    case = await open_case(sessions)
    assert case.citizen_id is not None
    citizen_id = case.citizen_id
    await reply(sessions, case.id, "Dear Li Lei, your wallet is at the Harbour Road depot")

    class ErasingSender(RecordingSender):
        async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
            async with sessions.begin() as session:  # the citizen's /forget commits meanwhile
                await citizen_data.erase(session, citizen_id, clock())
            await super().send(chat_id, replies)

    assert await notifier(sessions, ErasingSender(), clock).run_once() == 1
    async with sessions() as session:
        texts = (await session.scalars(select(Message.text).where(Message.user_id == citizen_id))).all()
    assert not [text for text in texts if "Li Lei" in text]


async def test_an_unreachable_chat_ends_the_notice_with_an_error_in_the_log(
    sessions: Sessions,
    departments: dict[str, Dept],
    sender: RecordingSender,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case = await open_case(sessions)
    await reply(sessions, case.id, "Hello")
    sender.failures = [Unreachable("Forbidden: bot was blocked by the user")]
    await notifier(sessions, sender, clock).run_once()
    assert await statuses(sessions) == [("dead", 1, "unreachable: Forbidden: bot was blocked by the user")]
    assert any(r.levelno == logging.ERROR for r in caplog.records)


async def test_a_week_of_failures_ends_a_notice(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    case = await open_case(sessions)
    await reply(sessions, case.id, "Hello")
    sender.failures = [ConnectionError("still down")] * (len(RETRY_DELAYS) + 1)
    n = notifier(sessions, sender, clock)
    for _ in RETRY_DELAYS:
        await n.run_once()
        clock.now += timedelta(hours=2)
    assert (await statuses(sessions))[0][0] == "pending"
    clock.now = NOW + GIVE_UP_AFTER
    await n.run_once()
    assert (await statuses(sessions))[0][0] == "dead"


async def test_a_notice_that_waited_a_week_for_its_channel_is_not_given_up_at_its_first_failure(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    case = await open_case(sessions)
    await reply(sessions, case.id, "Hello")
    clock.now += GIVE_UP_AFTER + timedelta(days=1)  # no process sent through its channel meanwhile
    sender.failures = [ConnectionError("network blip")]
    n = notifier(sessions, sender, clock)
    await n.run_once()
    clock.now += timedelta(minutes=1)
    await n.run_once()
    assert [status for status, _, _ in await statuses(sessions)] == ["sent"]


async def test_notices_of_channels_without_a_sender_wait(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    case = await open_case(sessions)
    await reply(sessions, case.id, "Hello")
    assert await Notifier(sessions, {"telegram": sender}, clock=clock).run_once() == 0
    async with sessions() as session:
        assert len(await NoticeRepository(session).pending()) == 1


async def test_a_notice_that_cannot_be_rendered_is_dead_not_retried_forever(
    sessions: Sessions, departments: dict[str, Dept], sender: RecordingSender, clock: Clock
) -> None:
    async with sessions.begin() as session:
        await NoticeRepository(session).enqueue(
            citizen_id=None,
            channel="test",
            chat_id="42",
            language="en",
            case_id=None,
            kind="mystery",
            data={},
            now=NOW,
        )
    await notifier(sessions, sender, clock).run_once()
    assert (await statuses(sessions))[0][0] == "dead"
    assert sender.sent == []


class RestartingSender(RecordingSender):
    """Sends, while the database server restarts under the notifier's pool."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
        await close_every_connection(self.url)
        await super().send(chat_id, replies)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_notice_is_recorded_sent_when_the_database_restarted_while_sending(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock, database_url: str
) -> None:
    # Had the outcome been lost, the lease would run out and the citizen be told twice.
    case = await open_case(sessions)
    await reply(sessions, case.id, "First")
    sender = RestartingSender(database_url)
    assert await Notifier(sessions, {"test": sender}, clock=clock, name="n1").run_once() == 1
    assert [status for status, _, _ in await statuses(sessions)] == ["sent"]
    assert len(sender.sent) == 1


class DatabaseDown:
    """The notifier's sessions while the database is out of reach for the first ``rounds`` transactions."""

    def __init__(self, sessions: Sessions, rounds: int) -> None:
        self.sessions = sessions
        self.rounds = rounds

    def begin(self) -> Any:
        if self.rounds:
            self.rounds -= 1
            raise OperationalError("BEGIN", None, ConnectionRefusedError(111, "Connect call failed"))
        return self.sessions.begin()


async def test_a_database_outage_is_one_warning_and_the_notices_go_out_once_it_is_back(
    sessions: Sessions,
    departments: dict[str, Dept],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.notify")
    case = await open_case(sessions)
    await reply(sessions, case.id, "Hello")

    class StoppingSender(RecordingSender):
        async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
            await super().send(chat_id, replies)
            n.stop()

    sender = StoppingSender()
    n = Notifier(cast(Sessions, DatabaseDown(sessions, 20)), {"test": sender}, clock=clock, poll=0, name="n1")
    await asyncio.wait_for(n.run(), timeout=30)
    assert len(sender.sent) == 1
    problems = [r for r in caplog.records if r.name == "bot.notify" and r.levelno >= logging.WARNING]
    assert [(r.levelno, r.exc_info) for r in problems] == [(logging.WARNING, None)]
    assert "out of reach" in problems[0].getMessage()
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_a_bot_that_leaves_the_webhooks_to_govbot_dispatch_still_tells_its_citizens(
    sessions: Sessions, departments: dict[str, Dept], database_url: str
) -> None:
    # `govbot dispatch` has no channel to send through: only the `govbot run` processes can tell citizens.
    case = await open_case(sessions, now=utcnow())
    async with sessions.begin() as session:
        await CaseRepository(session).reply(case.id, "TRANSPORT", "Hello", utcnow())
    told = asyncio.Event()

    class TellingSender(RecordingSender):
        async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
            await super().send(chat_id, replies)
            told.set()

    app = web.Application()
    app[SETTINGS] = Settings(database_url=database_url, dispatch_in_run=False)
    app[SESSIONS] = sessions
    senders: dict[str, Sender] = {"test": TellingSender()}
    app[SENDERS] = senders
    app[WAKE] = []
    running = outbox_workers(app)
    await anext(running)
    try:
        await asyncio.wait_for(told.wait(), timeout=10)
    finally:
        await anext(running, None)
