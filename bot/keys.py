"""Typed keys for what the aiohttp application shares between start-up, routes and channels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.metrics import Metrics
from bot.notify import Sender
from handlers.types import Conversation
from storage.db import Outage
from storage.knowledge_sync import LiveKnowledge

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
KNOWLEDGE = web.AppKey("knowledge", LiveKnowledge)
CONVERSATION = web.AppKey("conversation", Conversation)
METRICS = web.AppKey("metrics", Metrics)
SENDERS = web.AppKey("senders", dict[str, Sender])
"""Channels that can message a citizen unprompted (department replies): ``app[SENDERS]["telegram"] = …``."""
WAKE = web.AppKey("wake", list[Callable[[], None]])
"""Called after a commit that queued events or notices, so the dispatcher and notifier look at once."""


def wake_workers(config: Mapping[Any, Any]) -> None:
    """Call every ``WAKE`` callback of ``config`` (an app, or a request's ``config_dict``), if it has any."""
    for wake in config.get(WAKE, ()):
        wake()
READINESS = web.AppKey("readiness", Outage)
"""/readyz's view of a database outage, so that probes log its start and end once."""
