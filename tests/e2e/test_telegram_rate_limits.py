"""Telegram's 429s with govbot's own rate limiter off: replies wait behind each one and still arrive."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import RETRY_AFTER_MAX
from handlers.start import help_text
from storage.inbox import RELEASED
from tests.e2e.conftest import StartBot, inbox
from tests.fakes.telegram_server import FakeTelegramServer

CITIZEN = 42


@pytest.mark.parametrize("refusals", [2, 3])
async def test_a_reply_waits_out_several_429s_in_a_row_and_arrives(
        start_bot: StartBot, telegram: FakeTelegramServer, refusals: int) -> None:
    await start_bot()
    telegram.fail_next("sendMessage", 429, retry_after=1, times=refusals)
    telegram.send_message(CITIZEN, "/help")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=refusals + 5)
    assert reply.text == help_text("en")
    calls = [call for call in telegram.calls if call.method == "sendMessage"]
    assert [call.status for call in calls] == [429] * refusals + [200]
    assert all(later.time - earlier.time >= 1.0 for earlier, later in itertools.pairwise(calls))


async def test_a_429_asking_for_more_than_the_most_a_reply_waits_is_not_waited_for(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.fail_next("sendMessage", 429, retry_after=int(RETRY_AFTER_MAX) + 1, times=2)
    telegram.send_message(CITIZEN, "/help")
    await telegram.wait_for_call("sendMessage", 2)  # the reply, then the apology: both refused
    await asyncio.wait_for(bot.channel.idle(), 5)


async def test_stopping_while_a_reply_waits_behind_429s_is_quick_and_leaves_the_update_for_the_next_start(
        start_bot: StartBot, telegram: FakeTelegramServer,
        sessions: async_sessionmaker[AsyncSession]) -> None:
    bot = await start_bot(webhook=True)
    telegram.fail_next("sendMessage", 429, retry_after=30, times=3)
    update = telegram.message(CITIZEN, "/help")
    assert await telegram.deliver(update) == 200
    await telegram.wait_for_call("sendMessage")
    started = time.monotonic()
    await asyncio.wait_for(bot.channel.stop(timeout=0.5), 10)
    assert time.monotonic() - started < 5
    stored = (await inbox(sessions))[str(update["update_id"])]
    assert (stored.processed_at, stored.attempted_at) == (None, RELEASED)
