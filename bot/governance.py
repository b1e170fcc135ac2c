"""Governance in the running bot: the daily retention purge (public figures: bot/web/transparency.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.keys import SESSIONS, SETTINGS
from storage.retention import RetentionJob

RETENTION = web.AppKey("retention", RetentionJob)


async def retention_job(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: purge data older than GOVBOT_RETENTION_DAYS every day while the bot runs."""
    job = RetentionJob(app[SESSIONS], app[SETTINGS].retention_days)
    app[RETENTION] = job
    task = asyncio.create_task(job.run(), name="retention")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

