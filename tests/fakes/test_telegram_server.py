"""The fake Telegram Bot API server, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, EndPointNotFound, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fakes.telegram_server import DEFAULT_TOKEN, SECRET_HEADER, FakeTelegramServer
from tests.fakes.telegram_updates import DEFAULT_USER_ID

NOW = 1_760_000_000.0
CHAT = 42


def keyboard(*data: str) -> InlineKeyboardMarkup:
    """One row of buttons with the given callback data."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"b{i}", callback_data=d)
                                  for i, d in enumerate(data)]])


def parsed(update: dict[str, Any], bot: Bot) -> Update:
    """The update as python-telegram-bot decodes it."""
    result = Update.de_json(update, bot)
    assert result is not None
    return result


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(clock=lambda: NOW) as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(DEFAULT_TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url) as client:
        yield client


async def raw_post(tg: FakeTelegramServer, method: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """POST straight to the fake, for requests python-telegram-bot would never make."""
    async with aiohttp.ClientSession() as session, session.post(
        f"{tg.base_url}{DEFAULT_TOKEN}/{method}", **kwargs
    ) as response:
        return response.status, await response.json()


# -- basics -------------------------------------------------------------------------------------


async def test_get_me_describes_the_bot_behind_the_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123, "govbot_test_bot", True)


async def test_unknown_token_is_rejected_as_invalid(tg: FakeTelegramServer) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=tg.base_url):  # entering calls getMe
            pass
    assert tg.calls[-1].status == 401


async def test_unknown_method_is_not_found(tg: FakeTelegramServer, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("launchRocket")
    assert (tg.calls[-1].method, tg.calls[-1].status) == ("launchRocket", 404)


async def test_method_names_ignore_case_and_accept_json_bodies(tg: FakeTelegramServer) -> None:
    status, body = await raw_post(tg, "SENDMESSAGE", json={"chat_id": CHAT, "text": "hi"})
    assert (status, body["ok"], body["result"]["text"]) == (200, True, "hi")
    assert tg.calls[-1].method == "sendMessage"


@pytest.mark.parametrize(
    "params",
    [
        {"chat_id": {"nested": 1}, "text": "x"},
        {"chat_id": "not a chat", "text": "x"},
        {"text": "no chat"},
        {"chat_id": CHAT, "text": "x", "reply_markup": "{not json"},
        {"chat_id": CHAT, "text": "x", "reply_markup": {"inline_keyboard": "rows"}},
        {"chat_id": CHAT, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "plain"}]]}},
        {"chat_id": CHAT, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "u", "url": "x"}]]}},
    ],
)
async def test_malformed_requests_get_a_bad_request_not_a_crash(
    tg: FakeTelegramServer, params: dict[str, Any]
) -> None:
    status, body = await raw_post(tg, "sendMessage", json=params)
    assert (status, body["ok"], body["error_code"]) == (400, False, 400)
    assert body["description"].startswith("Bad Request: ")
    assert tg.sent == []


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [(b"{oops", "application/json"), (b"[1, 2]", "application/json"),
     (b'{"chat_id": 1, "text": "\xff\xfe"}', "application/json"),
     (b"--x\r\ngarbage\r\n\r\n", "multipart/form-data; boundary=x")],
)
async def test_an_unreadable_body_is_a_bad_request(
    tg: FakeTelegramServer, payload: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type}
    status, body = await raw_post(tg, "sendMessage", data=payload, headers=headers)
    assert (status, body["ok"]) == (400, False)
    assert "chat" not in body["description"]


async def test_parameters_may_come_in_the_query_string(tg: FakeTelegramServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(
        f"{tg.base_url}{DEFAULT_TOKEN}/sendMessage", params={"chat_id": "-100", "text": "from the query"}
    ) as response:
        assert response.status == 200
    assert [(m.chat_id, m.text) for m in tg.sent] == [(-100, "from the query")]


# -- sendMessage ----------------------------------------------------------------------------------


async def test_send_message_is_recorded_with_its_options(tg: FakeTelegramServer, bot: Bot) -> None:
    message = await bot.send_message(
        CHAT, "<b>Tax</b> &amp; fees", parse_mode=ParseMode.HTML, reply_markup=keyboard("yes"),
        reply_parameters=ReplyParameters(7), disable_web_page_preview=True,
    )
    [sent] = tg.sent
    assert (sent.method, sent.chat_id, sent.text, sent.plain_text) == (
        "sendMessage", CHAT, "<b>Tax</b> &amp; fees", "Tax & fees")
    assert (sent.parse_mode, sent.reply_to, sent.time) == ("HTML", 7, NOW)
    assert sent.buttons == [{"text": "b0", "callback_data": "yes"}]
    assert sent.link_preview_options == {"is_disabled": True}
    assert (message.message_id, message.text, message.chat.id) == (sent.message_id, "Tax & fees", CHAT)
    assert message.reply_markup == keyboard("yes")
    assert message.date == dtm.datetime.fromtimestamp(NOW, dtm.UTC)


async def test_message_ids_count_up_per_chat_across_both_sides(tg: FakeTelegramServer, bot: Bot) -> None:
    tg.send_message(CHAT, "hello")
    first = await bot.send_message(CHAT, "one")
    second = await bot.send_message(CHAT, "two")
    other = await bot.send_message(CHAT + 1, "elsewhere")
    assert [first.message_id, second.message_id, other.message_id] == [2, 3, 1]


async def test_text_of_4096_characters_is_accepted_and_4097_rejected(bot: Bot) -> None:
    await bot.send_message(CHAT, "x" * 4096)
    await bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "x" * 4097)


@pytest.mark.parametrize("text", ["", "   \n", "<b> </b>"])
async def test_empty_text_is_rejected(tg: FakeTelegramServer, bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)
    assert tg.sent == []


@pytest.mark.parametrize(
    "text", ["<b>unclosed", "<foo>x</foo>", "a < b", "R&D", "<b>x</i>", "x<br>y", "</b>", "<span>x</span>",
             "<!-- note -->", "&nbsp;"],
)
async def test_malformed_html_cannot_be_parsed(tg: FakeTelegramServer, bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)
    assert tg.sent == []


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("a &lt; b &amp;&amp; c &gt; &quot;d&quot;", 'a < b && c > "d"'),
        ('<a href="https://x.gov/?a=1&amp;b=2">form</a>', "form"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ("<pre><code>&#60;&#x3e;</code></pre>", "<>"),
        ("<blockquote><i>q</i></blockquote>", "q"),
    ],
)
async def test_well_formed_html_is_sent_as_its_plain_text(bot: Bot, text: str, plain: str) -> None:
    message = await bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)
    assert message.text == plain


async def test_html_rules_apply_only_with_html_parse_mode(bot: Bot) -> None:
    message = await bot.send_message(CHAT, "R&D <3")
    assert message.text == "R&D <3"


async def test_callback_data_up_to_64_bytes_is_accepted(tg: FakeTelegramServer, bot: Bot) -> None:
    await bot.send_message(CHAT, "pick", reply_markup=keyboard("x" * 64, "é" * 32))
    assert len(tg.sent) == 1


@pytest.mark.parametrize("data", ["x" * 65, "é" * 33])
async def test_callback_data_over_64_bytes_is_rejected(tg: FakeTelegramServer, bot: Bot, data: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "pick", reply_markup=keyboard("ok", data))
    assert tg.sent == []


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_injected_429_raises_retry_after_then_recovers(tg: FakeTelegramServer, bot: Bot) -> None:
    tg.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "hi")
    assert caught.value.retry_after in (7, dtm.timedelta(seconds=7))
    assert (tg.calls[-1].method, tg.calls[-1].status, tg.sent) == ("sendMessage", 429, [])
    await bot.send_message(CHAT, "hi")
    assert [m.text for m in tg.sent] == ["hi"]


@pytest.mark.parametrize("status", [500, 502])
async def test_injected_server_errors_raise_network_error(
    tg: FakeTelegramServer, bot: Bot, status: int
) -> None:
    tg.fail_next("sendMessage", status=status, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(CHAT, "hi")
    await bot.send_message(CHAT, "hi")
    assert [c.status for c in tg.calls if c.method == "sendMessage"] == [status, status, 200]
    assert len(tg.sent) == 1


async def test_faults_for_unknown_methods_or_no_calls_are_refused(tg: FakeTelegramServer) -> None:
    with pytest.raises(ValueError, match="unknown Bot API method"):
        tg.fail_next("sendPigeon")
    with pytest.raises(ValueError, match="times must be at least 1"):
        tg.fail_next("sendMessage", times=0)


# -- getUpdates -----------------------------------------------------------------------------------


async def test_get_updates_returns_pushed_updates_until_confirmed(tg: FakeTelegramServer, bot: Bot) -> None:
    for text in ("a", "b", "c"):
        tg.send_message(CHAT, text)
    updates = await bot.get_updates()
    assert [(u.update_id, u.message and u.message.text) for u in updates] == [(1, "a"), (2, "b"), (3, "c")]
    assert [u.update_id for u in await bot.get_updates(offset=3)] == [3]
    assert [u["update_id"] for u in tg.pending_updates] == [3]
    assert await bot.get_updates(offset=4) == ()


async def test_get_updates_honours_limit(tg: FakeTelegramServer, bot: Bot) -> None:
    for text in ("a", "b", "c"):
        tg.send_message(CHAT, text)
    assert [u.update_id for u in await bot.get_updates(limit=2)] == [1, 2]


async def test_long_poll_returns_as_soon_as_an_update_is_pushed(tg: FakeTelegramServer, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=60))
    await tg.wait_for_call("getUpdates")
    assert not poll.done()
    tg.send_message(CHAT, "hello")
    updates = await asyncio.wait_for(poll, timeout=10)  # far below the 60 s poll: it returned early
    assert [u.message.text for u in updates if u.message] == ["hello"]


async def test_a_newer_poll_terminates_the_waiting_one_with_conflict(
    tg: FakeTelegramServer, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=60))
    await tg.wait_for_call("getUpdates")
    async with Bot(DEFAULT_TOKEN, base_url=tg.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await asyncio.wait_for(first, timeout=10)


async def test_push_update_keeps_a_given_id_so_duplicates_can_be_resent(
    tg: FakeTelegramServer, bot: Bot
) -> None:
    update = tg.send_message(CHAT, "once")
    [delivered] = await bot.get_updates()
    assert await bot.get_updates(offset=delivered.update_id + 1) == ()
    assert tg.push_update(update) == delivered.update_id
    assert [u.update_id for u in await bot.get_updates(offset=delivered.update_id + 1)] == [1]
    tg.push_update({"update_id": 50, "message": tg.message(CHAT, "jump")["message"]})
    assert tg.push_update(tg.message(CHAT, "next")) == 51


async def test_allowed_updates_filters_update_types(tg: FakeTelegramServer, bot: Bot) -> None:
    tg.send_message(CHAT, "text")
    tg.send_callback(CHAT, "press", message_id=1)
    [update] = await bot.get_updates(allowed_updates=["callback_query"])
    assert update.callback_query is not None
    assert update.callback_query.data == "press"


async def test_the_real_application_answers_a_command_by_polling(tg: FakeTelegramServer) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome")

    app = ApplicationBuilder().token(DEFAULT_TOKEN).base_url(tg.base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(timeout=30)
        await app.start()
        tg.send_message(CHAT, "/start")
        [reply] = await tg.wait_for_sent(chat_id=CHAT)
        await app.updater.stop()
        await app.stop()
    assert (reply.text, reply.reply_to) == ("Welcome", None)
    assert tg.pending_updates == []


# -- waiting ---------------------------------------------------------------------------------------


async def test_wait_for_sent_returns_once_the_bot_sends(tg: FakeTelegramServer, bot: Bot) -> None:
    waiter = asyncio.create_task(tg.wait_for_sent(2, chat_id=CHAT))
    await bot.send_message(CHAT + 1, "other chat")
    await bot.send_message(CHAT, "one")
    assert not waiter.done()
    await bot.send_message(CHAT, "two")
    assert [m.text for m in await waiter] == ["one", "two"]


async def test_wait_for_sent_counts_from_the_last_mark(tg: FakeTelegramServer, bot: Bot) -> None:
    await bot.send_message(CHAT, "before")
    tg.mark()
    await bot.send_message(CHAT, "after")
    assert [m.text for m in await tg.wait_for_sent(predicate=lambda m: m.text != "x")] == ["after"]
    assert [m.text for m in tg.sent_since_mark()] == ["after"]


async def test_wait_for_sent_times_out_with_what_was_sent(tg: FakeTelegramServer, bot: Bot) -> None:
    await bot.send_message(CHAT, "the only reply")
    with pytest.raises(AssertionError, match="the only reply"):
        await tg.wait_for_sent(chat_id=CHAT + 1, timeout=0)


async def test_wait_for_call_times_out_with_the_calls_made(tg: FakeTelegramServer, bot: Bot) -> None:
    await bot.send_chat_action(CHAT, "typing")
    with pytest.raises(AssertionError, match="sendChatAction"):
        await tg.wait_for_call("answerCallbackQuery", timeout=0)


# -- documents and files ---------------------------------------------------------------------------


async def test_send_document_records_the_uploaded_bytes(tg: FakeTelegramServer, bot: Bot) -> None:
    message = await bot.send_document(CHAT, b"%PDF-1.4 case", filename="case.pdf", caption="Your case")
    [sent] = tg.sent
    assert (sent.method, sent.document_name, sent.document_bytes, sent.text) == (
        "sendDocument", "case.pdf", b"%PDF-1.4 case", "Your case")
    assert message.document is not None
    assert (message.document.file_name, message.document.file_size) == ("case.pdf", 13)
    file = await bot.get_file(message.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"%PDF-1.4 case"


async def test_caption_over_1024_characters_is_rejected(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_document(CHAT, b"x", filename="a.txt", caption="c" * 1025)


async def test_a_citizens_photo_can_be_downloaded(tg: FakeTelegramServer, bot: Bot) -> None:
    update = parsed(tg.photo(CHAT, caption="my form /help", data=b"JPEG!"), bot)
    assert update.message is not None
    assert (update.message.text, update.message.caption) == (None, "my form /help")
    file = await update.message.photo[-1].get_file()
    assert bytes(await file.download_as_bytearray()) == b"JPEG!"


async def test_unknown_files_are_bad_requests(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


# -- edits, callbacks, other methods --------------------------------------------------------------


async def test_edit_message_text_replaces_text_and_keyboard(tg: FakeTelegramServer, bot: Bot) -> None:
    original = await bot.send_message(CHAT, "Was this helpful?", reply_markup=keyboard("up", "down"))
    edited = await bot.edit_message_text("Thanks!", chat_id=CHAT, message_id=original.message_id)
    assert not isinstance(edited, bool)
    assert (edited.text, edited.reply_markup, edited.edit_date is not None) == ("Thanks!", None, True)
    assert [(m.method, m.message_id) for m in tg.sent] == [("sendMessage", 1), ("editMessageText", 1)]
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Thanks!", chat_id=CHAT, message_id=original.message_id)


async def test_edit_message_reply_markup_changes_only_the_keyboard(tg: FakeTelegramServer, bot: Bot) -> None:
    original = await bot.send_message(CHAT, "Rate", reply_markup=keyboard("up"))
    edited = await bot.edit_message_reply_markup(CHAT, original.message_id, reply_markup=keyboard("down"))
    assert not isinstance(edited, bool)
    assert (edited.text, edited.reply_markup) == ("Rate", keyboard("down"))


async def test_only_the_bots_existing_messages_can_be_edited(tg: FakeTelegramServer, bot: Bot) -> None:
    tg.send_message(CHAT, "citizen text")
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("hacked", chat_id=CHAT, message_id=1)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=99)
    document = await bot.send_document(CHAT, b"x", filename="a.txt")
    with pytest.raises(BadRequest, match=r"(?i)no text in the message"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=document.message_id)


async def test_callback_queries_can_be_answered_once(tg: FakeTelegramServer, bot: Bot) -> None:
    shown = await bot.send_message(CHAT, "Did you mean", reply_markup=keyboard("entry:tax"))
    update = parsed(tg.callback(CHAT, "entry:tax", message_id=shown.message_id, language_code="zh"), bot)
    query = update.callback_query
    assert query is not None
    assert query.message is not None
    assert (query.data, query.message.message_id, query.from_user.language_code) == ("entry:tax", 1, "zh")
    assert await bot.answer_callback_query(query.id, text="OK")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)


async def test_a_callback_on_an_unknown_message_carries_an_inaccessible_message(
    tg: FakeTelegramServer, bot: Bot
) -> None:
    query = parsed(tg.callback(CHAT, "old", message_id=500), bot).callback_query
    assert query is not None
    assert query.message is not None
    assert not query.message.is_accessible


async def test_a_forgotten_chat_keeps_none_of_its_messages(tg: FakeTelegramServer, bot: Bot) -> None:
    kept = await bot.send_message(CHAT + 1, "another chat")
    shown = await bot.send_message(CHAT, "Did you mean", reply_markup=keyboard("entry:tax"))
    tg.forget_chat(CHAT)
    query = parsed(tg.callback(CHAT, "entry:tax", message_id=shown.message_id), bot).callback_query
    assert query is not None
    assert query.message is not None
    assert not query.message.is_accessible
    assert (await bot.send_message(CHAT, "again")).message_id == 1
    assert (CHAT + 1, kept.message_id) in tg.messages


async def test_delete_message_forgets_it(tg: FakeTelegramServer, bot: Bot) -> None:
    message = await bot.send_message(CHAT, "temporary")
    assert await bot.delete_message(CHAT, message.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(CHAT, message.message_id)


async def test_commands_are_kept_per_language(tg: FakeTelegramServer, bot: Bot) -> None:
    await bot.set_my_commands([("start", "Start"), ("help", "Help")])
    await bot.set_my_commands([("start", "开始")], language_code="zh")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.description for c in await bot.get_my_commands(language_code="zh")] == ["开始"]
    assert await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == ()
    assert tg.commands() == [{"command": "start", "description": "Start"},
                             {"command": "help", "description": "Help"}]


@pytest.mark.parametrize(("command", "error"), [("Start!", "BOT_COMMAND_INVALID"),
                                                 ("start", "BOT_COMMAND_DESCRIPTION_INVALID")])
async def test_invalid_commands_are_rejected(bot: Bot, command: str, error: str) -> None:
    with pytest.raises(BadRequest, match=rf"(?i){error}"):
        await bot.set_my_commands([(command, "" if command == "start" else "Start")])


async def test_chat_action_close_and_log_out_succeed(tg: FakeTelegramServer, bot: Bot) -> None:
    assert await bot.send_chat_action(CHAT, "typing")
    assert await bot.close()
    assert await bot.log_out()
    assert [c.method for c in tg.calls[-3:]] == ["sendChatAction", "close", "logOut"]


# -- update builders -------------------------------------------------------------------------------


async def test_message_builder_marks_commands_and_mentions_in_utf16(tg: FakeTelegramServer, bot: Bot) -> None:
    message = parsed(tg.message(CHAT, "😀 /start@govbot_test_bot hi @clerk_one", username="ann"), bot).message
    assert message is not None
    assert message.from_user is not None
    assert message.parse_entities() == {
        MessageEntity("bot_command", 3, 22): "/start@govbot_test_bot",
        MessageEntity("mention", 29, 10): "@clerk_one",
    }
    assert (message.from_user.id, message.from_user.username, message.from_user.language_code) == (
        CHAT, "ann", "en")
    assert (message.chat.type, message.message_id) == ("private", 1)


async def test_group_messages_come_from_a_member_of_a_titled_group(tg: FakeTelegramServer, bot: Bot) -> None:
    message = parsed(tg.message(-100, "hello", chat_type="group"), bot).message
    assert message is not None
    assert message.from_user is not None
    assert (message.chat.type, message.chat.title, message.from_user.id) == ("group", "Group -100",
                                                                             DEFAULT_USER_ID)


async def test_unknown_chat_types_are_refused(tg: FakeTelegramServer) -> None:
    with pytest.raises(ValueError, match="chat_type"):
        tg.message(CHAT, "hi", chat_type="channel")


async def test_sticker_messages_have_no_text(tg: FakeTelegramServer, bot: Bot) -> None:
    message = parsed(tg.send_sticker(CHAT, emoji="🙂"), bot).message
    assert message is not None
    assert message.sticker is not None
    assert (message.text, message.sticker.emoji) == (None, "🙂")
    assert tg.pending_updates[0]["message"]["sticker"]["emoji"] == "🙂"


# -- webhooks --------------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[str | None, dict[str, Any]]]]]:
    """A webhook endpoint that accepts only the secret "s3cret" and records what it got."""
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=200 if request.headers.get(SECRET_HEADER) == "s3cret" else 403)

    app = web.Application()
    app.router.add_post("/hook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    await runner.cleanup()


async def test_a_set_webhook_makes_get_updates_conflict(tg: FakeTelegramServer, bot: Bot) -> None:
    tg.send_message(CHAT, "queued")
    assert await bot.set_webhook("https://gov.example/tg", secret_token="s3cret",
                                 allowed_updates=["message"])
    assert (tg.webhook.url, tg.webhook.secret_token, tg.webhook.allowed_updates) == (
        "https://gov.example/tg", "s3cret", ["message"])
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("https://gov.example/tg", 1)
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == ()


@pytest.mark.parametrize(
    ("url", "secret"), [("ftp://gov.example", None), ("https://gov.example", "bad token!")]
)
async def test_invalid_webhooks_are_rejected(bot: Bot, url: str, secret: str | None) -> None:
    with pytest.raises(BadRequest):
        await bot.set_webhook(url, secret_token=secret)


async def test_deliver_posts_with_the_registered_secret(
    tg: FakeTelegramServer, bot: Bot, receiver: tuple[str, list[tuple[str | None, dict[str, Any]]]]
) -> None:
    url, received = receiver
    await bot.set_webhook(url, secret_token="s3cret")
    assert await tg.deliver(tg.message(CHAT, "via webhook")) == 200
    assert await tg.deliver(tg.message(CHAT, "forged"), secret_token="guess") == 403
    assert await tg.deliver(tg.message(CHAT, "no header"), secret_token=None) == 403
    assert [(secret, body["message"]["text"]) for secret, body in received] == [
        ("s3cret", "via webhook"), ("guess", "forged"), (None, "no header")]
    assert [body["update_id"] for _, body in received] == [1, 2, 3]


async def test_deliver_without_a_webhook_is_a_test_error(tg: FakeTelegramServer) -> None:
    with pytest.raises(AssertionError, match="no webhook"):
        await tg.deliver(tg.message(CHAT, "hi"))
