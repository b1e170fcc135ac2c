"""A department's endpoint for tests: a real aiohttp server on 127.0.0.1 that verifies every delivery with the
Standard Webhooks reference library and answers as the test tells it (2xx, 500, 410, a redirect, silence,
or a dropped connection)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HANG = -1
"""Answer nothing until the test ends (the dispatcher times out)."""
DROP = -2
"""Close the connection without answering."""


@dataclass
class Received:
    payload: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """Deliveries that verified, in arrival order; ``answers`` are used one per request, then 200."""

    secret: str
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    answered_ok: list[str] = field(default_factory=list)
    """Webhook ids answered with a 2xx, in order."""
    rejected: list[str] = field(default_factory=list)
    requests: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    url: str = ""
    before_answer: Callable[[], Awaitable[object]] | None = None
    """Run while a delivery waits for its answer (what happens elsewhere meanwhile)."""
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            await self._notify()
            return web.Response(status=400)
        webhook_id = request.headers["webhook-id"]
        if self.in_flight.get(webhook_id):
            self.overlaps.append(webhook_id)
        self.in_flight[webhook_id] = self.in_flight.get(webhook_id, 0) + 1
        try:
            answer = self.answers.pop(0) if self.answers else 200
            self.received.append(Received(payload, dict(request.headers)))
            await self._notify()
            if self.before_answer is not None:
                await self.before_answer()
            response = await self._answer(request, answer)
            if 200 <= response.status < 300 and answer != DROP:
                self.answered_ok.append(webhook_id)
                await self._notify()
            return response
        finally:
            self.in_flight[webhook_id] -= 1

    async def _answer(self, request: web.Request, answer: int) -> web.StreamResponse:
        if answer == HANG:
            await self._release.wait()
        if answer == DROP:
            assert request.transport is not None
            request.transport.close()
        if 300 <= answer < 400:
            return web.Response(status=answer, headers={"Location": self.url + "/elsewhere"})
        return web.Response(status=answer if answer > 0 else 200, text="ok")

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait (on the arrival condition, bounded) until ``count`` verified deliveries arrived."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received

    async def wait_until(self, done: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        """Wait (on the arrival condition, bounded) until ``done(self)`` holds."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: done(self))

    def release(self) -> None:
        self._release.set()


@asynccontextmanager
async def receiving(secret: str, *, port: int | None = None) -> AsyncIterator[Receiver]:
    """A running receiver at ``receiver.url`` (``http://127.0.0.1:<port>/hook``)."""
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_post("/hook/elsewhere", receiver.handle)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    receiver.url = str(server.make_url("/hook"))
    try:
        yield receiver
    finally:
        receiver.release()
        await server.close()
