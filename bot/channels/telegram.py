"""Telegram: python-telegram-bot inside govbot's aiohttp app — polling or webhook, the inbox, and replies.

Every update is stored in the inbox before it is processed (re-sends are dropped there), processed in a
task of its own, one at a time per chat, and marked processed or failed (outcomes are written in batches,
see telegram_inbox.Outcomes); updates left unprocessed by a crash are picked up again on the next start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import secrets
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import BotCommand, InlineKeyboardMarkup, InputFile, User
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.channels.telegram_http import DEFAULT_TIMEOUT, AiohttpRequest
from bot.channels.telegram_inbox import Arrivals, Outcomes, backoff
from bot.channels.telegram_render import fits_caption, keyboard, keyboard_json, plain, split_html
from bot.channels.telegram_updates import CHANNEL, read_update
from bot.channels.turns import ChatTurns
from bot.config import ConfigError, Settings
from bot.keys import CONVERSATION, METRICS, SENDERS, SESSIONS, SETTINGS, wake_workers
from bot.log_masking import keep_libraries_quiet
from bot.metrics import Metrics
from bot.notify import Unreachable
from handlers.i18n import DEFAULT_LANGUAGE, LANGUAGES, language_of, t
from handlers.kept import KEPT, kept_data
from handlers.start import command_menu
from handlers.types import FLOOD_QUIET, Conversation, Incoming, Reply, erased
from storage.db import DATABASE_ERRORS, Outage, error_reason, out_of_reach
from storage.inbox import InboxRepository
from storage.models import utcnow
from storage.notices import NoticeRepository

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - the header's name, not a secret
ALLOWED_UPDATES = ("message", "callback_query")
SHUTDOWN_TIMEOUT = 10.0
"""Seconds a stopping bot waits for updates in flight; unfinished ones are released for the next start."""
DATABASE_STOP_TIMEOUT = 5.0
"""Seconds a stopping bot waits for each of its last writes (updates being stored, releases, outcomes): a
database that does not answer at all (frozen, cut off by the network) held the stop forever."""
POLL_TIMEOUT = 10
"""Seconds a getUpdates long poll waits for news."""
BACKOFF_MAX = 60.0
"""Most seconds between tries to reach Telegram: polling after failures, starting while it is out of reach."""
DATABASE_BACKOFF_MAX = 5.0
"""Most seconds between polls while the database cannot store what they fetch: each costs one getUpdates and
one failed connection, and citizens' messages wait no longer than this once the database is back."""
INBOX_LEASE = timedelta(minutes=5)
"""An attempt at an update running longer than this is taken to have died with its process, and another
process (or this one, on its next sweep) takes the update over; real turns take milliseconds."""
SWEEP_SECONDS = 30.0
"""How often the inbox is searched for updates whose attempt died."""
RATE_LIMIT_RETRIES = 3
RETRY_AFTER_MAX = 120.0
"""Most seconds one Bot API request waits in all behind Telegram's 429s, honouring each retry_after, before
it is given up: well within INBOX_LEASE, after which another process would take its update over."""
NOTICE_LIMIT = 200
"""Telegram's limit on the text of a button press's acknowledgement."""
_UNCHANGED = "message is not modified"
_UNEDITABLE = ("message to edit not found", "message can't be edited")
_GONE = ("chat not found", "user is deactivated", "peer_id_invalid")
_TOPIC_GONE = ("message thread not found", "topic_closed", "topic_deleted")
"""Telegram's words (PTB drops the "Bad Request: ") for a forum topic that can no longer be posted in."""

SEND_MESSAGE = "sendMessage"
EDIT_MESSAGE_TEXT = "editMessageText"
GET_UPDATES = "getUpdates"
# All are sent with do_api_request (see TelegramChannel._call and _fetch), which warns that PTB has a method
# for them.
warnings.filterwarnings(
    "ignore", message=rf"Please use 'Bot\.({SEND_MESSAGE}|{EDIT_MESSAGE_TEXT}|{GET_UPDATES})'",
    category=PTBUserWarning)

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
JSON = dict[str, Any]
T = TypeVar("T")


def build_application(settings: Settings) -> TelegramApp:
    """The python-telegram-bot Application: our Bot API server and client, and the rate limiter.

    No updater: polling is TelegramChannel's own loop, which stores fetched updates before the next
    getUpdates confirms them to Telegram (PTB's updater confirms them as soon as they are queued).
    """
    assert settings.telegram_token is not None
    builder: Any = ApplicationBuilder().token(settings.telegram_token.get_secret_value())
    builder = builder.request(AiohttpRequest())  # httpx cost several times the CPU per call
    base_url = settings.telegram_api_base_url
    if base_url:
        builder = builder.base_url(base_url).base_file_url(file_base_url(base_url))
    if settings.telegram_rate_limit:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
    application: TelegramApp = builder.updater(None).build()
    return application


def file_base_url(base_url: str) -> str:
    """The file download address of a Bot API server: ``…/bot`` becomes ``…/file/bot``."""
    head, found, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if found else base_url


def catalogue_text(language: str | None, key: str) -> str:
    """A text of the message catalogue in the citizen's language (Telegram's language code)."""
    return t(language_of(language) or DEFAULT_LANGUAGE, key)


@dataclass
class Progress:
    """How many of a reply's messages Telegram has taken."""

    parts: int = 0


def unsent(reply: Reply, parts_sent: int, language: str | None) -> list[Reply]:
    """What is left of a reply once Telegram took ``parts_sent`` of its messages: one reply a message, the
    buttons on the last. A document is not kept (a copy of a citizen's data export would wait in the
    queue): the citizen gets the apology, to ask again."""
    if reply.document is not None:
        return [Reply(catalogue_text(language, "error"), kind="error")]
    parts = split_html(reply.text)[parts_sent:]
    return [Reply(part, buttons=reply.buttons if number == len(parts) else (), kind=reply.kind)
            for number, part in enumerate(parts, start=1)]


class TelegramChannel:
    """Receives Telegram updates (polling or webhook), hands them to the dialogue, and sends the replies."""

    def __init__(self, application: TelegramApp, conversation: Conversation,
                 sessions: async_sessionmaker[AsyncSession], metrics: Metrics, *,
                 rate_limited: bool, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 now: Callable[[], datetime] = utcnow, inbox_lease: timedelta = INBOX_LEASE,
                 wake: Callable[[], None] = lambda: None) -> None:
        """``wake`` tells the notifier that replies were kept for it."""
        self.application = application
        self.conversation = conversation
        self.sessions = sessions
        self.metrics = metrics
        self.webhook_secret: str | None = None
        self.accepting = False
        self._rate_limited = rate_limited
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._inbox_lease = inbox_lease
        self._wake = wake
        self._background: list[asyncio.Task[None]] = []
        self._offset: int | None = None
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._chats = ChatTurns()
        self._outcomes = Outcomes(sessions)
        self._arrivals = Arrivals(sessions, self._spawn)

    @property
    def bot_user(self) -> User:
        return self.application.bot.bot  # type: ignore[no-any-return]

    async def start(self, public_url: str | None = None, *, secret: str | None = None) -> None:
        """Connect, register the webhook (or clear it to poll), then take up what an earlier run left in the
        inbox and new updates.

        Raises what Telegram answered; called again after a failure, it goes on from the step that failed.
        """
        if public_url is not None and self.webhook_secret is None:
            self.webhook_secret = secret or secrets.token_urlsafe(32)  # the webhook says 503 until we are up
        await self.application.initialize()  # getMe
        url = None
        if public_url is None:
            await self.application.bot.delete_webhook()  # Telegram refuses getUpdates while one is set
        else:
            url = public_url.rstrip("/") + WEBHOOK_PATH
            await self.application.bot.set_webhook(url=url, secret_token=self.webhook_secret,
                                                   allowed_updates=ALLOWED_UPDATES)
        if not self.application.running:
            await self.application.start()
        self.accepting = True
        await self.recover()
        self._background.append(asyncio.create_task(self._sweep(), name="telegram-inbox-sweep"))
        if url is None:
            self._background.append(asyncio.create_task(self._poll(), name="telegram-polling"))
            log.info("telegram: polling as @%s", self.bot_user.username)
        else:
            log.info("telegram: webhook at %s for @%s", url, self.bot_user.username)
        # In the background: start-up (and with it the web server's listening) does not wait for it.
        self._background.append(asyncio.create_task(self._offer_commands(), name="telegram-commands"))

    def keep_starting(self, public_url: str | None, *, secret: str | None, failed: Exception,
                      started: Callable[[], None]) -> None:
        """Try start() again in the background, with back-off, after it ``failed``; ``started`` once it is up.

        One line is logged when the tries start failing (and again if they fail differently: out of reach,
        or refused), none for each further try; start() logs when the channel is up.
        """
        task = asyncio.create_task(self._keep_starting(public_url, secret, failed, started),
                                   name="telegram-start")
        self._background.append(task)

    async def _keep_starting(self, public_url: str | None, secret: str | None, failed: Exception,
                             started: Callable[[], None]) -> None:
        failures, logged = 1, _log_start_failure(failed, None)
        while True:
            await self._sleep(_start_delay(failures, failed))
            try:
                await self.start(public_url, secret=secret)
            except Exception as exc:  # whatever failed, try again: a channel given up is a silent bot
                failures, failed = failures + 1, exc
                logged = _log_start_failure(exc, logged)
                continue
            started()
            return

    async def _offer_commands(self) -> None:
        """List the commands in Telegram's "/" menu, in English and, for Chinese clients, in Chinese; the
        bot works without the menu, so a refusal is one warning."""
        try:
            for language in LANGUAGES:
                commands = [BotCommand(name, text) for name, text in command_menu(language)]
                code = None if language == DEFAULT_LANGUAGE else language
                await self.application.bot.set_my_commands(commands, language_code=code)
        except TelegramError as exc:
            log.warning("telegram: the command menu was not set (%s)", _reason(exc))

    async def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:  # noqa: ASYNC109
        """Stop receiving, let updates in flight finish (up to ``timeout``), then disconnect."""
        self.accepting = False
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if not await self._arrivals.settle(DATABASE_STOP_TIMEOUT):  # those stored now still start processing
            log.warning("telegram: the database did not answer in %.0f s; updates being stored were given "
                        "up (Telegram sends them again)", DATABASE_STOP_TIMEOUT)
        await self._confirm_polled()
        if self.application.running:
            await self.application.stop()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            abandoned = list(self._running)
            for task in late:
                task.cancel()  # still unprocessed in the inbox: the next start takes it up
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                log.warning("telegram: %d update(s) unfinished at shutdown, left for the next start",
                            len(late))
                await self._release(abandoned)
        if not await self._outcomes.close(DATABASE_STOP_TIMEOUT):
            log.warning("telegram: the database did not answer in %.0f s; outcomes not yet recorded were "
                        "given up (their updates are processed again after their lease)",
                        DATABASE_STOP_TIMEOUT)
        await self.application.shutdown()
        await self.application.bot.shutdown()  # its connections stay open if getMe failed during start

    async def receive(self, payload: JSON) -> bool:
        """Store an update and start processing it; False (and nothing done) for one stored before."""
        update_id = str(payload["update_id"])
        accepted = await self._arrivals.store(update_id, payload)  # processing starts when it is stored
        if not accepted:
            log.info("telegram: update %s was sent again; dropped", update_id)
        return accepted

    async def recover(self) -> int:
        """Take up stored updates whose attempt died (with an earlier run or another process).

        Only attempts older than the inbox lease count as dead: a younger one may still be running in
        another process sharing the database. Returns how many updates were taken up.
        """
        now = self._now()
        async with self.sessions() as session:
            pending = await InboxRepository(session).pending(CHANNEL, stale_before=now - self._inbox_lease)
        taken = 0
        for stored in pending:
            if stored.update_id in self._running:
                continue  # this process is still at it (stuck on Telegram, say); never twice at once
            async with self.sessions.begin() as session:
                claimed = await InboxRepository(session).claim(CHANNEL, stored.update_id, stored.attempts,
                                                               now=now)
            if claimed:
                self._spawn(stored.payload, stored.update_id)
                taken += 1
        if taken:
            log.info("telegram: processing %d update(s) left over from an earlier run", taken)
        return taken

    async def idle(self) -> None:
        """Wait until every update started so far has been processed."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        await self._outcomes.flush()

    async def _release(self, update_ids: list[str]) -> None:
        """Let any process take these updates up at once: their attempts here were given up."""
        try:
            async with asyncio.timeout(DATABASE_STOP_TIMEOUT), self.sessions.begin() as session:
                await InboxRepository(session).release(CHANNEL, update_ids)
        except DATABASE_ERRORS as exc:  # TimeoutError too: a database that does not answer
            log.warning("telegram: could not release unfinished updates (%s); they wait out their lease",
                        type(exc).__name__)

    async def _sweep(self) -> None:
        """Every SWEEP_SECONDS, take up updates whose attempt died; a failing database only delays it.

        A database out of reach is one warning when it goes and one line when it is back, not one a sweep."""
        outage = Outage(log, "telegram: inbox sweep", "updates whose attempt died wait until it is back")
        while True:
            await self._sleep(SWEEP_SECONDS)
            try:
                await self.recover()
            except Exception as exc:  # a bug must not end the sweep: stuck updates would wait for a restart
                if outage.began(exc):
                    continue
                if isinstance(exc, DATABASE_ERRORS):  # a statement refused, not the database gone
                    log.warning("telegram: inbox sweep failed (%s); trying again later", type(exc).__name__)
                else:
                    log.exception("telegram: inbox sweep failed unexpectedly; trying again later")
            else:
                outage.ended()

    async def _poll(self) -> None:
        """Long-poll getUpdates; a fetched batch is stored before the next call confirms it to Telegram.

        A database out of reach is one warning when it goes and one line when it is back, not one a poll."""
        failures = 0
        outage = Outage(log, "telegram: polling", "updates wait at Telegram until it is back")
        while True:
            try:
                updates = await self._fetch(wait=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES))
                await asyncio.gather(*(self.receive(update) for update in updates))
            except RetryAfter as exc:
                await self._sleep(_seconds(exc))
                continue
            except TimedOut:
                continue  # a long poll that outlived its read timeout: nothing was fetched
            except Exception as exc:  # whatever failed, polling goes on: a stopped poller is a silent bot
                # Not confirmed, so Telegram sends the same updates again; the inbox drops what it has.
                failures += 1
                most = DATABASE_BACKOFF_MAX if isinstance(exc, DATABASE_ERRORS) else BACKOFF_MAX
                delay = backoff(failures, most)
                if outage.began(exc):
                    pass
                elif isinstance(exc, (TelegramError, *DATABASE_ERRORS)):
                    level = logging.ERROR if isinstance(exc, InvalidToken) else logging.WARNING
                    log.log(level, "telegram: polling failed (%s); again in %.0f s", _reason(exc), delay)
                else:  # neither Telegram nor the database: a bug, logged with its traceback
                    log.exception("telegram: polling failed unexpectedly; again in %.0f s", delay)
                await self._sleep(delay)
                continue
            failures = 0
            if updates:  # stored: the database answered
                outage.ended()
                self._offset = max(update["update_id"] for update in updates) + 1

    async def _fetch(self, *, wait: int, **params: Any) -> list[JSON]:
        """getUpdates from ``self._offset`` on: the updates as Telegram sent them, not read by PTB.

        PTB's get_updates reads them all, so one it cannot read (a field missing, a newer Bot API) failed
        every poll and held up every citizen's updates; read one at a time in processing, it fails alone.
        """
        params = {"offset": self._offset, "timeout": wait, **params}
        result = await self.application.bot.do_api_request(
            GET_UPDATES, api_kwargs={name: value for name, value in params.items() if value is not None},
            read_timeout=DEFAULT_TIMEOUT + wait)
        return [update for update in result if _is_update(update)]

    async def _confirm_polled(self) -> None:
        """Tell Telegram that everything polled so far is stored (the next getUpdates would, too)."""
        if self._offset is None:
            return
        try:
            await self._fetch(wait=0, limit=1)
        except TelegramError as exc:
            log.warning("telegram: could not confirm polled updates (%s); they will be fetched again "
                        "and dropped as re-sends", type(exc).__name__)

    def _spawn(self, payload: JSON, update_id: str) -> None:
        task = asyncio.create_task(self._process(payload, update_id), name=f"telegram-update-{update_id}")
        self._tasks.add(task)
        self._running.add(update_id)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._running.discard(update_id))

    async def _process(self, payload: JSON, update_id: str) -> None:
        """Handle one stored update and record the outcome in the inbox and the metrics.

        Only an update whose turn did not complete is recorded as failed, to be tried again: a turn the
        dialogue completed is stored, and run again it would be repeated (the words read afresh, out of
        order with what the citizen sent since), so replies Telegram did not take are kept for the notifier.
        """
        started = self._clock()
        incoming: Incoming | None = None
        replies: list[Reply] = []
        error: str | None = None
        answered = failed = False
        try:
            read = read_update(payload, self.bot_user, self.application.bot)
            async with self._chats.turn(read.chat):
                incoming = read.incoming
                replies = await self._respond(incoming, read.query_id)
                answered = True
                if incoming is not None:
                    await self._deliver(incoming, replies)
        except Exception as exc:
            failed = not _gone(exc)
            error = await self._failed(update_id, incoming, exc, answered=answered)
        self._outcomes.add(update_id, error)
        if incoming is not None:
            failed = failed or any(reply.kind == "error" for reply in replies)
            self.metrics.observe(CHANNEL, replies, self._clock() - started, failed=failed)

    async def _failed(self, update_id: str, incoming: Incoming | None, exc: Exception, *,
                      answered: bool) -> str | None:
        """Log why an update failed and apologise; the error to record if the update is to be tried again."""
        if _gone(exc):  # blocked by the citizen, or out of the group: trying again cannot help
            log.info("telegram: the replies to update %s cannot be delivered (%s)", update_id, exc)
            return None
        error = None
        if answered:
            log.warning("telegram: the replies to update %s were not all sent (%s: %s)", update_id,
                        type(exc).__name__, exc, exc_info=not isinstance(exc, TelegramError))
        else:
            log.exception("telegram: update %s failed", update_id)  # never the text: it is the citizen's
            error = f"{type(exc).__name__}: {exc}"
        if incoming is not None:
            await self._apologise(incoming)
        return error

    async def _respond(self, incoming: Incoming | None, query: str | None) -> list[Reply]:
        """The dialogue's replies to one event; ``query`` is the id of the button press to acknowledge."""
        if incoming is None:
            if query is not None:
                await self._answer(query, None)
            return []
        replies: list[Reply] = []
        try:
            replies = await self.conversation.handle(incoming)
        finally:
            if query is not None:  # always, so the citizen's button stops spinning
                await self._answer(query, next((r.notice for r in replies if r.notice), None))
        return replies

    async def _deliver(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send the replies to an event, in order; from the first that Telegram does not take after the
        retries (out of reach, not refusing it), the rest is kept for the notifier."""
        replies = [reply for reply in replies if reply.kind != FLOOD_QUIET]  # told so already: silence
        for number, reply in enumerate(replies):
            progress = Progress()
            try:
                await self._reply(incoming, reply, progress)
            except TelegramError as exc:
                if not _unreachable(exc):
                    raise
                rest = [*unsent(reply, progress.parts, incoming.language), *replies[number + 1:]]
                # After /forget the notice belongs to no citizen: nothing may tie that exchange to them.
                await self._keep(incoming, rest, None if erased(replies) else incoming.user_id, exc)
                return

    async def _keep(self, incoming: Incoming, replies: list[Reply], account: str | None,
                    exc: TelegramError) -> None:
        """Queue replies Telegram did not take as a citizen notice; ``exc`` is raised if they cannot be."""
        if not replies:
            return
        try:
            async with self.sessions.begin() as session:
                await NoticeRepository(session).enqueue_for_account(
                    channel=CHANNEL, account=account, chat_id=incoming.chat_id,
                    language=language_of(incoming.language) or DEFAULT_LANGUAGE, kind=KEPT,
                    data=kept_data(replies), now=self._now(), thread_id=incoming.thread_id)
        except DATABASE_ERRORS as failed:
            log.warning("telegram: %d message(s) Telegram did not take could not be kept either (%s)",
                        len(replies), _reason(failed))
            raise exc from failed
        log.warning("telegram: Telegram did not take %d message(s) (%s); they wait in the citizen notices",
                    len(replies), _reason(exc))
        self._wake()

    async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
        """Message a chat unprompted (a department's answer, kept replies), into forum topic ``thread`` if
        any; Unreachable if Telegram refuses it for good."""
        try:
            chat = int(chat_id)
            topic = int(thread) if thread is not None else None
            for reply in replies:
                await self._send_to_topic(chat, reply, topic)
        except ValueError:
            raise Unreachable(f"not a Telegram chat id: {chat_id[:20]!r}") from None
        except (Forbidden, BadRequest) as exc:
            if _gone(exc):
                raise Unreachable(exc.message) from exc
            raise

    async def _send_to_topic(self, chat_id: int, reply: Reply, topic: int | None) -> None:
        """Send into the topic; into the chat itself once the topic is closed or deleted: the citizen gets
        the reply in the General topic rather than retries for a week."""
        progress = Progress()
        try:
            await self._send(chat_id, reply, thread=topic, progress=progress)
        except BadRequest as exc:
            if topic is None or not any(phrase in exc.message.lower() for phrase in _TOPIC_GONE):
                raise
            log.info("telegram: a topic was gone (%s); the reply goes to its chat", exc.message)
            await self._send(chat_id, reply, progress=progress)

    async def _reply(self, incoming: Incoming, reply: Reply, progress: Progress | None = None) -> None:
        pressed = incoming.message_id if incoming.payload is not None else None  # the button's message
        thread = int(incoming.thread_id) if incoming.thread_id is not None else None
        try:
            await self._send(int(incoming.chat_id), reply, int(pressed) if pressed is not None else None,
                             thread, progress)
        except ChatMigrated as exc:  # the group became a supergroup since it wrote (a late update)
            await self._send(int(exc.new_chat_id), reply, progress=progress)

    async def _send(self, chat_id: int, reply: Reply, pressed: int | None = None, thread: int | None = None,
                    progress: Progress | None = None) -> None:
        """Send one reply: edited into the pressed message, as a document, or as one or more messages;
        ``progress`` counts the messages Telegram took."""
        if reply.document is not None:
            await self._send_document(chat_id, reply, keyboard(reply.buttons), thread)
            return
        progress = progress or Progress()
        markup = keyboard_json(reply.buttons)
        parts = split_html(reply.text)
        last = len(parts) - 1
        if parts and reply.replace and pressed is not None and await self._edit(
                chat_id, pressed, parts[0], markup if last == 0 else None):
            progress.parts = 1
        for number in range(progress.parts, len(parts)):
            await self._send_text(chat_id, parts[number], markup if number == last else None, thread)
            progress.parts = number + 1

    async def _send_text(
        self, chat_id: int, text: str, markup: str | None, thread: int | None = None
    ) -> None:
        """One message, into forum topic ``thread`` if any; ``markup``: the keyboard as JSON."""
        await self._retrying(lambda: self._call(SEND_MESSAGE, chat_id=chat_id, text=text,
                                                parse_mode=ParseMode.HTML, reply_markup=markup,
                                                message_thread_id=thread))

    async def _call(self, method: str, **params: Any) -> None:
        """A Bot API call whose answer is not read: ``send_message`` and ``edit_message_text`` would build a
        Message, with its chat, sender and keyboard, from every answer (a fifteenth of an update's CPU)."""
        params = {name: value for name, value in params.items() if value is not None}
        await self.application.bot.do_api_request(method, api_kwargs=params)

    async def _send_document(
        self, chat_id: int, reply: Reply, markup: InlineKeyboardMarkup | None, thread: int | None
    ) -> None:
        assert reply.document is not None
        caption = reply.text if reply.text and fits_caption(reply.text) else None
        if caption is None:
            for part in split_html(reply.text):
                await self._send_text(chat_id, part, None, thread)
        document = reply.document
        bot = self.application.bot
        await self._retrying(lambda: bot.send_document(
            chat_id, InputFile(document.content, filename=document.filename), message_thread_id=thread,
            caption=caption, parse_mode=ParseMode.HTML if caption else None, reply_markup=markup))

    async def _edit(self, chat_id: int, message_id: int, text: str, markup: str | None) -> bool:
        """Replace the pressed message; False when it cannot be edited (gone, too old): send it anew."""
        try:
            await self._retrying(lambda: self._call(
                EDIT_MESSAGE_TEXT, chat_id=chat_id, message_id=message_id, text=text,
                parse_mode=ParseMode.HTML, reply_markup=markup))
        except BadRequest as exc:
            reason = exc.message.lower()
            if _UNCHANGED in reason:
                return True  # it already shows exactly this: sending it again would only repeat it
            if any(phrase in reason for phrase in _UNEDITABLE):
                return False
            raise
        return True

    async def _answer(self, query: str, notice: str | None) -> None:
        """Acknowledge a button press; a failure here (the query expired) must not lose the reply."""
        bot = self.application.bot
        try:
            await self._retrying(lambda: bot.answer_callback_query(
                query, text=plain(notice)[:NOTICE_LIMIT] if notice else None))
        except TelegramError as exc:
            log.warning("telegram: could not answer a button press: %s", exc)

    async def _apologise(self, incoming: Incoming) -> None:
        with contextlib.suppress(TelegramError, ValueError):
            await self._reply(incoming, Reply(catalogue_text(incoming.language, "error"), kind="error"))

    async def _retrying(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run a Bot API request, again after each wait a 429 asks for, up to RETRY_AFTER_MAX seconds in all
        (the rate limiter does that if on).

        A reply given up here is kept for the notifier (see _deliver). A stop does not wait
        for these waits longer than its timeout; the updates still waiting are left for the next start.
        """
        waited = 0.0
        while True:
            try:
                return await request()
            except RetryAfter as exc:
                delay = _seconds(exc)
                if self._rate_limited or waited + delay > RETRY_AFTER_MAX:
                    raise
                await self._sleep(delay)
                waited += delay


def _gone(exc: Exception) -> bool:
    """Whether Telegram refuses to deliver to the chat for good: the citizen blocked the bot, the bot was
    removed from the group, the account or chat is gone."""
    if isinstance(exc, Forbidden):
        return True
    return isinstance(exc, BadRequest) and any(phrase in exc.message.lower() for phrase in _GONE)


def webhook_secret(token: str) -> str:
    """The webhook's secret token, derived from the bot's: the same in every process behind the webhook,
    and kept nowhere. Stored in the database, a copy of it (a leaked backup) let anyone post updates as any
    citizen; the bot token stays in the deployment's secrets. A new token makes a new secret."""
    digest = hmac.digest(token.encode(), b"govbot telegram webhook secret", "sha256")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")  # Telegram takes A-Z, a-z, 0-9, _ and -


def _unreachable(exc: BaseException) -> bool:
    """Whether a failed Bot API call means Telegram is out of reach (network, timeout, 5xx, 429), not that
    it refused what was asked (a wrong token, a bad request)."""
    if isinstance(exc, RetryAfter):
        return True
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


def _start_delay(failures: int, exc: Exception) -> float:
    delay = backoff(failures, BACKOFF_MAX)
    return max(delay, _seconds(exc)) if isinstance(exc, RetryAfter) else delay


def _log_start_failure(exc: Exception, logged: bool | None) -> bool:
    """Log why the channel cannot start unless a failure of the same kind was logged; the kind logged."""
    out_of_reach = _unreachable(exc)
    if logged is out_of_reach:
        return out_of_reach
    if out_of_reach:
        log.warning("telegram: cannot reach the Bot API (%s); the web chat, the department API and "
                    "the dispatcher go on, and Telegram is tried again at most every %.0f s",
                    _reason(exc), BACKOFF_MAX)
    elif isinstance(exc, InvalidToken):  # its text holds the token
        log.error("telegram: the Bot API refuses GOVBOT_TELEGRAM_TOKEN; tried again at most every %.0f s",
                  BACKOFF_MAX)
    else:
        log.error("telegram: cannot start (%s); tried again at most every %.0f s", _reason(exc), BACKOFF_MAX,
                  exc_info=not isinstance(exc, (TelegramError, SQLAlchemyError)))
    return out_of_reach


def _reason(exc: Exception) -> str:
    """The error's type and text for the log; a database error's type alone, as its text carries the
    statement's parameters: a citizen's message."""
    return type(exc).__name__ if isinstance(exc, SQLAlchemyError) else f"{type(exc).__name__}: {exc}"


def _refusal(exc: BaseException, public_url: str | None) -> ConfigError | None:
    """The configuration error that Telegram's refusal at start-up means, or None."""
    if isinstance(exc, InvalidToken):  # its text holds the token: never shown
        return ConfigError("Telegram refuses GOVBOT_TELEGRAM_TOKEN: check it against the one @BotFather gave")
    if isinstance(exc, BadRequest) and public_url is not None:
        return ConfigError(f"Telegram refuses the webhook at GOVBOT_PUBLIC_URL: {exc.message}")
    return None


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # python-telegram-bot warns that retry_after will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        delay = exc.retry_after
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


TELEGRAM = web.AppKey("telegram", TelegramChannel)


async def telegram_context(app: web.Application) -> AsyncIterator[None]:
    """The Telegram channel for the application's lifetime; nothing at all without a token.

    Telegram out of reach at start-up delays only this channel, which keeps trying in the background:
    the web chat and the department API serve meanwhile. Telegram refusing the token or the webhook is a
    configuration error and stops the start-up.
    """
    settings = app[SETTINGS]
    if settings.telegram_token is None:
        yield
        return
    keep_libraries_quiet()  # also where govbot's CLI did not set up logging: a Bot API URL holds the token
    channel = TelegramChannel(
        build_application(settings), app[CONVERSATION], app[SESSIONS], app[METRICS],
        rate_limited=settings.telegram_rate_limit,
        wake=lambda: wake_workers(app),  # the notifier registers there after this channel starts
    )

    def started() -> None:
        if SENDERS in app:  # citizens' notices wait in their outbox until then
            app[SENDERS][CHANNEL] = channel

    app[TELEGRAM] = channel
    secret = None
    try:
        if settings.public_url:
            secret = webhook_secret(settings.telegram_token.get_secret_value())
        await channel.start(settings.public_url, secret=secret)
    except Exception as exc:
        if not _unreachable(exc):
            await channel.stop()  # close what did start, so a failed start-up leaks no connections
            refusal = _refusal(exc, settings.public_url)
            if refusal is not None:
                raise refusal from None
            raise
        channel.keep_starting(settings.public_url, secret=secret, failed=exc, started=started)
    except BaseException:
        await channel.stop()
        raise
    else:
        started()
    try:
        yield
    finally:
        await channel.stop()


async def telegram_webhook(request: web.Request) -> web.Response:
    """POST /telegram/webhook: 200 once the update is stored (processing follows); 403 without the secret."""
    channel = request.app.get(TELEGRAM)
    if channel is None or channel.webhook_secret is None:
        raise web.HTTPNotFound()
    given = request.headers.get(SECRET_HEADER, "").encode(errors="replace")
    if not hmac.compare_digest(given, channel.webhook_secret.encode()):
        return web.Response(status=403, text="wrong secret token")
    if not channel.accepting:  # starting (Telegram out of reach) or stopping: Telegram sends it again later
        return web.Response(status=503, text="not taking updates now")
    try:
        payload = await request.json()
    except (ValueError, RecursionError):
        return web.Response(status=400, text="not JSON")
    if not _is_update(payload):
        return web.Response(status=400, text="not a Telegram update")
    try:
        await channel.receive(payload)
    except DATABASE_ERRORS as exc:
        if out_of_reach(exc):  # an outage, not a bug: one line each, as the web chat and the API log it
            log.warning("telegram: the database is unavailable, webhook update answered 503 for Telegram to "
                        "send again (%s)", error_reason(exc)[:200])
        else:
            log.exception("telegram: could not store webhook update")
        return web.Response(status=503, text="cannot store the update now")
    return web.Response(status=200)


def _is_update(payload: Any) -> bool:
    update_id = payload.get("update_id") if isinstance(payload, dict) else None
    return isinstance(update_id, int) and not isinstance(update_id, bool) and 0 <= update_id < 2**63
