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
FORCE_AFTER = 3
"""Stop signals after which govbot stops at once: the first stops gracefully, the second (systemd's default
KillMode and the supervisor each send one) is ignored, a third is an operator who will not wait."""


async def outbox_workers(app: web.Application) -> AsyncIterator[None]:
    """Run the notifier, and the dispatcher unless GOVBOT_DISPATCH_IN_RUN=false, while the app runs.

    The notifier runs whatever the setting: it sends through this process's channels, and `govbot dispatch`,
    which takes the webhooks over, has none.
    """
    settings = app[SETTINGS]
    config = DispatchConfig.from_settings(settings)
    senders = app[SENDERS]  # channels register themselves here as they start; read at every round
    workers: list[Dispatcher | Notifier] = [Notifier(app[SESSIONS], senders, poll=config.poll)]
    async with contextlib.AsyncExitStack() as stack:
        if settings.dispatch_in_run:
            dispatcher = Dispatcher(app[SESSIONS], config, metrics=DispatchMetrics(app[METRICS].registry))
            workers.insert(0, await stack.enter_async_context(dispatcher))
        tasks = [asyncio.create_task(worker.run(), name=type(worker).__name__.lower()) for worker in workers]
        app[WAKE].extend(worker.wake for worker in workers)
        try:
            yield
        finally:
            for worker in workers:
                worker.stop()
            done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:
                log.warning("%s did not stop in %.0f s; cancelling it", task.get_name(), STOP_TIMEOUT)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("%s failed", task.get_name(), exc_info=task.exception())
