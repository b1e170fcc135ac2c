"""Replies Telegram does not take after the channel's own retries wait as citizen notices, and arrive once.

The channel gives up on a reply after a 5xx, a network error, more than RETRY_AFTER_MAX seconds of 429s, or
(with the rate limiter) more than RATE_LIMIT_RETRIES 429s in a row; the turn is not run again. What it could
not send is kept, in order, and the notifier delivers it when Telegram takes it. Replies to later messages
that Telegram takes at once may arrive before replies still kept.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import RATE_LIMIT_RETRIES
from bot.keys import SESSIONS
from handlers.kept import KEPT
from handlers.types import Button, Document, Incoming, Reply
from storage.citizens import CitizenRepository
from storage.models import Message
from storage.notices import CitizenNotice, NoticeStatus
from tests.e2e.conftest import RunningBot, StartBot
from tests.fakes.telegram_server import FakeTelegramServer
from tests.processes import until

Sessions = async_sessionmaker[AsyncSession]
CITIZEN = 42
PHONE = "13812345678"
YES = Button("Yes", payload="kept:yes")


def answers(bot: RunningBot, command: str, replies: list[Reply]) -> None:
    """``command`` is answered with ``replies``, stored as the dialogue stores a turn's."""

    async def scripted(incoming: Incoming) -> list[Reply]:
        async with bot.app[SESSIONS].begin() as session:
            citizen = await CitizenRepository(session).get_or_create(incoming.channel, incoming.user_id)
            await CitizenRepository(session).record_messages(
                citizen.id, [("out", reply.text) for reply in replies])
        return replies

    bot.puppet.scripts[command] = scripted


async def notices(sessions: async_sessionmaker[AsyncSession]) -> list[CitizenNotice]:
    async with sessions() as session:
        return list(await session.scalars(select(CitizenNotice).order_by(CitizenNotice.id)))


async def all_sent(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Wait until every kept reply is recorded as sent (a duplicate would have been sent by then)."""

    async def done() -> bool:
        found = await notices(sessions)
        return bool(found) and all(n.status == NoticeStatus.SENT.value for n in found)

    await until(done, timeout=15)


@pytest.mark.parametrize("refusals", [1, 2])
async def test_replies_telegram_answers_5xx_to_arrive_once_in_order_with_their_buttons(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: async_sessionmaker[AsyncSession],
        refusals: int) -> None:
    # Two refusals: the channel's send and the notifier's first try; the second try (seconds later) is taken.
    bot = await start_bot()
    answers(bot, "/two", [Reply("First."), Reply("Second.", buttons=((YES,),))])
    telegram.fail_next("sendMessage", 502, times=refusals)
    telegram.send_message(CITIZEN, "/two")
    first, second = await telegram.wait_for_sent(2, chat_id=CITIZEN, timeout=15)
    assert (first.text, second.text) == ("First.", "Second.")
    assert (first.buttons, [b["text"] for b in second.buttons]) == ([], ["Yes"])
    await all_sent(sessions)
    await bot.channel.idle()
    assert len(telegram.sent) == 2  # once each, and no apology
    [kept] = await notices(sessions)
    assert (kept.kind, kept.chat_id, kept.user_id is not None) == (KEPT, str(CITIZEN), True)


async def test_only_what_telegram_did_not_take_is_kept(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    answers(bot, "/file", [Reply("Your file.", document=Document("data.json", b"{}")), Reply("After it.")])
    telegram.fail_next("sendMessage", 500)
    telegram.send_message(CITIZEN, "/file")
    document, after = await telegram.wait_for_sent(2, chat_id=CITIZEN, timeout=15)
    assert (document.method, document.text, after.text) == ("sendDocument", "Your file.", "After it.")
    await all_sent(sessions)
    assert len(telegram.sent) == 2


async def test_with_the_rate_limiter_a_reply_refused_more_429s_than_it_retries_still_arrives(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(telegram_rate_limit=True)
    answers(bot, "/one", [Reply("The answer.")])
    telegram.fail_next("sendMessage", 429, retry_after=1, times=RATE_LIMIT_RETRIES + 1)
    telegram.send_message(CITIZEN, "/one")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=20)
    assert reply.text == "The answer."
    await all_sent(sessions)
    assert len(telegram.sent) == 1


async def test_a_kept_reply_reaches_the_citizen_as_written_and_is_kept_masked_once_sent(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    answers(bot, "/phone", [Reply(f"We will call you at {PHONE}.")])
    telegram.fail_next("sendMessage", 502)
    telegram.send_message(CITIZEN, "/phone")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=15)
    assert reply.text == f"We will call you at {PHONE}."
    await all_sent(sessions)
    [kept] = await notices(sessions)
    assert PHONE not in str(kept.data)
    async with sessions() as session:
        said = list(await session.scalars(select(Message.text).where(Message.direction == "out")))
    assert len(said) == 1  # recorded by the turn, not once more by the notifier
    assert PHONE not in said[0]


async def test_a_reply_to_a_chat_that_blocked_the_bot_is_not_kept(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    answers(bot, "/one", [Reply("The answer.")])
    telegram.fail_next("sendMessage", 403, times=2)
    telegram.send_message(CITIZEN, "/one")
    await telegram.wait_for_call("sendMessage", timeout=10)
    await bot.channel.idle()
    assert await notices(sessions) == []
    assert telegram.sent == []


GROUP = -1001
TOPIC = 5


def ask_in_topic(telegram: FakeTelegramServer, text: str) -> None:
    """A group member writes ``text`` in forum topic TOPIC."""
    asked = telegram.message(GROUP, text, chat_type="supergroup", user_id=7)
    asked["message"] |= {"message_thread_id": TOPIC, "is_topic_message": True}
    telegram.push_update(asked)


async def test_a_kept_reply_to_a_forum_topic_arrives_in_that_topic(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    answers(bot, "/one", [Reply("The answer.")])
    telegram.fail_next("sendMessage", 502)
    ask_in_topic(telegram, "/one")
    [reply] = await telegram.wait_for_sent(chat_id=GROUP, timeout=15)
    assert (reply.text, reply.thread_id) == ("The answer.", TOPIC)
    await all_sent(sessions)


async def test_a_kept_reply_whose_topic_is_gone_arrives_in_the_chat(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    # The turn's send meets a 5xx; by the notifier's turn the topic was deleted (Telegram's wording).
    bot = await start_bot()
    answers(bot, "/one", [Reply("The answer.")])
    telegram.fail_next("sendMessage", 502)
    telegram.fail_next("sendMessage", 400, description="Bad Request: message thread not found")
    ask_in_topic(telegram, "/one")
    [reply] = await telegram.wait_for_sent(chat_id=GROUP, timeout=15)
    assert (reply.text, reply.thread_id) == ("The answer.", None)
    await all_sent(sessions)
    [kept] = await notices(sessions)
    assert kept.attempts == 1  # delivered at the first try, not retried until the week is out
