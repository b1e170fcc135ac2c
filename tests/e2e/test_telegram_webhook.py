"""Govbot on Telegram by webhook, end to end: setWebhook with a secret, durable acceptance, recovery."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import INBOX_LEASE, SECRET_HEADER, TELEGRAM, WEBHOOK_PATH
from bot.channels.telegram_updates import CHANNEL
from bot.config import ConfigError
from handlers.i18n import t
from handlers.start import help_text
from storage.inbox import InboxRepository
from storage.models import InboxUpdate, Message, utcnow
from storage.secrets import StoredSecret
from tests.e2e.conftest import StartBot, inbox
from tests.fakes.telegram_server import FakeTelegramServer

Sessions = async_sessionmaker[AsyncSession]
CITIZEN = 42


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as client, client.post(url, data=body, headers=headers) as response:
        return response.status


async def test_the_webhook_is_registered_at_the_public_url_with_a_random_secret(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot(webhook=True)
    assert telegram.webhook.url == bot.url + WEBHOOK_PATH
    assert telegram.webhook.secret_token is not None
    assert len(telegram.webhook.secret_token) >= 32
    assert telegram.webhook.allowed_updates == ["message", "callback_query"]
    assert not [call for call in telegram.calls if call.method == "getUpdates"]


async def test_the_webhook_secret_is_not_kept_in_the_database(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    # It was made once and stored, so a copy of the database (a leaked backup) was enough to post forged
    # updates as any citizen. It is derived from the token now, which stays in the deployment's secrets.
    await start_bot(webhook=True)
    registered = telegram.webhook.secret_token
    assert registered is not None
    async with sessions() as session:
        stored = list(await session.scalars(select(StoredSecret.value)))
    assert all(registered not in value for value in stored)


async def test_an_update_with_the_secret_is_accepted_and_answered(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot(webhook=True)
    assert await telegram.deliver(telegram.message(CITIZEN, "/help")) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")


async def test_the_update_is_stored_before_the_webhook_answers_200(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(webhook=True)
    update = telegram.message(CITIZEN, "/help")
    assert await telegram.deliver(update) == 200
    stored = (await inbox(sessions))[str(update["update_id"])]  # there once Telegram has its 200
    # Processing starts as soon as it is stored and drops the raw update when done; either way it is kept.
    assert stored.payload == update or (stored.processed_at is not None and stored.payload == {})
    await bot.channel.idle()
    assert (await inbox(sessions))[str(update["update_id"])].processed_at is not None


async def test_an_update_without_the_right_secret_is_refused_and_not_processed(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(webhook=True)
    for secret in (None, "wrong-secret", "", (telegram.webhook.secret_token or "") + "x", "ünïcode"):
        update = telegram.message(CITIZEN, "/help")
        assert await telegram.deliver(update, secret_token=secret) == 403, secret
    await bot.channel.idle()
    assert await inbox(sessions) == {}
    assert telegram.sent == []


async def test_a_body_that_is_not_an_update_is_refused_with_400(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(webhook=True)
    headers = {SECRET_HEADER: telegram.webhook.secret_token or "", "Content-Type": "application/json"}
    for body in (b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "7"}', b'{"update_id": true}',
                 b'{"update_id": -1}', b'{"update_id": 1e3}', b"\xff\xfe", b"",
                 b"[" * 100_000 + b"]" * 100_000):
        assert await post(bot.url + WEBHOOK_PATH, body, headers) == 400, body
    assert await inbox(sessions) == {}


async def test_an_update_delivered_twice_is_answered_once(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot(webhook=True)
    update = telegram.message(CITIZEN, "/help")
    assert await telegram.deliver(update) == 200
    assert await telegram.deliver(update) == 200  # Telegram did not see the first 200 and re-sends
    await bot.channel.idle()
    assert [m.text for m in telegram.sent] == [help_text("en")]


async def test_edited_messages_and_unknown_updates_are_stored_and_ignored(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(webhook=True)
    edited = {"edited_message": telegram.message(CITIZEN, "/help")["message"]}
    assert await telegram.deliver(edited) == 200
    assert await telegram.deliver({"future_kind_of_update": {"id": "1"}}) == 200
    await bot.channel.idle()
    assert telegram.sent == []
    assert bot.puppet.seen == []
    stored = await inbox(sessions)
    assert len(stored) == 2
    assert all(row.processed_at is not None for row in stored.values())


async def test_a_malformed_update_is_recorded_as_failed_and_the_next_one_is_answered(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(webhook=True)
    malformed = {"poll": {"id": "1"}}  # a Poll without its required fields
    assert await telegram.deliver(malformed) == 200
    assert await telegram.deliver(telegram.message(CITIZEN, "/help")) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    await bot.channel.idle()
    failed = (await inbox(sessions))[str(malformed["update_id"])]
    assert failed.processed_at is None
    assert (failed.error or "").startswith("TypeError: ")


async def test_a_flooding_citizen_is_told_once_and_then_ignored(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot(webhook=True, flood_limit_per_minute=2)
    for _ in range(5):
        assert await telegram.deliver(telegram.message(CITIZEN, "/help")) == 200
    assert await telegram.deliver(telegram.message(CITIZEN + 1, "/help")) == 200
    await bot.channel.idle()
    to_citizen = [m.text for m in telegram.sent if m.chat_id == CITIZEN]
    assert to_citizen == [help_text("en"), help_text("en"), t("en", "flood")]
    assert [m.text for m in telegram.sent if m.chat_id == CITIZEN + 1] == [help_text("en")]


async def test_updates_left_unprocessed_by_a_crash_are_processed_on_start(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    crashed: dict[str, Any] = {"update_id": 500, **telegram.message(CITIZEN, "/help")}
    exhausted: dict[str, Any] = {"update_id": 501, **telegram.message(CITIZEN + 1, "/help")}
    died = utcnow() - INBOX_LEASE - timedelta(seconds=1)
    async with sessions.begin() as session:
        repo = InboxRepository(session)
        assert await repo.accept(CHANNEL, "500", crashed, received_at=died)  # stored, then the process died
        assert await repo.accept(CHANNEL, "501", exhausted, received_at=died)
        await repo.mark_failed(CHANNEL, "501", "RuntimeError: third failure")
    async with sessions.begin() as session:
        for attempts in (1, 2):
            assert await InboxRepository(session).claim(CHANNEL, "501", attempts, now=died)
    bot = await start_bot(webhook=True)
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    await bot.channel.idle()
    stored = await inbox(sessions)
    assert stored["500"].processed_at is not None
    assert (stored["500"].attempts, stored["501"].attempts) == (2, 3)
    assert stored["501"].processed_at is None  # three attempts failed: left for staff
    assert [m.chat_id for m in telegram.sent] == [CITIZEN]


async def test_an_update_another_process_is_still_handling_is_left_to_it_until_its_lease_runs_out(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    elsewhere: dict[str, Any] = {"update_id": 600, **telegram.message(CITIZEN, "/help")}
    async with sessions.begin() as session:
        assert await InboxRepository(session).accept(CHANNEL, "600", elsewhere)  # another process took it
    bot = await start_bot(webhook=True)
    assert await bot.channel.recover() == 0
    await bot.channel.idle()
    assert telegram.sent == []
    async with sessions.begin() as session:  # that process died: its attempt grows older than the lease
        row = await session.get(InboxUpdate, (CHANNEL, "600"))
        assert row is not None
        row.received_at = utcnow() - INBOX_LEASE - timedelta(seconds=1)
    assert await bot.channel.recover() == 1
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    await bot.channel.idle()
    assert (await inbox(sessions))["600"].processed_at is not None


async def test_a_button_press_by_webhook_is_acknowledged(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot(webhook=True)
    assert await telegram.deliver(telegram.message(CITIZEN, "/menu")) == 200
    [menu] = await telegram.wait_for_sent(chat_id=CITIZEN)
    data = menu.buttons[0]["callback_data"]
    assert await telegram.deliver(telegram.callback(CITIZEN, data, message_id=menu.message_id)) == 200
    await bot.channel.idle()
    assert not telegram.open_queries
    assert [m.method for m in telegram.sent] == ["sendMessage", "editMessageText"]


async def test_without_a_token_there_is_no_telegram_and_no_webhook(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot(telegram_token=None)
    assert TELEGRAM not in bot.app
    assert await post(bot.url + WEBHOOK_PATH, b"{}", {SECRET_HEADER: "anything"}) == 404
    assert telegram.calls == []


async def test_a_refused_webhook_stops_the_start_up_with_telegrams_error(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    telegram.fail_next("setWebhook", 400, description="Bad Request: bad webhook: IP address is not allowed")
    with pytest.raises(ConfigError, match=r"(?i)GOVBOT_PUBLIC_URL: bad webhook: IP address"):
        await start_bot(webhook=True)


async def test_a_wrong_token_stops_the_start_up(start_bot: StartBot) -> None:
    with pytest.raises(ConfigError, match="GOVBOT_TELEGRAM_TOKEN"):
        await start_bot(telegram_token="999:WRONG")


async def test_an_update_delivered_twice_at_the_same_time_is_answered_once(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot(webhook=True)
    update = telegram.message(CITIZEN, "/help")
    others = [telegram.message(CITIZEN + n, "/help") for n in range(1, 4)]
    statuses = await asyncio.gather(*(telegram.deliver(u) for u in (update, update, *others, update)))
    assert statuses == [200] * 6
    await bot.channel.idle()
    assert sorted(m.chat_id for m in telegram.sent) == [CITIZEN, CITIZEN + 1, CITIZEN + 2, CITIZEN + 3]


async def test_text_with_lone_surrogates_is_answered_and_stored_without_them(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot(webhook=True)
    update = telegram.message(CITIZEN, "placeholder")
    headers = {SECRET_HEADER: telegram.webhook.secret_token or "", "Content-Type": "application/json"}
    body = json.dumps(update).replace("placeholder", "renew identity card \\ud83d \\udc00").encode()
    assert await post(bot.url + WEBHOOK_PATH, body, headers) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert "<b>20 yuan</b>" in (reply.text or "")
    await bot.channel.idle()
    assert (await inbox(sessions))[str(update["update_id"])].processed_at is not None
    async with sessions() as session:
        said = (await session.scalars(select(Message.text).where(Message.direction == "in"))).all()
    [text] = said
    assert text.startswith("renew identity card")
    assert not [c for c in text if "\ud800" <= c <= "\udfff"]


async def test_a_citizen_who_blocked_the_bot_is_neither_apologised_to_nor_retried_nor_logged_as_an_error(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions,
        caplog: pytest.LogCaptureFixture) -> None:
    bot = await start_bot(webhook=True)
    telegram.fail_next("sendMessage", 403, times=5)  # "Forbidden: bot was blocked by the user"
    update = telegram.message(CITIZEN, "/help")
    assert await telegram.deliver(update) == 200
    await bot.channel.idle()
    assert [call.method for call in telegram.calls if call.method == "sendMessage"] == ["sendMessage"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    stored = (await inbox(sessions))[str(update["update_id"])]
    assert (stored.processed_at is not None, stored.error) == (True, None)  # never run again


async def test_a_turn_whose_reply_telegram_failed_to_take_is_not_run_a_second_time(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    # The dialogue committed the turn (the citizen left the contact step, the case exists): running it
    # again would read the same words as a new question, out of order with what the citizen sent since.
    bot = await start_bot(webhook=True)
    telegram.fail_next("sendMessage", 502, times=2)  # the reply, then the apology
    update = telegram.message(CITIZEN, "/help")
    assert await telegram.deliver(update) == 200
    await bot.channel.idle()
    assert (await inbox(sessions))[str(update["update_id"])].processed_at is not None
    async with sessions.begin() as session:  # even once any lease has run out
        row = await session.get(InboxUpdate, (CHANNEL, str(update["update_id"])))
        assert row is not None
        row.received_at = utcnow() - INBOX_LEASE - timedelta(seconds=1)
    assert await bot.channel.recover() == 0
    await bot.channel.idle()
    assert len(bot.puppet.seen) == 1
