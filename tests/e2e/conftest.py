"""The whole bot — create_app, a real database, the dialogue — talking to the fake Telegram server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.channels.telegram import TELEGRAM, TelegramChannel, telegram_context
from bot.channels.telegram_updates import CHANNEL
from bot.config import Settings
from bot.keys import CONVERSATION
from handlers.types import Conversation, Incoming, Reply
from storage.models import InboxUpdate
from tests.fakes.telegram_server import FakeTelegramServer

Script = Callable[[Incoming], Awaitable[list[Reply]]]


class Puppet:
    """The real dialogue, except for the texts a test scripts; remembers everything it was given."""

    def __init__(self) -> None:
        self.inner: Conversation | None = None
        self.scripts: dict[str, Script] = {}
        self.seen: list[Incoming] = []

    async def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        script = self.scripts.get(incoming.text or "")
        if script is not None:
            return await script(incoming)
        assert self.inner is not None
        return await self.inner.handle(incoming)


@dataclass
class RunningBot:
    """One govbot process serving on 127.0.0.1, its dialogue wrapped in a Puppet."""

    app: web.Application
    url: str
    puppet: Puppet
    runner: web.AppRunner
    stopped: bool = field(default=False)

    @property
    def channel(self) -> TelegramChannel:
        return self.app[TELEGRAM]

    async def stop(self) -> None:
        """Shut down as on SIGTERM: stop serving, finish updates in flight, disconnect."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()


class StartBot(Protocol):
    def __call__(self, *, webhook: bool = False, **settings: Any) -> Awaitable[RunningBot]: ...


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
async def start_bot(database_url: str, engine: AsyncEngine,
                    telegram: FakeTelegramServer) -> AsyncIterator[StartBot]:
    """Start govbot against the fake Telegram: polling, or a webhook at its own address."""
    bots: list[RunningBot] = []

    async def start(*, webhook: bool = False, **settings: Any) -> RunningBot:
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.bind(("127.0.0.1", 0))
        listening.listen()  # before start-up registers the webhook, as `govbot run` does
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        config = Settings(**{
            "database_url": database_url, "telegram_token": telegram.token,
            "telegram_api_base_url": telegram.base_url, "telegram_rate_limit": False,
            "public_url": url if webhook else None, **settings})
        app, puppet = create_app(config), Puppet()
        app.cleanup_ctx.insert(app.cleanup_ctx.index(telegram_context), _puppeteer(puppet))
        runner = web.AppRunner(app, access_log=None)
        bot = RunningBot(app, url, puppet, runner)
        bots.append(bot)
        try:
            await runner.setup()
        except BaseException:
            listening.close()
            raise
        await web.SockSite(runner, listening).start()
        return bot

    yield start
    for bot in reversed(bots):
        await bot.stop()


def _puppeteer(puppet: Puppet) -> Callable[[web.Application], AsyncIterator[None]]:
    async def install(app: web.Application) -> AsyncIterator[None]:
        puppet.inner = app[CONVERSATION]
        app[CONVERSATION] = puppet
        yield

    return install


async def inbox(sessions: async_sessionmaker[AsyncSession]) -> dict[str, InboxUpdate]:
    """Every Telegram update stored, by update id."""
    async with sessions() as session:
        rows = await session.scalars(select(InboxUpdate).where(InboxUpdate.channel == CHANNEL))
        return {row.update_id: row for row in rows}
