"""python-telegram-bot's Bot API requests over aiohttp, against the fake Bot API and misbehaving servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.request import RequestData

from bot.channels.telegram_http import AiohttpRequest
from tests.fakes.telegram_server import DEFAULT_TOKEN, FakeTelegramServer

CHAT = 42


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(DEFAULT_TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url,
                   request=AiohttpRequest()) as client:
        yield client


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A server that accepts requests and never answers them; its URL."""
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    never.set()
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_message_with_html_and_buttons_arrives_as_sent(bot: Bot, tg: FakeTelegramServer) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes ✓", callback_data="rate:1:1")]])
    message = await bot.send_message(CHAT, "<b>Hello</b> 你好", parse_mode=ParseMode.HTML,
                                     reply_markup=markup)
    [sent] = tg.sent
    assert (sent.plain_text, sent.parse_mode) == ("Hello 你好", "HTML")
    assert sent.buttons == [{"text": "Yes ✓", "callback_data": "rate:1:1"}]
    assert message.message_id == sent.message_id


@pytest.mark.parametrize("filename", ["my data.json", "我的数据.json"])
async def test_a_document_is_uploaded_with_its_name_and_bytes(
        bot: Bot, tg: FakeTelegramServer, filename: str) -> None:
    content = bytes(range(256)) * 10
    await bot.send_document(CHAT, InputFile(content, filename=filename), caption="<i>yours</i>",
                            parse_mode=ParseMode.HTML)
    [sent] = tg.sent
    assert (sent.document_name, sent.document_bytes, sent.plain_text) == (filename, content, "yours")


async def test_an_error_of_the_bot_api_becomes_the_error_python_telegram_bot_raises(
        bot: Bot, tg: FakeTelegramServer) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message("not a chat", "hi")


async def test_a_server_that_does_not_answer_times_out(silent_server: str) -> None:
    request = AiohttpRequest(timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{silent_server}/bot{DEFAULT_TOKEN}/getMe")
    finally:
        await request.shutdown()


async def test_a_call_may_ask_for_its_own_read_timeout(silent_server: str) -> None:
    request = AiohttpRequest(timeout=30.0)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{silent_server}/bot{DEFAULT_TOKEN}/getMe", read_timeout=0.2)
    finally:
        await request.shutdown()


async def test_cookies_a_server_sets_are_not_sent_back() -> None:
    cookies: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True, "result": True})
        response.set_cookie("tracker", "citizen-42")
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    request = AiohttpRequest()
    await request.initialize()
    try:
        for _ in range(2):
            assert await request.post(f"http://localhost:{runner.addresses[0][1]}/bot{DEFAULT_TOKEN}/close")
    finally:
        await request.shutdown()
        await runner.cleanup()
    assert cookies == [None, None]


async def test_a_refused_connection_is_a_network_error() -> None:
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await request.post(f"http://127.0.0.1:{closed_port()}/bot{DEFAULT_TOKEN}/getMe",
                               RequestData())
    finally:
        await request.shutdown()


async def test_a_request_is_refused_before_initialize_and_works_again_after_a_restart(
        tg: FakeTelegramServer) -> None:
    request = AiohttpRequest()
    url = f"{tg.base_url}{DEFAULT_TOKEN}/getMe"
    with pytest.raises(NetworkError, match="not initialized"):
        await request.post(url)
    await request.initialize()
    await request.shutdown()
    await request.initialize()
    try:
        result = await request.post(url)
    finally:
        await request.shutdown()
    assert isinstance(result, dict)
    assert result["username"] == tg.bot["username"]
