"""Governance in the running bot: the daily retention purge and the public transparency figures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.keys import SESSIONS, SETTINGS
from storage.models import utcnow
from storage.retention import RetentionJob
from storage.transparency import public_stats

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


async def stats(request: web.Request) -> web.Response:
    """``GET /api/v1/stats``: public aggregate figures, no personal data, small cells suppressed."""
    async with request.config_dict[SESSIONS]() as session:
        document = await public_stats(session, now=utcnow())
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})
