"""A fake Telegram Bot API server on 127.0.0.1 that the real python-telegram-bot talks to in tests.

    async with FakeTelegramServer(token="123:ABC") as tg:
        bot = telegram.Bot("123:ABC", base_url=tg.base_url, base_file_url=tg.base_file_url)
        tg.send_message(42, "/start")          # queued for getUpdates
        [reply] = await tg.wait_for_sent(chat_id=42)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from tests.fakes import telegram_updates as build

JSON = dict[str, Any]
T = TypeVar("T")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_TOKEN = "123:ABC"

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
_JSON_PARAMS = ("reply_markup", "reply_parameters", "link_preview_options", "allowed_updates",
                "commands", "scope", "entities", "caption_entities")
_NOT_BY_DEFAULT = ("chat_member", "message_reaction", "message_reaction_count")
_HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                        "blockquote", "tg-spoiler", "span"})
_HTML_ENTITY = re.compile(r"&(?:#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_BUTTON_ACTIONS = ("url", "callback_data", "web_app", "login_url", "switch_inline_query", "pay",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                   "copy_text", "callback_game")
_DESCRIPTIONS = {400: "Bad Request", 403: "Forbidden: bot was blocked by the user",
                 500: "Internal Server Error", 502: "Bad Gateway"}
_NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup "
                 "are exactly the same as a current content and reply markup of the message")


class Secret(enum.Enum):
    """Marker for deliver(): send the secret token the bot registered."""

    REGISTERED = enum.auto()


class ApiError(Exception):
    """An error the fake answers with, in Telegram's words."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def body(self) -> JSON:
        """The JSON body Telegram returns for this error."""
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded in a multipart request."""

    filename: str
    data: bytes
    content_type: str


@dataclass(eq=False)
class Call:
    """One request to the fake; status is 0 while it is still being answered."""

    method: str
    params: JSON
    time: float
    status: int = 0


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent or edited (sendMessage, sendDocument, editMessageText, ...)."""

    method: str
    chat_id: int | str
    message_id: int
    time: float
    text: str | None = None
    plain_text: str | None = None
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    reply_to: int | None = None
    link_preview_options: JSON | None = None
    document_name: str | None = None
    document_bytes: bytes | None = None

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row after row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


@dataclass
class WebhookState:
    """The webhook the bot registered; url is empty while it polls."""

    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    drop_pending_updates: bool = False
    max_connections: int = 40


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    times: int


@dataclass
class _Pending:
    update: JSON
    delivered: bool = False


class _TelegramHTML(HTMLParser):
    """Checks text the way Telegram parses parse_mode=HTML and collects the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.plain: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        if tag == "span" and ("class", "tg-spoiler") not in attrs:
            raise ApiError(400, 'Bad Request: can\'t parse entities: Tag "span" must have class "tg-spoiler"')
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f'"</{self.open[-1]}>"' if self.open else "nothing"
            raise ApiError(400, f"Bad Request: can't parse entities: Unmatched end tag, "
                                f'expected {expected}, found "</{tag}>"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            raise ApiError(400, "Bad Request: can't parse entities: Unexpected '<': escape it as &lt;")
        self.plain.append(data)

    def handle_entityref(self, name: str) -> None:
        self.plain.append(_NAMED.get(name, ""))

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.plain.append(chr(code) if 0 < code <= 0x10FFFF else "")

    def handle_comment(self, data: str) -> None:
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag \"!--\"")

    def handle_decl(self, decl: str) -> None:
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag \"!\"")

    def handle_pi(self, data: str) -> None:
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag \"?\"")

    def unknown_decl(self, data: str) -> None:
        self.handle_decl(data)


def plain_text(text: str, parse_mode: str | None) -> str:
    """The text Telegram shows after parsing entities; raises ApiError for malformed HTML."""
    if (parse_mode or "").lower() != "html":
        return text
    if "&" in _HTML_ENTITY.sub("", text):
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported HTML entity: '&' must be "
                            "written as &amp;")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise ApiError(400, "Bad Request: can't parse entities: Can't find end tag corresponding to "
                            f'start tag "{parser.open[-1]}"')
    return "".join(parser.plain)


def check_reply_markup(markup: Any) -> JSON | None:
    """The reply_markup if Telegram would accept it; raises ApiError otherwise."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an "
                            "Array of Arrays")
    for button in (button for row in rows for button in row):
        _check_button(button)
    return markup


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text expected")
    if not any(action in button for action in _BUTTON_ACTIONS):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text buttons are "
                            "unallowed in the inline keyboard")
    data = button.get("callback_data")
    if "callback_data" in button and (
        not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT
    ):
        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    url = button.get("url")
    if "url" in button and not (isinstance(url, str) and re.match(r"(https?|tg)://\S", url)):
        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")


async def read_params(request: web.Request) -> JSON:
    """Parameters from the query string and a JSON, form or multipart body, as Telegram accepts."""
    params: JSON = dict(request.query)
    try:
        params.update(await _body_params(request))
    except (ValueError, HttpProcessingError) as error:  # undecodable bytes, a broken multipart body
        raise ApiError(400, f"Bad Request: can't parse request body: {error}") from None
    for name in _JSON_PARAMS:
        if isinstance(params.get(name), str):
            params[name] = _loads_or_400(params[name], name)
    return params


async def _body_params(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        body = await request.json(loads=_loads_or_400)
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON object expected")
        return body
    if not request.can_read_body:
        return {}
    return {name: Upload(value.filename, value.file.read(), value.content_type)
            if isinstance(value, web.FileField) else value
            for name, value in (await request.post()).items()}


def _loads_or_400(text: str | bytes, name: str = "request body") -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None


def _int(params: JSON, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(400, f"Bad Request: invalid {name} specified")
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def _required_int(params: JSON, name: str) -> int:
    value = _int(params, name)
    if value is None:
        raise ApiError(400, f"Bad Request: {name} is empty")
    return value


def _str(params: JSON, name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None if value is None else json.dumps(value)


def _bool(params: JSON, name: str) -> bool:
    return params.get(name) in (True, "true", "True", "1", 1)


def _chat_id(params: JSON) -> int | str:
    value = params.get("chat_id")
    if isinstance(value, str) and value.startswith("@") and len(value) > 1:
        return value
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    try:
        return _required_int(params, "chat_id")
    except ApiError:
        raise ApiError(400, "Bad Request: chat not found") from None


def _reply_to(params: JSON) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, dict):
        return _int(reply, "message_id")
    return _int(params, "reply_to_message_id")


class FakeTelegramServer(build.Chats):
    """An in-process Bot API server that records what the bot does and feeds it updates."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_username: str = "govbot_test_bot",
                 bot_name: str = "GovBot", clock: Callable[[], float] = time.time) -> None:
        prefix = token.split(":", 1)[0]
        super().__init__(build.bot_user(int(prefix) if prefix.isdigit() else 1, first_name=bot_name,
                                        username=bot_username), clock)
        self.token = token
        self.sent: list[SentMessage] = []
        self.calls: list[Call] = []
        self.webhook = WebhookState()
        self.base_url = self.base_file_url = ""
        self._queue: list[_Pending] = []
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._sent_mark = self._call_mark = 0
        self._changed = asyncio.Event()
        self._closing = False
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
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
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
        fault = _Fault(status, description, retry_after if status == 429 else None, times)
        self._faults[method.lower()].append(fault)

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates queued for getUpdates that the bot has not confirmed yet."""
        return [pending.update for pending in self._queue]

    def commands(self, *, language_code: str = "", scope: JSON | None = None) -> list[JSON]:
        """The bot commands set for a scope and language, as getMyCommands would return them."""
        return self._commands.get(_commands_key(scope, language_code), [])

    # -- updates -------------------------------------------------------------------------------

    def push_update(self, update: JSON) -> int:
        """Queue an update for getUpdates; sets update_id in place unless it has one (a re-send)."""
        update_id = int(self.numbered(update)["update_id"])
        self._queue.append(_Pending(update))
        self._bump()
        return update_id

    async def deliver(self, update: JSON, *, secret_token: str | Secret | None = Secret.REGISTERED,
                      timeout: float = 5.0) -> int:
        """POST an update to the registered webhook (secret None: no header) and return the status."""
        if not self.webhook.url:
            raise AssertionError("no webhook is set: the bot has not called setWebhook")
        self.numbered(update)
        secret = self.webhook.secret_token if secret_token is Secret.REGISTERED else secret_token
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                    session.post(self.webhook.url, json=update, headers=headers) as response):
            return response.status

    # -- Bot API methods (_api_<name>; Telegram matches method names case-insensitively) -----------

    async def _api_get_me(self, params: JSON) -> JSON:
        return self.bot

    async def _api_get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook.url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset, limit = _int(params, "offset", 0) or 0, min(max(_int(params, "limit", 100) or 100, 1), 100)
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = [str(kind) for kind in params["allowed_updates"]]
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._bump()  # an earlier long poll still waiting learns it was superseded
        ready = await self._until(lambda: self._ready(generation, limit),
                                  max(_int(params, "timeout", 0) or 0, 0))
        for pending in ready or []:
            pending.delivered = True
        return [pending.update for pending in ready or []]

    async def _api_set_webhook(self, params: JSON) -> bool:
        url = _str(params, "url") or ""
        if url and not re.match(r"https?://[^/\s]+", url):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = _str(params, "secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        drop = _bool(params, "drop_pending_updates")
        self.webhook = WebhookState(url, secret, allowed if isinstance(allowed, list) else None, drop,
                                    _int(params, "max_connections", 40) or 40) if url else WebhookState()
        if drop:
            self._queue.clear()
        return True

    async def _api_delete_webhook(self, params: JSON) -> bool:
        self.webhook = WebhookState()
        if _bool(params, "drop_pending_updates"):
            self._queue.clear()
        return True

    async def _api_get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {"url": self.webhook.url, "has_custom_certificate": False,
                      "pending_update_count": len(self._queue)}
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    async def _api_send_message(self, params: JSON) -> JSON:
        chat_id, text = _chat_id(params), _str(params, "text") or ""
        plain = self._checked_text(text, _str(params, "parse_mode"), MESSAGE_LIMIT, "message text")
        markup = check_reply_markup(params.get("reply_markup"))
        message = self.outgoing(chat_id, {"text": plain}, markup)
        self._record("sendMessage", params, message, text=text, plain=plain)
        return message

    async def _api_send_document(self, params: JSON) -> JSON:
        chat_id, document = _chat_id(params), params.get("document")
        if not isinstance(document, Upload | str) or not document:
            raise ApiError(400, "Bad Request: there is no document in the request")
        caption = _str(params, "caption")
        plain = self._checked_text(caption, _str(params, "parse_mode"), CAPTION_LIMIT, "message caption") \
            if caption else None
        content: JSON = {"document": self._document(document)}
        if plain:
            content["caption"] = plain
        message = self.outgoing(chat_id, content, check_reply_markup(params.get("reply_markup")))
        upload = document if isinstance(document, Upload) else None
        self._record("sendDocument", params, message, text=caption, plain=plain,
                     document_name=upload.filename if upload else None,
                     document_bytes=upload.data if upload else None)
        return message

    async def _api_edit_message_text(self, params: JSON) -> JSON | bool:
        if params.get("inline_message_id"):
            return True
        chat_id, stored = self._editable(params)
        if "text" not in stored:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = _str(params, "text") or ""
        plain = self._checked_text(text, _str(params, "parse_mode"), MESSAGE_LIMIT, "message text")
        markup = check_reply_markup(params.get("reply_markup"))
        return self._edit("editMessageText", params, chat_id, stored, {"text": plain}, markup, text)

    async def _api_edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        if params.get("inline_message_id"):
            return True
        chat_id, stored = self._editable(params)
        markup = check_reply_markup(params.get("reply_markup"))
        return self._edit("editMessageReplyMarkup", params, chat_id, stored, {}, markup, stored.get("text"))

    async def _api_answer_callback_query(self, params: JSON) -> bool:
        query_id = _str(params, "callback_query_id") or ""
        if query_id not in self.open_queries:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID "
                                "is invalid")
        self.open_queries.discard(query_id)
        return True

    async def _api_send_chat_action(self, params: JSON) -> bool:
        _chat_id(params)
        if not _str(params, "action"):
            raise ApiError(400, "Bad Request: action is empty")
        return True

    async def _api_delete_message(self, params: JSON) -> bool:
        key = (_chat_id(params), _required_int(params, "message_id"))
        if self.messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _api_get_file(self, params: JSON) -> JSON:
        file_id = _str(params, "file_id") or ""
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data),
                "file_path": path}

    async def _api_set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}",
                                                                 str(command.get("command"))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[_commands_key(params.get("scope"), _str(params, "language_code"))] = commands
        return True

    async def _api_get_my_commands(self, params: JSON) -> list[JSON]:
        return self.commands(language_code=_str(params, "language_code") or "", scope=params.get("scope"))

    async def _api_delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(_commands_key(params.get("scope"), _str(params, "language_code")), None)
        return True

    async def _api_close(self, params: JSON) -> bool:
        return True

    async def _api_log_out(self, params: JSON) -> bool:
        return True

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

    # -- internals -----------------------------------------------------------------------------

    def _bump(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, probe: Callable[[], T | None], seconds: float) -> T | None:
        """Wait until probe() gives a result (re-checked on every change) or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            changed = self._changed
            found = probe()
            remaining = deadline - loop.time()
            if found is not None or remaining <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _ready(self, generation: int, limit: int) -> list[_Pending] | None:
        if generation != self._poll_generation:
            raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only "
                                "one bot instance is running")
        self._queue = [pending for pending in self._queue if self._wanted(pending.update)]
        ready = sorted(self._queue, key=lambda pending: int(pending.update["update_id"]))[:limit]
        return ready if ready or self._closing else None

    def _wanted(self, update: JSON) -> bool:
        kind = build.update_kind(update)
        return kind in self._allowed_updates if self._allowed_updates else kind not in _NOT_BY_DEFAULT

    def _confirm(self, offset: int) -> None:
        """Forget updates the bot confirmed; a re-sent duplicate not yet delivered stays queued."""
        if offset < 0:
            self._queue = self._queue[offset:]
        else:
            self._queue = [pending for pending in self._queue
                           if not pending.delivered or int(pending.update["update_id"]) >= offset]

    def _raise_fault(self, method: str) -> None:
        faults = self._faults.get(method)
        if not faults:
            return
        fault = faults[0]
        fault.times -= 1
        if fault.times <= 0:
            faults.popleft()
        raise ApiError(fault.status, fault.description, fault.retry_after)

    def _checked_text(self, text: str, parse_mode: str | None, limit: int, what: str) -> str:
        plain = plain_text(text, parse_mode)
        if not plain.strip():
            raise ApiError(400, f"Bad Request: {what} is empty")
        if len(plain) > limit:
            raise ApiError(400, f"Bad Request: {what.replace(' text', '')} is too long")
        return plain

    def _editable(self, params: JSON) -> tuple[int | str, JSON]:
        chat_id = _chat_id(params)
        stored = self.messages.get((chat_id, _required_int(params, "message_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if stored["from"]["id"] != self.bot["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat_id, stored

    def _edit(self, method: str, params: JSON, chat_id: int | str, stored: JSON, content: JSON,
              markup: JSON | None, text: str | None) -> JSON:
        inline = markup if markup and "inline_keyboard" in markup else None
        edited = {key: value for key, value in stored.items() if key != "reply_markup"}
        edited.update(content, edit_date=int(self.clock()), **({"reply_markup": inline} if inline else {}))
        if edited.get("text") == stored.get("text") and inline == stored.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        self.messages[(chat_id, stored["message_id"])] = edited
        self._record(method, params, edited, text=text, plain=edited.get("text"))
        return edited

    def _document(self, document: Upload | str) -> JSON:
        if isinstance(document, str):
            return {"file_id": document, "file_unique_id": f"u{document}"}
        file_id = f"doc{len(self.files)}"
        self.files[file_id] = (f"documents/{document.filename}", document.data)
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": document.filename,
                "mime_type": document.content_type, "file_size": len(document.data)}

    def _record(self, method: str, params: JSON, message: JSON, *, text: str | None, plain: str | None,
                document_name: str | None = None, document_bytes: bytes | None = None) -> None:
        preview = params.get("link_preview_options")
        self.sent.append(SentMessage(
            method, _chat_id(params), int(message["message_id"]), self.clock(), text, plain,
            _str(params, "parse_mode"), check_reply_markup(params.get("reply_markup")), _reply_to(params),
            preview if isinstance(preview, dict) else None, document_name, document_bytes))


def _first(items: list[T], count: int) -> list[T] | None:
    return items[:count] if len(items) >= count else None


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""
