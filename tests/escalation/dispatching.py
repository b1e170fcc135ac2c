"""A dispatcher for tests: local receivers allowed, a clock the test moves, a fixed seed for retries."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dispatch import DispatchConfig, Dispatcher, DispatchMetrics
from bot.webhooks import UrlPolicy
from storage.models import utcnow

LOCAL = UrlPolicy.create(allow_http=True, networks=["127.0.0.0/8"])
"""Receivers run on 127.0.0.1 over http."""


class Clock:
    """Time that moves only when the test says so (starting now, so signatures stay fresh)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def dispatcher(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    *,
    policy: UrlPolicy = LOCAL,
    timeout: float = 15.0,
    metrics: DispatchMetrics | None = None,
) -> Dispatcher:
    """A dispatcher on ``clock``; use it as ``async with dispatcher(sessions, clock) as d``."""
    config = DispatchConfig(policy=policy, timeout=timeout, poll=0.05, concurrency=16)
    return Dispatcher(
        sessions, config, clock=clock, rng=random.Random(3), metrics=metrics, name="test-dispatcher"
    )
