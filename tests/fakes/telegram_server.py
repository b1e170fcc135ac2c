"""A fake Telegram Bot API server on 127.0.0.1 that the real python-telegram-bot talks to in tests.

    async with FakeTelegramServer(token="123:ABC") as tg:
        bot = telegram.Bot("123:ABC", base_url=tg.base_url, base_file_url=tg.base_file_url)
        tg.send_message(42, "/start")          # queued for getUpdates
        [reply] = await tg.wait_for_sent(chat_id=42)

The Bot API methods live by group in telegram_api_updates.py, telegram_api_messages.py and
telegram_api_bot.py; what they record in telegram_state.py; what Telegram accepts in telegram_checks.py
and telegram_params.py. This module serves them over HTTP and gives tests their calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes import telegram_updates as build
from tests.fakes.telegram_api_bot import BotMethods
from tests.fakes.telegram_api_messages import CAPTION_LIMIT, MESSAGE_LIMIT, MessageMethods
from tests.fakes.telegram_api_updates import SECRET_HEADER, UpdateMethods
from tests.fakes.telegram_checks import CALLBACK_DATA_LIMIT, check_reply_markup, plain_text
from tests.fakes.telegram_params import read_params
from tests.fakes.telegram_state import (
    JSON,
    ApiError,
    Call,
    Fault,
    Secret,
    SentMessage,
    Upload,
    WebhookState,
)

__all__ = [
    "CALLBACK_DATA_LIMIT",
    "CAPTION_LIMIT",
    "DEFAULT_TOKEN",
    "MESSAGE_LIMIT",
    "SECRET_HEADER",
    "ApiError",
    "Call",
    "FakeTelegramServer",
    "Secret",
    "SentMessage",
    "Upload",
    "WebhookState",
    "check_reply_markup",
    "plain_text",
    "read_params",
]

T = TypeVar("T")

DEFAULT_TOKEN = "123:ABC"
_DESCRIPTIONS = {400: "Bad Request", 403: "Forbidden: bot was blocked by the user",
                 500: "Internal Server Error", 502: "Bad Gateway"}


class FakeTelegramServer(UpdateMethods, MessageMethods, BotMethods):
    """An in-process Bot API server that records what the bot does and feeds it updates."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_username: str = "govbot_test_bot",
                 bot_name: str = "GovBot", clock: Callable[[], float] = time.time, port: int = 0) -> None:
        prefix = token.split(":", 1)[0]
        super().__init__(build.bot_user(int(prefix) if prefix.isdigit() else 1, first_name=bot_name,
                                        username=bot_username), clock)
        self.token = token
        self.port = port  # 0: any free port; a given one lets a bot be pointed at it before it is up
        self.base_url = self.base_file_url = ""
        self._sent_mark = self._call_mark = 0
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[JSON], Any]] = {
            name.removeprefix("_api_").replace("_", "").lower(): getattr(self, name)
            for name in dir(self) if name.startswith("_api_")
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegramServer:
        app = web.Application(client_max_size=50 * 1024 * 1024)  # Telegram's upload limit
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        self.base_file_url = f"http://127.0.0.1:{port}/file/bot"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True  # releases long polls so shutdown does not wait for their timeout
        self._bump()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests call -------------------------------------------------------------------------

    def mark(self) -> None:
        """Start counting sent messages and calls afresh for wait_for_sent and wait_for_call."""
        self._sent_mark, self._call_mark = len(self.sent), len(self.calls)

    def sent_since_mark(self) -> list[SentMessage]:
        """Every message sent or edited since the last mark()."""
        return self.sent[self._sent_mark:]

    async def wait_for_sent(self, count: int = 1, *, chat_id: int | str | None = None,
                            predicate: Callable[[SentMessage], bool] | None = None,
                            timeout: float = 5.0) -> list[SentMessage]:
        """The first `count` matching messages sent since mark(); AssertionError if they do not come."""
        def matching() -> list[SentMessage]:
            return [m for m in self.sent_since_mark()
                    if (chat_id is None or m.chat_id == chat_id) and (predicate is None or predicate(m))]

        found = await self._until(lambda: _first(matching(), count), timeout)
        if found is None:
            seen = "\n".join(f"  {m.method} chat={m.chat_id} text={m.text!r:.120}"
                             for m in self.sent_since_mark()) or "  nothing"
            raise AssertionError(f"expected {count} message(s) to chat {chat_id} within {timeout}s; "
                                 f"sent since mark:\n{seen}")
        return found

    async def wait_for_call(self, method: str, count: int = 1, *,
                            predicate: Callable[[Call], bool] | None = None,
                            timeout: float = 5.0) -> list[Call]:
        """The first `count` calls of method since mark(); AssertionError if they do not come."""
        def matching() -> list[Call]:
            return [c for c in self.calls[self._call_mark:]
                    if c.method.lower() == method.lower() and (predicate is None or predicate(c))]

        found = await self._until(lambda: _first(matching(), count), timeout)
        if found is None:
            seen = ", ".join(c.method for c in self.calls[self._call_mark:]) or "nothing"
            raise AssertionError(f"expected {count} {method} call(s) within {timeout}s; called: {seen}")
        return found

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1, times: int = 1,
                  description: str | None = None) -> None:
        """Answer the next `times` calls of method with an error instead of handling them."""
        if method.lower() not in self._methods:
            raise ValueError(f"unknown Bot API method {method!r}")
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if status == 429
                           else _DESCRIPTIONS.get(status, f"Error {status}"))
        fault = Fault(status, description, retry_after if status == 429 else None, times)
        self._faults[method.lower()].append(fault)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        handler = self._methods.get(name.lower())
        canonical = _camel(handler.__name__.removeprefix("_api_")) if handler else name
        call = Call(canonical, {}, self.clock())
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            call.params = await read_params(request)
            self.calls.append(call)
            self._bump()
            self._raise_fault(name.lower())
            body: JSON = {"ok": True, "result": await handler(call.params)}
            call.status = 200
        except ApiError as error:
            if call not in self.calls:
                self.calls.append(call)
            call.status, body = error.status, error.body()
        self._bump()
        return web.json_response(body, status=call.status)

    async def _download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        found = [data for file_path, data in self.files.values() if file_path == path]
        if request.match_info["token"] != self.token or not found:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=found[0], content_type="application/octet-stream")

    def _raise_fault(self, method: str) -> None:
        faults = self._faults.get(method)
        if not faults:
            return
        fault = faults[0]
        fault.times -= 1
        if fault.times <= 0:
            faults.popleft()
        raise ApiError(fault.status, fault.description, fault.retry_after)


def _first(items: list[T], count: int) -> list[T] | None:
    return items[:count] if len(items) >= count else None


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)
