"""The dispatcher and the notifier as background tasks of `govbot run` (an aiohttp cleanup context)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.dispatch import DispatchConfig, Dispatcher, DispatchMetrics
from bot.keys import METRICS, SENDERS, SESSIONS, SETTINGS, WAKE
from bot.notify import Notifier

log = logging.getLogger(__name__)

HTTP_SHUTDOWN_TIMEOUT = 10.0
"""Seconds the HTTP server waits at shutdown for requests in flight (webhooks, the web chat, the API)."""
STOP_TIMEOUT = 30.0
"""Seconds shutdown waits for deliveries in flight (each is bounded by the webhook timeout)."""


async def outbox_workers(app: web.Application) -> AsyncIterator[None]:
    """Run the dispatcher and the notifier while the app runs (unless GOVBOT_DISPATCH_IN_RUN=false)."""
    settings = app[SETTINGS]
    if not settings.dispatch_in_run:
        yield
        return
    config = DispatchConfig.from_settings(settings)
    dispatcher = Dispatcher(app[SESSIONS], config, metrics=DispatchMetrics(app[METRICS].registry))
    senders = app[SENDERS]  # channels register themselves here as they start; read at every round
    notifier = Notifier(app[SESSIONS], senders, poll=config.poll)
    async with dispatcher:
        tasks = [
            asyncio.create_task(dispatcher.run(), name="dispatcher"),
            asyncio.create_task(notifier.run(), name="notifier"),
        ]
        app[WAKE].extend([dispatcher.wake, notifier.wake])
        try:
            yield
        finally:
            dispatcher.stop()
            notifier.stop()
            done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:
                log.warning("%s did not stop in %.0f s; cancelling it", task.get_name(), STOP_TIMEOUT)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("%s failed", task.get_name(), exc_info=task.exception())
