"""The web chat at ``/``: the same dialogue as Telegram, in a server-rendered page with a little script.

Every entry of a citizen's chat is stored with a per-citizen number, so a page that lost its connection
asks for "everything after N" and misses nothing; a message re-sent under the same client id is answered
from the log instead of being handled twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_network
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.console import plain
from bot.channels.flood import FloodLimit
from bot.channels.turns import ChatTurns
from bot.config import Settings
from bot.keys import CONVERSATION, METRICS, SENDERS, SESSIONS, SETTINGS
from bot.notify import Unreachable
from bot.web import pages, refusal, transparency
from bot.web.guard import CLIENT_LIMIT, TRUSTED_PROXIES, Problem, guard, over_https, read_body, too_many
from bot.web.hub import Hub
from bot.web.identity import COOKIE, COOKIE_MAX_AGE, HOST_COOKIE, Signer, make_secret
from bot.web.incoming import ChatMessage, parse_message
from handlers.dialogue import sanitise as clean_incoming
from handlers.i18n import DEFAULT_LANGUAGE, LANGUAGES, language_of, t
from handlers.types import Incoming, Reply, erased, refused
from storage import db, web_chat
from storage.citizens import for_storage
from storage.models import utcnow
from storage.numbers import whole_number
from storage.secrets import stored_secret
from storage.web_chat import Appended, ChatEntry, NewEntry

log = logging.getLogger(__name__)

CHANNEL = web_chat.CHANNEL
MAX_WAIT_SECONDS = 25
"""Longest a page's request waits for news; below the usual 30-60 s idle timeouts of proxies."""
POLL_SECONDS = 2.0
"""While waiting, how often the log is read again for entries that other processes stored."""
SAFE_DOWNLOADS = frozenset({"application/json", "text/csv", "text/plain", "application/pdf"})


def reply_entry(reply: Reply) -> NewEntry | None:
    """A reply as a log entry; None for a reply that is only a notice (a toast on Telegram)."""
    if not reply.text and reply.document is None and not reply.buttons:
        return None
    rows = [
        [{"label": b.label, "url": b.url} if b.url else {"label": b.label, "payload": b.payload} for b in row]
        for row in reply.buttons
    ]
    document = None
    if reply.document is not None:
        document = {
            "filename": reply.document.filename,
            "mime_type": reply.document.mime_type,
            "content_b64": base64.b64encode(reply.document.content).decode("ascii"),
        }
    return NewEntry(role="bot", text=reply.text, kind=reply.kind, buttons=rows, document=document)


@dataclass(frozen=True)
class News:
    """What a waiting page gets: the entries, the last number stored, the citizen's chosen language."""

    entries: list[ChatEntry]
    last_seq: int
    language: str | None


class WebChannel:
    """The web chat's state in one process: identities, limits, and the waiters for new entries."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.hub = Hub()
        self.now = now
        self._clock = clock
        self._signer: Signer | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._turns = ChatTurns()
        self._shared = False  # several processes may share the database (PostgreSQL)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            raise RuntimeError("the web channel has not started")
        return self._signer

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("the web channel has not started")
        return self._sessions

    async def start(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Take the configured secret, or the one stored in the database (made on first start)."""
        configured = self.settings.web_secret
        secret = (
            configured.get_secret_value()
            if configured is not None
            else await stored_secret(sessions, "web-identity", make_secret)
        )
        self._signer, self._sessions = Signer(secret), sessions
        async with sessions() as session:  # no connection is taken for this
            self._shared = db.shared(session)

    async def send(self, chat_id: str, replies: Sequence[Reply], *, thread: str | None = None) -> None:
        """Deliver replies that were not asked for just now (a department's answer, a case's new status).

        The web chat has no threads: ``thread`` is always None here.

        Raises Unreachable for an identity that has no citizen (never wrote, or erased their data).
        """
        async with self.sessions() as session:
            if await web_chat.WebChatRepository(session).citizen(chat_id) is None:
                raise Unreachable(f"no web citizen {chat_id[:4]}…")
        entries = [entry for entry in map(reply_entry, replies) if entry is not None]
        if entries:
            await web_chat.append(self.sessions, chat_id, entries, now=self.now())
            self.hub.notify(chat_id)

    async def converse(
        self, app: web.Application, identity: str, message: ChatMessage, lang: str
    ) -> tuple[Appended, list[str]]:
        """Hand the message to the dialogue once, store it with the replies; return them and any notices.

        One message of a citizen at a time (a double press, or the page sending again while the first is
        handled): on SQLite nothing else keeps two turns apart, and each would open its own case. Processes
        sharing PostgreSQL tell a message sent again apart by claiming its client id first (``_claim``).
        """
        async with self._turns.turn(identity):
            return await self._converse(app, identity, message, lang)

    async def _converse(
        self, app: web.Application, identity: str, message: ChatMessage, lang: str
    ) -> tuple[Appended, list[str]]:
        incoming = Incoming(
            channel=CHANNEL, chat_id=identity, user_id=identity, text=message.text, payload=message.payload,
            language=lang, message_id=None if message.reply is None else str(message.reply),
        )
        own = await self._citizen_entry(identity, message, incoming)
        claimed = await self._claim(identity, own)
        if claimed is not None and claimed.duplicate:
            return claimed, []
        started = self._clock()
        replies = await app[CONVERSATION].handle(incoming)
        failed = any(reply.kind == "error" for reply in replies)  # the dialogue apologised for a failure
        app[METRICS].observe(CHANNEL, replies, self._clock() - started, failed=failed)
        if refused(replies):  # over the flood limit: nothing is stored, the page shows why
            if claimed is not None:
                await web_chat.withdraw(self.sessions, identity, claimed.entries[0].seq)
            raise too_many(str(plain(replies[0].text)))
        if erased(replies):  # the log is gone with the rest; keeping this exchange would start it again
            self.hub.notify(identity)
            return Appended([], None, erased=True), [plain(r.text) for r in replies if r.text]
        entries = [entry for entry in map(reply_entry, replies) if entry is not None]
        since = None if claimed is None else claimed.entries[0].seq
        stored = [own, *entries] if since is None else entries
        appended = await web_chat.append(self.sessions, identity, stored, now=self.now(), since=since)
        self.hub.notify(identity)
        return appended, [plain(r.notice) for r in replies if r.notice and not r.text]

    async def _claim(self, identity: str, own: NewEntry) -> Appended | None:
        """The message as sent before under its client id (``duplicate``), else None; on PostgreSQL, else the
        citizen's entry, stored now, before the turn.

        One process keeps a citizen's turns apart (``converse``), so a read tells a message sent again. Other
        processes may be handling it at this moment: the unique client id tells it, as the entry is stored.
        """
        if not own.client_id:
            return None
        if self._shared:
            return await web_chat.claim(self.sessions, identity, own, now=self.now())
        return await web_chat.since_sent(self.sessions, identity, own.client_id)

    async def wait_for(self, identity: str, after: int, wait: float) -> News:
        """Entries after ``after`` as soon as there are any, or none once ``wait`` seconds have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            with self.hub.listen(identity) as event:
                news = await self._after(identity, after)
                remaining = deadline - loop.time()
                if news.entries or remaining <= 0 or self.hub.closed or after > news.last_seq:
                    return news
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(POLL_SECONDS, remaining)):
                        await event.wait()

    async def _after(self, identity: str, after: int) -> News:
        async with self.sessions() as session:
            chat = web_chat.WebChatRepository(session)
            citizen = await chat.citizen(identity)
            if citizen is None:
                return News([], 0, None)
            return News(await chat.after(citizen[0], after), await chat.last_seq(citizen[0]), citizen[1])

    async def _citizen_entry(self, identity: str, message: ChatMessage, incoming: Incoming) -> NewEntry:
        if message.payload is None:
            text = clean_incoming(incoming)[0].text or ""
            return NewEntry(role="citizen", text=for_storage(text), kind="text", client_id=message.client_id)
        label = await self._label(identity, message)
        return NewEntry(role="press", text=label, kind="press", client_id=message.client_id)

    async def _label(self, identity: str, message: ChatMessage) -> str:
        """The label of the pressed button, as the page showed it; empty when it cannot be found."""
        if message.payload and message.payload.startswith("lang:"):
            return pages.LANGUAGE_NAMES.get(message.payload[5:], "")
        if not message.reply:
            return for_storage(message.label)
        async with self.sessions() as session:
            chat = web_chat.WebChatRepository(session)
            citizen = await chat.citizen(identity)
            entry = await chat.entry(citizen[0], message.reply) if citizen else None
        buttons = [b for row in (entry.buttons if entry else []) for b in row if isinstance(b, dict)]
        shown = (str(b.get("label", "")) for b in buttons if b.get("payload") == message.payload)
        return next(shown, for_storage(message.label))


WEB = web.AppKey("web_channel", WebChannel)


def setup(app: web.Application) -> None:
    """Add the chat page, its API, the static files and the transparency page to govbot's server."""
    settings = app[SETTINGS]
    app[WEB] = WebChannel(settings)
    if SENDERS in app:
        app[SENDERS][CHANNEL] = app[WEB]
    app[CLIENT_LIMIT] = FloodLimit(settings.web_requests_per_minute)
    app[TRUSTED_PROXIES] = tuple(ip_network(n, strict=False) for n in settings.web_trusted_proxies)
    app.middlewares.append(guard)
    app.cleanup_ctx.append(_web_context)
    app.on_shutdown.append(_wake_waiters)
    app.router.add_get("/", chat_page, name="web.chat")
    app.router.add_post(pages.MESSAGES_URL, post_message, name="web.messages")
    app.router.add_get("/api/chat/updates", updates, name="web.updates")
    app.router.add_get("/api/chat/documents/{seq}", download, name="web.document")
    app.router.add_static("/static/", pages.STATIC, name="web.static")
    transparency.setup(app, zone=settings.zone())


async def _web_context(app: web.Application) -> AsyncIterator[None]:
    await app[WEB].start(app[SESSIONS])
    yield


async def _wake_waiters(app: web.Application) -> None:
    app[WEB].hub.close()


def _identity(request: web.Request) -> str | None:
    return request.app[WEB].signer.identity(request.cookies.get(_cookie_name(request)))


def _cookie_name(request: web.Request) -> str:
    """Over HTTPS only the __Host- cookie counts: one under the plain name may have been planted."""
    return HOST_COOKIE if over_https(request) else COOKIE


def _known_identity(request: web.Request) -> str:
    identity = _identity(request)
    if identity is None:
        raise Problem(403, "Forbidden", "no valid session: reload the page")
    return identity


def page_language(request: web.Request, chosen: str | None) -> str:
    """The citizen's chosen language, else what the browser prefers, else the default."""
    return chosen or pages.accepted_language(request.headers.get("Accept-Language")) or DEFAULT_LANGUAGE


async def chat_page(request: web.Request) -> web.Response:
    """GET /: the chat with its history; a missing or forged cookie quietly gets a new identity."""
    channel = request.app[WEB]
    identity = _identity(request)
    entries: list[ChatEntry] = []
    chosen = None
    if identity is None:
        identity = channel.signer.new_identity()
    else:
        async with channel.sessions() as session:
            chat = web_chat.WebChatRepository(session)
            citizen = await chat.citizen(identity)
            if citizen is not None:
                entries, chosen = await chat.history(citizen[0]), citizen[1]
    lang = page_language(request, chosen)
    html = _chat_html(lang, channel.signer.csrf_token(identity), entries, refusal.reason(request.query, lang))
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    _set_cookie(request, response, channel.signer.cookie(identity))
    return response


def _chat_html(lang: str, csrf: str, entries: list[ChatEntry], status: str = "") -> str:
    shown = entries or [_welcome(lang)]
    return pages.render(
        "chat.html",
        tag=pages.language_tag(lang),
        lang=lang,
        csrf=csrf,
        css=pages.static_url("chat.css"),
        js=pages.static_url("chat.js"),
        strings=pages.strings_attribute(lang),
        title=t(lang, "web_title"),
        skip=t(lang, "web_skip"),
        site_name=t(lang, "web_site_name"),
        subtitle=t(lang, "web_subtitle"),
        language_label=t(lang, "web_language"),
        language_form=pages.language_buttons(lang, csrf),
        transparency=t(lang, "web_transparency_link"),
        log_label=t(lang, "web_log_label"),
        last_seq=entries[-1].seq if entries else 0,
        entries=pages.Markup("\n".join(pages.entry_html(e, lang=lang, csrf=csrf) for e in shown)),
        status=status,
        noscript=t(lang, "web_noscript"),
        input_label=t(lang, "web_input_label"),
        send=t(lang, "web_send"),
        hint=t(lang, "web_input_hint"),
    )


def _welcome(lang: str) -> ChatEntry:
    """The greeting a new citizen sees before they write; shown, not stored."""
    return ChatEntry(
        seq=0, role="bot", text=t(lang, "greeting") + "\n\n" + t(lang, "privacy_notice"), kind="start",
        buttons=[[{"label": str(t(lang, "btn_menu")), "payload": "menu:1"}]], document=None, client_id=None,
        created_at=utcnow(),
    )


def _set_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """The identity cookie; Secure (and __Host-) whenever the citizen's browser talks HTTPS, to us or to our
    TLS proxy."""
    response.set_cookie(
        _cookie_name(request), value, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax",
        secure=over_https(request),
    )


def _same_origin(request: web.Request) -> bool:
    """Whether the browser says the request comes from our own pages (when it says anything).

    The Origin is compared with the Host header, so a proxy must pass the Host the browser sent, port and
    all (nginx: ``$http_host``, not ``$host``); a mismatch is logged, as it is how that mistake shows.
    """
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or urlsplit(origin).netloc == request.host:
        return True
    log.warning("refused a post from origin %r to host %r (behind a proxy: does it pass Host?)",
                origin[:100], request.host[:100])
    return False


async def post_message(request: web.Request) -> web.StreamResponse:
    """POST a typed message or a button press (JSON from the script, a form without it)."""
    channel = request.app[WEB]
    identity = _known_identity(request)
    if request.content_type == "application/json" and not channel.signer.csrf_ok(
        identity, request.headers.get("X-CSRF-Token")
    ):
        raise Problem(403, "Forbidden", "missing or wrong CSRF token")
    message, form_token = parse_message(request.content_type, await read_body(request))
    is_form = request.content_type != "application/json"
    if (is_form and not channel.signer.csrf_ok(identity, form_token)) or not _same_origin(request):
        raise Problem(403, "Forbidden", "missing or wrong CSRF token")
    hint = language_of(message.lang) or page_language(request, None)
    appended, notices = await channel.converse(request.app, identity, message, hint)
    if is_form:  # to the answer: the log scrolls only with the script, the browser scrolls to this
        return web.Response(status=303, headers={"Location": "/#" + _landing(appended.entries)})
    lang = _shown_in(appended.language, hint)
    body: dict[str, Any] = {
        "entries": [pages.entry_json(e, lang=lang) for e in appended.entries],
        "last_seq": max((e.seq for e in appended.entries), default=0),
        "lang": lang,
        "notices": notices,
        "duplicate": appended.duplicate,
        "erased": appended.erased,
    }
    if lang != message.lang:
        body["ui"] = pages.ui_strings(lang)
    return web.json_response(body)


def _landing(entries: Sequence[ChatEntry]) -> str:
    """Where a page without the script lands after a post: the first reply, else the first new entry."""
    replies = [e for e in entries if e.role == "bot"] or list(entries)
    return f"e{replies[0].seq}" if replies else "composer"


def _shown_in(chosen: str | None, hint: str) -> str:
    """The language new entries are shown in: the citizen's choice (as the turn left it), else the page's."""
    return chosen if chosen in LANGUAGES else hint


async def updates(request: web.Request) -> web.Response:
    """GET entries after ``after``, waiting up to ``wait`` seconds for the first of them (long polling).

    News may bring the replies to a message before its own response does (the press of 中文): like that
    response, it says their language, and the page's words in it when the page (``lang``) shows another.
    """
    identity = _known_identity(request)
    after, wait = _number(request, "after", 2**31 - 1), _number(request, "wait", MAX_WAIT_SECONDS)
    shown = language_of(request.query.get("lang"))
    news = await request.app[WEB].wait_for(identity, after, wait)
    lang = _shown_in(news.language, shown or page_language(request, None))
    body: dict[str, Any] = {
        "entries": [pages.entry_json(e, lang=lang) for e in news.entries],
        "last_seq": news.last_seq,
        "lang": lang,
    }
    if lang != shown:
        body["ui"] = pages.ui_strings(lang)
    return web.json_response(body)


def _number(request: web.Request, name: str, high: int) -> int:
    """A query parameter in ASCII digits from 0 to ``high`` (0 when absent); 400 for anything else."""
    value = whole_number(request.query.get(name, "0"), 0, high)
    if value is None:
        raise Problem(400, "Bad Request", f"{name} must be a whole number from 0 to {high}")
    return value


async def download(request: web.Request) -> web.Response:
    """GET a file a reply carried (e.g. the citizen's data export); only its own citizen may."""
    identity, seq = _known_identity(request), whole_number(request.match_info["seq"], 1, 2**31 - 1)
    entry = None
    if seq is not None:
        async with request.app[WEB].sessions() as session:
            chat = web_chat.WebChatRepository(session)
            citizen = await chat.citizen(identity)
            entry = await chat.entry(citizen[0], seq) if citizen else None
    if entry is None or not entry.document:
        raise Problem(404, "Not Found", "no such file")
    mime = str(entry.document.get("mime_type", ""))
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", str(entry.document.get("filename", "file")))[:100] or "file"
    return web.Response(
        body=base64.b64decode(entry.document.get("content_b64", "")),
        content_type=mime if mime in SAFE_DOWNLOADS else "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
