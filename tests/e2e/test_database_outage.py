"""PostgreSQL going away under a running bot and coming back: nothing lost, one line each, no restart."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import DATABASE_STOP_TIMEOUT, INBOX_LEASE, SWEEP_SECONDS, TelegramChannel
from bot.channels.telegram_updates import CHANNEL
from bot.keys import SESSIONS
from handlers.start import help_text
from handlers.types import Incoming, Reply
from storage import db
from storage.models import InboxUpdate, utcnow
from tests.e2e.conftest import RunningBot, StartBot
from tests.fakes.telegram_server import FakeTelegramServer
from tests.private_postgres import PrivatePostgres, private_postgres
from tests.processes import until

pytestmark = pytest.mark.postgres

CITIZEN = 42
TELEGRAM_LOG = "bot.channels.telegram"
INBOX_LOG = "bot.channels.telegram_inbox"


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
async def database_url(server: PrivatePostgres) -> str:
    """The private server's database, migrated: what start_bot and the engine fixture use here."""
    engine = db.create_engine(server.url)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    return server.url


async def test_webhook_updates_refused_in_an_outage_are_one_line_each_and_answered_once_it_is_back(
        start_bot: StartBot, telegram: FakeTelegramServer, server: PrivatePostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    await start_bot(webhook=True)
    server.stop()
    update = telegram.message(CITIZEN, "/help")
    caplog.clear()
    assert [await telegram.deliver(update) for _ in range(3)] == [503, 503, 503]  # Telegram sends again
    logged = [r for r in caplog.records if r.name == TELEGRAM_LOG]
    assert [r.levelno for r in logged] == [logging.WARNING] * 3
    assert not any(r.exc_info for r in logged)
    assert "the database is unavailable" in logged[0].getMessage()

    server.start()
    assert await telegram.deliver(update) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=10)
    assert reply.text == help_text("en")


def answer_as_the_database_goes(bot: RunningBot, server: PrivatePostgres) -> None:
    """/slow is answered, and the database stops as the answer goes out."""

    async def answered(incoming: Incoming) -> list[Reply]:
        server.stop()
        return [Reply("Here is your answer.")]

    bot.puppet.scripts["/slow"] = answered


async def test_a_turn_answered_just_before_the_database_went_is_not_answered_again_once_it_is_back(
        start_bot: StartBot, telegram: FakeTelegramServer, server: PrivatePostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    # The reply went out, then the outcome could not be written: the update stayed unprocessed in the
    # inbox, and the sweep answered the citizen a second time once its lease ran out.
    bot = await start_bot(webhook=True)
    answer_as_the_database_goes(bot, server)
    update = telegram.message(CITIZEN, "/slow")
    assert await telegram.deliver(update) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == "Here is your answer."
    await until_the_inbox_logged(caplog)  # the outcome met the outage

    server.start()
    await bot.channel.idle()
    await age(bot.app[SESSIONS], str(update["update_id"]))
    assert await bot.channel.recover() == 0
    await bot.channel.idle()
    assert len(bot.puppet.seen) == 1
    assert len(telegram.sent) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_stopping_while_outcomes_wait_for_the_database_does_not_wait_for_it(
        start_bot: StartBot, telegram: FakeTelegramServer, server: PrivatePostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    bot = await start_bot(webhook=True)
    answer_as_the_database_goes(bot, server)
    assert await telegram.deliver(telegram.message(CITIZEN, "/slow")) == 200
    await until_the_inbox_logged(caplog)  # the outcome met the outage
    await asyncio.wait_for(bot.stop(), 10)
    assert "stopping with the outcome of 1 update(s) unrecorded" in caplog.text


async def until_the_inbox_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def logged() -> bool:
        return any(record.name == INBOX_LOG for record in caplog.records)

    await until(logged, timeout=10)


async def age(sessions: async_sessionmaker[AsyncSession], update_id: str) -> None:
    """Make the update's attempt older than the inbox lease, as the sweep would find it minutes later."""
    async with sessions.begin() as session:
        row = await session.get(InboxUpdate, (CHANNEL, update_id))
        assert row is not None
        row.received_at = row.attempted_at = utcnow() - INBOX_LEASE - timedelta(seconds=1)


async def test_the_telegram_channel_stops_while_the_database_does_not_answer(
        start_bot: StartBot, telegram: FakeTelegramServer, server: PrivatePostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    # A database that hangs instead of refusing (a frozen host, a failover whose old primary is cut off)
    # held the statement storing an update forever, and the stop waited for it: `govbot run` never ended.
    bot = await start_bot(webhook=True)
    assert await telegram.deliver(telegram.message(CITIZEN, "/help")) == 200  # the pool holds connections
    await telegram.wait_for_sent(chat_id=CITIZEN)
    await bot.channel.idle()
    server.freeze()
    try:
        storing = asyncio.create_task(bot.channel.receive(telegram.message(CITIZEN + 1, "/help")))
        await asyncio.sleep(0)  # its statement is on its way to the database
        started = time.monotonic()
        await asyncio.wait_for(bot.channel.stop(), 30)
        assert time.monotonic() - started < 2 * DATABASE_STOP_TIMEOUT
        assert storing.cancelled()  # never answered 200: Telegram sends it again
        assert "updates being stored were given up" in caplog.text
    finally:
        server.thaw()


async def test_polling_resumes_within_seconds_of_the_database_returning_after_a_long_outage(
        start_bot: StartBot, telegram: FakeTelegramServer, server: PrivatePostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    # The poller's back-off grew to a minute while the database was down: citizens waited that long after
    # it was back. It still backs off (1, 2, 4 s …), only never beyond a few seconds for the database, and
    # logs the outage once when it begins and once when it ends, not at every poll.
    caplog.set_level(logging.INFO, logger=TELEGRAM_LOG)
    await start_bot()
    await telegram.wait_for_call("getUpdates")  # a long poll, waiting for the message
    caplog.clear()
    server.stop()
    telegram.mark()
    telegram.send_message(CITIZEN, "/help")
    polls = await telegram.wait_for_call("getUpdates", 5, timeout=30)  # after waits of 1, 2, 4, 5 and 5 s
    assert [int(later.time - earlier.time) for earlier, later in itertools.pairwise(polls)] == [2, 4, 5, 5]
    server.start()
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=7)
    assert reply.text == help_text("en")
    logged = [r for r in caplog.records if r.name == TELEGRAM_LOG and "polling" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.WARNING, logging.INFO]
    assert "the database is out of reach" in logged[0].getMessage()
    assert "reachable again" in logged[1].getMessage()
    assert not any(r.exc_info for r in logged)


class Sweeps:
    """The inbox sweep's waits, each held until the test lets the next sweep run."""

    def __init__(self) -> None:
        self._waiting: asyncio.Queue[float] = asyncio.Queue()
        self._go: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self._waiting.put_nowait(seconds)
        await self._go.get()

    async def run(self, count: int) -> None:
        """Let ``count`` sweeps run, one after the other; back once the last is over (the next wait began)."""
        for _ in range(count):
            self._go.put_nowait(None)
            assert await self._waiting.get() == SWEEP_SECONDS

    async def started(self) -> None:
        """Back once the sweep waits for its first turn."""
        assert await self._waiting.get() == SWEEP_SECONDS


async def test_an_outage_is_one_line_from_the_inbox_sweep_when_it_begins_and_one_when_it_ends(
        start_bot: StartBot, server: PrivatePostgres, caplog: pytest.LogCaptureFixture) -> None:
    # The sweep logged a warning every SWEEP_SECONDS for as long as the database was down.
    caplog.set_level(logging.INFO, logger=TELEGRAM_LOG)
    bot = await start_bot()
    running = bot.channel
    sweeps = Sweeps()
    channel = TelegramChannel(running.application, running.conversation, bot.app[SESSIONS], running.metrics,
                              rate_limited=False, sleep=sweeps.sleep)
    sweeping = asyncio.create_task(channel._sweep())
    try:
        await sweeps.started()
        server.stop()
        await sweeps.run(3)  # refused
        server.start()
        await sweeps.run(3)  # answered
    finally:
        sweeping.cancel()
    logged = [r for r in caplog.records if r.name == TELEGRAM_LOG and "sweep" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.WARNING, logging.INFO]
    assert "the database is out of reach" in logged[0].getMessage()
    assert "reachable again" in logged[1].getMessage()
    assert not any(r.exc_info for r in logged)
