"""Govbot on Telegram by long polling, end to end: the real app, dialogue and database, a fake Bot API."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.error import TelegramError

from bot.channels.telegram_render import split_html
from bot.channels.telegram_updates import CHANNEL
from bot.keys import ENGINE, SENDERS
from bot.notify import Unreachable
from handlers.i18n import t
from handlers.start import command_menu, help_text
from handlers.types import Button, Document, Incoming, Reply
from tests.conftest import admin
from tests.e2e.conftest import StartBot, inbox
from tests.fakes.telegram_server import Call, FakeTelegramServer
from tests.processes import until

Sessions = async_sessionmaker[AsyncSession]
CITIZEN = 42
GROUP = -1001
BOT = "govbot_test_bot"


async def test_start_is_answered_with_the_greeting_and_the_language_choice(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/start")
    greeting, languages = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert (greeting.method, greeting.parse_mode) == ("sendMessage", "HTML")
    assert greeting.text == t("en", "greeting") + "\n\n" + t("en", "privacy_notice")
    assert greeting.payloads == ["menu:1"]
    assert languages.payloads == ["lang:en", "lang:zh"]


@pytest.mark.parametrize(("lang", "answer"), [("en", "You can renew your identity card"),
                                              ("zh", "身份证有效期满前")])
async def test_a_deep_link_from_a_poster_opens_its_entry_after_the_greeting_and_a_forged_one_greets(
        lang: str, answer: str, start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/start civil-registry-id-card-renew", language_code=lang)
    greeting, _, opened = await telegram.wait_for_sent(3, chat_id=CITIZEN)
    assert greeting.text == t(lang, "greeting") + "\n\n" + t(lang, "privacy_notice")
    assert (opened.text or "").startswith(answer)
    assert [p.split(":")[0] for p in opened.payloads[-2:]] == ["rate", "rate"]
    telegram.mark()
    telegram.send_message(CITIZEN, "/start topic_civil-registry<script>", language_code=lang)
    telegram.send_message(CITIZEN, "/help", language_code=lang)
    forged = await telegram.wait_for_sent(3, chat_id=CITIZEN)
    assert [sent.text for sent in forged] == [greeting.text, t(lang, "choose_language"), help_text(lang)]


async def test_the_commands_are_listed_in_telegrams_menu_in_english_and_chinese(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    await telegram.wait_for_call("setMyCommands", count=2)
    for language in ("en", "zh"):
        listed = telegram.commands(language_code="" if language == "en" else language)
        assert [(c["command"], c["description"]) for c in listed] == command_menu(language)
    assert [c["command"] for c in telegram.commands()][:3] == ["menu", "language", "human"]
    assert telegram.commands(language_code="zh")[0]["description"] == "浏览主题"


async def test_a_command_menu_telegram_refuses_does_not_stop_the_bot(
        start_bot: StartBot, telegram: FakeTelegramServer, caplog: pytest.LogCaptureFixture) -> None:
    telegram.fail_next("setMyCommands", 400, times=2)
    await start_bot()
    telegram.send_message(CITIZEN, "/help")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")

    async def warned() -> bool:
        return any("command menu" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")

    await until(warned, timeout=10)


async def test_a_question_is_answered_from_the_knowledge_base_with_rating_buttons(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_message(CITIZEN, "How do I renew my identity card?", language_code="en-GB",
                          first_name="Ana")
    [answer] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert "<b>20 yuan</b>" in (answer.text or "")
    assert [p.rsplit(":", 1)[1] for p in answer.payloads] == ["1", "0"]
    assert any(button.get("url", "").startswith("https://registry.") for button in answer.buttons)
    [seen] = bot.puppet.seen
    assert (seen.channel, seen.chat_id, seen.user_id, seen.language) == ("telegram", "42", "42", "en-GB")
    assert (seen.display_name, seen.is_group) == ("Ana", False)


async def test_the_reply_follows_the_citizens_telegram_language(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/help", language_code="zh-hans")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("zh")


async def test_an_update_sent_twice_is_answered_once(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    await start_bot()
    update = telegram.send_message(CITIZEN, "/help")
    await telegram.wait_for_sent(chat_id=CITIZEN)
    telegram.push_update(update)  # Telegram re-sends it: same update_id
    telegram.send_message(CITIZEN, "/menu")
    await telegram.wait_for_sent(2, chat_id=CITIZEN)
    help_reply, menu = telegram.sent
    assert help_reply.text == help_text("en")
    assert (menu.text or "").startswith(t("en", "menu_title"))
    stored = await inbox(sessions)
    assert sorted(stored) == ["1", "2"]


async def test_a_429_is_waited_out_and_the_reply_still_arrives(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.fail_next("sendMessage", 429, retry_after=1)
    telegram.send_message(CITIZEN, "/help")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    refused, accepted = [call for call in telegram.calls if call.method == "sendMessage"]
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.time - refused.time >= 1.0


async def test_a_429_is_waited_out_by_the_rate_limiter_when_it_is_on(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot(telegram_rate_limit=True)
    telegram.fail_next("sendMessage", 429, retry_after=1)
    telegram.send_message(CITIZEN, "/help")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    refused, accepted = [call for call in telegram.calls if call.method == "sendMessage"]
    assert accepted.time - refused.time >= 1.0


async def test_a_reply_over_4096_characters_arrives_in_valid_parts_with_the_buttons_last(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    paragraphs = ["<b>Fees</b> &amp; " + "documents " * 300, "<i>" + "opening hours " * 300 + "</i>"] * 2
    buttons = ((Button("👍", payload="rate:1:1"),),)

    async def long_answer(incoming: Incoming) -> list[Reply]:
        return [Reply("\n\n".join(paragraphs), buttons=buttons, kind="answer")]

    bot.puppet.scripts["/long"] = long_answer
    telegram.send_message(CITIZEN, "/long")
    expected = split_html("\n\n".join(paragraphs))
    parts = await telegram.wait_for_sent(len(expected), chat_id=CITIZEN)
    assert len(expected) >= 3
    assert [part.text for part in parts] == expected  # each one accepted by Telegram's HTML parser
    assert all(len(part.plain_text or "") <= 4096 for part in parts)
    assert [part.payloads for part in parts] == [[]] * (len(expected) - 1) + [["rate:1:1"]]


async def test_a_sticker_or_a_photo_without_a_caption_gets_the_polite_text_only_reply(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_sticker(CITIZEN)
    telegram.send_photo(CITIZEN)
    sticker_reply, photo_reply = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert sticker_reply.text == photo_reply.text == t("en", "text_only")
    assert [(seen.unsupported, seen.text) for seen in bot.puppet.seen] == [("sticker", None), ("photo", None)]


@pytest.mark.parametrize("content", [
    {"checklist": {"title": "Papers to bring", "tasks": [{"id": 1, "text": "passport"}]}},
    {"web_app_data": {"data": "{}", "button_text": "Apply"}}], ids=["checklist", "web_app_data"])
async def test_a_checklist_or_a_web_apps_data_gets_the_polite_text_only_reply_not_silence(
        content: dict[str, object], start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    update = telegram.message(CITIZEN, "", language_code="zh")
    del update["message"]["text"]
    update["message"] |= content
    telegram.push_update(update)
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == t("zh", "text_only")


@pytest.mark.parametrize(("lang", "caption"), [("en", "How do I renew my identity card?"),
                                               ("zh", "身份证到期了怎么换")])
async def test_a_photos_caption_is_answered_as_typed_and_the_citizen_told_the_photo_was_not_read(
        lang: str, caption: str, start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_photo(CITIZEN, caption=caption, language_code=lang)
    note, answer = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert note.text == t(lang, "attachment_not_read")
    telegram.send_message(CITIZEN, caption, language_code=lang)
    typed = (await telegram.wait_for_sent(3, chat_id=CITIZEN))[-1]
    assert answer.text == typed.text
    assert [p.split(":")[0] for p in answer.payloads[-2:]] == ["rate", "rate"]


async def test_in_a_group_a_caption_is_answered_only_when_it_mentions_the_bot(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_photo(GROUP, caption="our new office", chat_type="group", user_id=7)
    telegram.send_photo(GROUP, caption=f"@{BOT} how do I fill this in?", chat_type="group", user_id=7)
    note, _ = await telegram.wait_for_sent(2, chat_id=GROUP)
    await bot.channel.idle()
    assert note.text == t("en", "attachment_not_read")
    assert [(seen.text, seen.unsupported) for seen in bot.puppet.seen] == [
        ("how do I fill this in?", "photo")]


async def test_in_a_group_only_commands_mentions_and_replies_to_the_bot_are_answered(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_message(GROUP, "good morning everyone", chat_type="group")
    telegram.send_message(GROUP, "/help@some_other_bot", chat_type="group")
    telegram.send_message(GROUP, "/help", chat_type="group")
    [help_reply] = await telegram.wait_for_sent(chat_id=GROUP)
    telegram.send_message(GROUP, f"@{BOT} How do I renew my identity card?", chat_type="supergroup",
                          user_id=7)
    telegram.send_sticker(GROUP, chat_type="group", user_id=7)  # not addressed to the bot
    telegram.send_message(GROUP, f"/help@{BOT}", chat_type="group")
    await telegram.wait_for_sent(3, chat_id=GROUP)
    reply_to_bot = telegram.message(GROUP, "and for my son?", chat_type="group", user_id=7)
    reply_to_bot["message"]["reply_to_message"] = telegram.messages[(GROUP, help_reply.message_id)]
    telegram.push_update(reply_to_bot)
    await telegram.wait_for_sent(4, chat_id=GROUP)
    assert [(seen.text, seen.is_group) for seen in bot.puppet.seen] == [
        ("/help", True), ("How do I renew my identity card?", True), (f"/help@{BOT}", True),
        ("and for my son?", True)]
    assert len(telegram.sent) == 4


async def test_in_a_forum_topic_the_answer_goes_into_that_topic(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    asked = telegram.message(GROUP, "/menu", chat_type="supergroup", user_id=7)
    asked["message"] |= {"message_thread_id": 5, "is_topic_message": True}
    telegram.push_update(asked)
    [menu] = await telegram.wait_for_sent(chat_id=GROUP)
    assert menu.thread_id == 5
    telegram.messages[(GROUP, menu.message_id)] |= {"message_thread_id": 5, "is_topic_message": True}
    telegram.send_callback(GROUP, menu.payloads[0], message_id=menu.message_id, user_id=7)
    _, topic = await telegram.wait_for_sent(2, chat_id=GROUP)
    assert topic.method == "editMessageText"
    telegram.send_message(GROUP, "/help", chat_type="supergroup", user_id=7)  # the General topic
    assert (await telegram.wait_for_sent(3, chat_id=GROUP))[-1].thread_id is None


async def test_in_a_topic_of_the_private_chat_the_answer_goes_into_that_topic(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    asked = telegram.message(CITIZEN, "/help")
    asked["message"] |= {"message_thread_id": 3, "is_topic_message": True}  # threaded mode (Bot API 9.3)
    telegram.push_update(asked)
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert (reply.text, reply.thread_id) == (help_text("en"), 3)


async def test_an_anonymous_group_admin_is_the_group_not_a_helper_bot_shared_by_every_group(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    for group in (GROUP, GROUP - 1):
        update = telegram.message(group, "/help", chat_type="supergroup", user_id=1087968824)
        update["message"]["sender_chat"] = {"id": group, "type": "supergroup", "title": "Residents"}
        telegram.push_update(update)
        await telegram.wait_for_sent(chat_id=group)
    assert [seen.user_id for seen in bot.puppet.seen] == [str(GROUP), str(GROUP - 1)]


async def test_a_channel_post_forwarded_into_its_discussion_group_is_not_taken_for_a_question(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    announcement = telegram.message(GROUP, f"Questions? Ask @{BOT} any time.", chat_type="supergroup",
                                    user_id=777000, first_name="Telegram")
    channel = {"id": GROUP - 1, "type": "channel", "title": "City news"}
    announcement["message"] |= {"sender_chat": channel, "is_automatic_forward": True, "forward_origin": {
        "type": "channel", "chat": channel, "message_id": 12, "date": announcement["message"]["date"]}}
    telegram.push_update(announcement)
    telegram.send_message(GROUP, f"@{BOT} /help", chat_type="supergroup", user_id=7)
    [reply] = await telegram.wait_for_sent(chat_id=GROUP)
    await bot.channel.idle()
    assert reply.text == help_text("en")
    assert [seen.user_id for seen in bot.puppet.seen] == ["7"]


async def test_a_late_update_from_a_group_since_upgraded_to_a_supergroup_is_answered_there(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    telegram.send_message(GROUP, "/help", chat_type="group")  # sent while the bot was down
    telegram.upgrade_group(GROUP, GROUP * 1000)
    await start_bot()
    [reply] = await telegram.wait_for_sent(chat_id=GROUP * 1000)
    assert reply.text == help_text("en")
    assert [call.status for call in telegram.calls if call.method == "sendMessage"] == [400, 200]


async def test_a_button_press_is_acknowledged_and_edits_the_message_it_was_on(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/menu")
    [menu] = await telegram.wait_for_sent(chat_id=CITIZEN)
    category = menu.payloads[0]
    telegram.send_callback(CITIZEN, category, message_id=menu.message_id)
    _, edited = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert (edited.method, edited.message_id) == ("editMessageText", menu.message_id)
    assert any(p.startswith("show:") for p in edited.payloads)
    [answered] = await telegram.wait_for_call("answerCallbackQuery")
    assert answered.status == 200
    assert not telegram.open_queries


async def test_a_press_on_a_message_that_cannot_be_edited_is_answered_with_a_new_message(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_callback(CITIZEN, "menu:1", message_id=999)  # an old message Telegram no longer has
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.method == "sendMessage"
    assert (reply.text or "").startswith(t("en", "menu_title"))
    assert not telegram.open_queries


async def test_a_press_that_would_change_nothing_sends_nothing_new(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_message(CITIZEN, "/menu")
    [menu] = await telegram.wait_for_sent(chat_id=CITIZEN)
    telegram.send_callback(CITIZEN, "menu:1", message_id=menu.message_id)  # the page it already shows
    await telegram.wait_for_call("answerCallbackQuery")
    await bot.channel.idle()
    [edit] = [call for call in telegram.calls if call.method == "editMessageText"]
    assert edit.status == 400
    assert telegram.sent == [menu]


async def test_a_notice_is_shown_on_the_button_press(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/language")
    [choice] = await telegram.wait_for_sent(chat_id=CITIZEN)
    telegram.send_callback(CITIZEN, "lang:zh", message_id=choice.message_id)
    [answered] = await telegram.wait_for_call("answerCallbackQuery")
    assert answered.params["text"] == t("zh", "language_set")
    [_, confirmation] = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert confirmation.text == t("zh", "language_set")


async def test_a_failing_dialogue_gets_an_apology_and_the_next_message_is_still_answered(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()

    async def fail(incoming: Incoming) -> list[Reply]:
        raise RuntimeError("the dialogue broke")

    bot.puppet.scripts["boom"] = fail
    failing = telegram.send_message(CITIZEN, "boom")
    telegram.send_message(CITIZEN, "/help")
    apology, answer = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert (apology.text, answer.text) == (t("en", "error"), help_text("en"))
    await bot.channel.idle()
    stored = await inbox(sessions)
    assert stored[str(failing["update_id"])].error == "RuntimeError: the dialogue broke"
    assert stored[str(failing["update_id"])].processed_at is None
    async with aiohttp.ClientSession() as client, client.get(bot.url + "/metrics") as response:
        metrics = await response.text()
    assert 'govbot_updates_handled_total{channel="telegram",result="error"} 1.0' in metrics
    assert 'govbot_updates_handled_total{channel="telegram",result="ok"} 1.0' in metrics


async def test_a_document_reply_is_uploaded_with_its_caption(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()

    async def export(incoming: Incoming) -> list[Reply]:
        return [Reply("Your <b>data</b>", document=Document("mydata.json", b'{"questions": []}'))]

    bot.puppet.scripts["/mydata"] = export
    telegram.send_message(CITIZEN, "/mydata")
    [sent] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert (sent.method, sent.document_name, sent.document_bytes) == (
        "sendDocument", "mydata.json", b'{"questions": []}')
    assert sent.plain_text == "Your data"


async def test_polling_goes_on_after_an_unexpected_error(
        start_bot: StartBot, telegram: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch) -> None:
    bot = await start_bot()
    receive, failed = bot.channel.receive, list[object]()

    async def fail_once(payload: dict[str, object]) -> bool:
        if not failed:
            failed.append(payload["update_id"])
            raise RuntimeError("a bug")
        return await receive(payload)

    monkeypatch.setattr(bot.channel, "receive", fail_once)
    update = telegram.send_message(CITIZEN, "/help")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=30)  # fetched again after 1 s
    assert reply.text == help_text("en")
    assert failed == [update["update_id"]]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_polling_goes_on_while_the_database_refuses_new_connections(
        start_bot: StartBot, telegram: FakeTelegramServer, database_url: str) -> None:
    # A server starting up or in maintenance refuses connections with asyncpg's own errors, which
    # SQLAlchemy does not wrap: the poller must take them as it takes a lost connection, not stop.
    bot = await start_bot()
    name = make_url(database_url).database
    await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        await bot.app[ENGINE].dispose()  # nothing pooled: every unit of work must connect
        telegram.send_message(CITIZEN, "/help")
        telegram.mark()
        await telegram.wait_for_call("getUpdates", count=2, timeout=30)  # fetched, refused, fetched again
    finally:
        await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=30)
    assert reply.text == help_text("en")


async def test_a_polled_update_is_confirmed_to_telegram_only_once_it_is_stored(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    async with sessions.begin() as session:  # the database refuses to store anything
        await session.execute(text("ALTER TABLE inbox_updates RENAME TO inbox_away"))
    update = telegram.send_message(CITIZEN, "/help")
    update_id = int(update["update_id"])

    def offset(call: Call) -> int:
        return int(call.params.get("offset") or 0)

    # Polling goes on, fetching the update again without confirming it (no offset past it) ...
    # Backing off 1 s, then 2 s, then 4 s between failures: the waits allow for a loaded machine.
    telegram.mark()
    await telegram.wait_for_call("getUpdates", count=2, timeout=30)
    assert all(offset(call) <= update_id for call in telegram.calls)
    async with sessions.begin() as session:
        await session.execute(text("ALTER TABLE inbox_away RENAME TO inbox_updates"))
    # ... so Telegram sends it again, and once it is stored it is answered and confirmed.
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=30)
    assert reply.text == help_text("en")
    await telegram.wait_for_call("getUpdates", predicate=lambda call: offset(call) > update_id, timeout=30)
    await bot.channel.idle()
    assert (await inbox(sessions))[str(update_id)].processed_at is not None


async def test_shutdown_finishes_the_update_in_flight(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(incoming: Incoming) -> list[Reply]:
        entered.set()
        await release.wait()
        return [Reply("done at last")]

    bot.puppet.scripts["slow"] = slow
    update = telegram.send_message(CITIZEN, "slow")
    await entered.wait()
    stopping = asyncio.create_task(bot.stop())
    # The last getUpdates (no long poll) confirms what was fetched: polling has stopped, the update is
    # still being handled.
    await telegram.wait_for_call("getUpdates", predicate=lambda call: str(call.params.get("timeout")) == "0")
    assert not stopping.done()
    release.set()
    await stopping
    assert [m.text for m in telegram.sent] == ["done at last"]
    assert (await inbox(sessions))[str(update["update_id"])].processed_at is not None


async def test_an_update_cut_off_by_shutdown_is_processed_on_the_next_start(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    entered = asyncio.Event()

    async def stuck(incoming: Incoming) -> list[Reply]:
        entered.set()
        await asyncio.Event().wait()
        return []

    bot.puppet.scripts["/help"] = stuck
    update = telegram.send_message(CITIZEN, "/help")
    await entered.wait()
    await bot.channel.stop(timeout=0.05)
    await bot.stop()
    assert telegram.sent == []
    assert (await inbox(sessions))[str(update["update_id"])].processed_at is None
    again = await start_bot()
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    await again.channel.idle()
    stored = (await inbox(sessions))[str(update["update_id"])]
    assert (stored.attempts, stored.processed_at is not None) == (2, True)


async def test_a_department_reply_is_sent_to_the_citizens_chat_unprompted(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    sender = bot.app[SENDERS][CHANNEL]
    await sender.send(str(CITIZEN), [Reply("<b>TR-2026-000123</b>: your case was answered.",
                                           buttons=((Button("Rate", payload="rate:1:1"),),))])
    [notice] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert notice.plain_text == "TR-2026-000123: your case was answered."
    assert notice.payloads == ["rate:1:1"]


async def test_a_chat_that_blocked_the_bot_is_reported_unreachable(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    sender = bot.app[SENDERS][CHANNEL]
    telegram.fail_next("sendMessage", 403)
    with pytest.raises(Unreachable, match="blocked"):
        await sender.send(str(CITIZEN), [Reply("Your case was answered.")])
    with pytest.raises(Unreachable, match="not a Telegram chat id"):
        await sender.send("web-visitor-1", [Reply("Your case was answered.")])
    telegram.fail_next("sendMessage", 500)
    with pytest.raises(TelegramError):  # a passing failure: the notifier tries again later
        await sender.send(str(CITIZEN), [Reply("Your case was answered.")])


async def test_an_update_python_telegram_bot_cannot_read_does_not_hold_up_polling(
        start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions) -> None:
    bot = await start_bot()
    no_date_nor_sender = {"message_id": 5, "chat": {"id": CITIZEN, "type": "private"}}
    unreadable = telegram.push_update({"message": no_date_nor_sender})
    telegram.send_message(CITIZEN, "/help")
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    await bot.channel.idle()
    failed = (await inbox(sessions))[str(unreadable)]  # stored and failed alone, as by webhook
    assert (failed.processed_at, (failed.error or "").split(":")[0]) == (None, "KeyError")


async def test_in_a_group_another_bots_bare_command_is_left_to_it_but_one_for_us_is_answered(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_message(GROUP, "/weather London", chat_type="group")  # every bot in the group gets it
    telegram.send_message(GROUP, f"@{BOT} /weather London", chat_type="group")
    telegram.send_message(GROUP, f"/weather@{BOT}", chat_type="group")
    await telegram.wait_for_sent(2, chat_id=GROUP)
    await bot.channel.idle()
    unknown = t("en", "unknown_command", command="weather")
    assert [m.text for m in telegram.sent] == [unknown, unknown]


async def test_in_a_group_a_command_for_another_bot_is_left_to_it_even_in_a_reply_to_us(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    bot = await start_bot()
    telegram.send_message(GROUP, "/help", chat_type="group")
    [help_reply] = await telegram.wait_for_sent(chat_id=GROUP)
    for command in ("/start@some_other_bot", f"/help@{BOT}"):
        reply_to_bot = telegram.message(GROUP, command, chat_type="group", user_id=7)
        reply_to_bot["message"]["reply_to_message"] = telegram.messages[(GROUP, help_reply.message_id)]
        telegram.push_update(reply_to_bot)
    await telegram.wait_for_sent(2, chat_id=GROUP)
    await bot.channel.idle()
    assert [seen.text for seen in bot.puppet.seen] == ["/help", f"/help@{BOT}"]
    assert [m.text for m in telegram.sent] == [help_text("en"), help_text("en")]
