"""python-telegram-bot's requests to the Bot API over aiohttp instead of httpx.

PTB's default HTTPXRequest costs about 3 ms of CPU per Bot API call on a small server, and more when
many calls wait for the pool (httpcore scans its queue on every change); aiohttp, which serves govbot's
HTTP anyway, does the same call for about 0.7 ms. Every update costs one to three calls (the reply,
the button's acknowledgement, an edit), so this was the largest single cost of handling an update
(docs/PERFORMANCE.md, "Telegram channel").
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

DEFAULT_TIMEOUT = 5.0
"""Seconds for connecting, and for reading an answer, unless a call asks for another (as getUpdates does)."""
DEFAULT_POOL_TIMEOUT = 1.0
"""Seconds a call may wait for a free connection when all of them are busy (as HTTPXRequest)."""
DEFAULT_CONNECTIONS = 256
"""Connections to the Bot API kept at once (PTB's default pool size for a bot's requests)."""


_HEADERS = {"User-Agent": BaseRequest.USER_AGENT}
_JSON_HEADERS = {**_HEADERS, "Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A BaseRequest on one aiohttp ClientSession, made in ``initialize`` and closed in ``shutdown``."""

    def __init__(self, *, connections: int = DEFAULT_CONNECTIONS, timeout: float = DEFAULT_TIMEOUT,
                 pool_timeout: float = DEFAULT_POOL_TIMEOUT) -> None:
        self._connections = connections
        self._timeout = timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            # The Bot API sets no cookies; one a proxy set would otherwise go back with every later call.
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; PTB turns the status and body into a result or an error."""
        if self._session is None or self._session.closed:
            raise RuntimeError("this AiohttpRequest is not initialized")
        # aiohttp has no write timeout; the read timeout covers a stalled upload as well.
        connect = _seconds(connect_timeout, self._timeout)
        pool = _seconds(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect, sock_read=_seconds(read_timeout, self._timeout),
        )
        headers = _JSON_HEADERS if request_data is not None and not request_data.contains_files else _HEADERS
        try:
            async with self._session.request(method, url, data=_body(request_data), timeout=timeout,
                                             headers=headers) as response:
                return response.status, await response.read()
        except (TimeoutError, asyncio.TimeoutError) as exc:  # noqa: UP041 - aiohttp raises either
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _seconds(given: object, default: float) -> float | None:
    """A timeout PTB passed (None: wait forever), or ours when it passed its "not given" marker."""
    if given is None or isinstance(given, int | float):
        return given
    return default


def _body(request_data: RequestData | None) -> aiohttp.FormData | bytes | None:
    """A JSON body, or form fields as PTB encodes them (values JSON-encoded) in a multipart body with files.

    JSON, which the Bot API accepts for every call without a file, is one ``json.dumps``; a form
    encodes each value as JSON and then the whole form again (a fortieth of an update's CPU).
    """
    if request_data is None:
        return None
    if not request_data.contains_files:
        return json.dumps(request_data.parameters, ensure_ascii=False).encode()
    fields = request_data.json_parameters
    form = aiohttp.FormData(quote_fields=False)  # names as Telegram clients send them, not %-encoded
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form
