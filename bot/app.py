"""The aiohttp application: govbot's one HTTP server and the start-up and clean-up of everything in it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import PREFIX as API_PREFIX
from bot.api import create_api
from bot.channels import web as web_channel
from bot.channels.telegram import WEBHOOK_PATH, telegram_context, telegram_webhook
from bot.config import Settings
from bot.governance import retention_job
from bot.keys import CONVERSATION, ENGINE, KNOWLEDGE, METRICS, READINESS, SENDERS, SESSIONS, SETTINGS, WAKE
from bot.knowledge_import import import_knowledge, load_for_import
from bot.metrics import Metrics
from bot.workers import outbox_workers
from handlers.dialogue import Dialogue
from handlers.escalation import DEFAULT_DEPARTMENT
from storage import db, masking
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """The application with its routes; the database and knowledge base come up in ``cleanup_ctx``."""
    app = web.Application(client_max_size=1024**2)
    app[SETTINGS] = settings
    masking.use_region(settings.phone_region)
    app[METRICS] = Metrics()
    app[SENDERS] = {}
    app[WAKE] = []
    app[READINESS] = db.Outage(log, "readiness", "/readyz answers 503 until it is back")
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_knowledge)
    app.cleanup_ctx.append(_dialogue)
    app.cleanup_ctx.append(telegram_context)
    app.cleanup_ctx.append(outbox_workers)
    app.cleanup_ctx.append(retention_job)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", app[METRICS].handler)
    app.router.add_post(WEBHOOK_PATH, telegram_webhook)
    app.add_subapp(API_PREFIX, create_api())
    web_channel.setup(app)
    return app


async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and the knowledge base is loaded."""
    checks: dict[str, str] = {}
    outage = request.app[READINESS]  # probes come every few seconds: one line an outage, not one a probe
    try:
        await db.check(request.app[ENGINE])
        outage.ended()
        checks["database"] = "ok"
    except db.DatabaseUnavailable as exc:
        outage.began(exc)
        checks["database"] = "unavailable"
    knowledge = request.app[KNOWLEDGE]
    checks["knowledge"] = "ok" if knowledge.loaded else "loading"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


async def seed_knowledge(sessions: async_sessionmaker[AsyncSession], paths: list[Path]) -> int:
    """Import the configured knowledge base into an empty database; returns the entries written."""
    async with sessions.begin() as session:
        if not await KnowledgeRepository(session).is_empty():
            return 0
        kb, sources = load_for_import(paths)
        await import_knowledge(session, kb, sources, "seed:" + ",".join(str(p) for p in paths))
    log.info("seeded the empty knowledge base with %d entries", len(kb.entries))
    return len(kb.entries)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = db.create_engine(settings.database_url)
    try:
        await db.check(engine)
        await db.ensure_schema(engine)
        app[ENGINE] = engine
        app[SESSIONS] = db.sessionmaker(engine)
        yield
    finally:
        await engine.dispose()


async def _knowledge(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await seed_knowledge(app[SESSIONS], settings.kb_paths)
    knowledge = LiveKnowledge(app[SESSIONS], settings.matcher_config(), recent=settings.match_cache_size)
    await knowledge.load()
    app[KNOWLEDGE] = knowledge
    follower = asyncio.create_task(knowledge.follow(settings.kb_refresh_seconds), name="knowledge-follow")
    yield
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower


async def _dialogue(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    extras = {DEFAULT_DEPARTMENT: settings.default_department}
    app[CONVERSATION] = Dialogue(app[SESSIONS], app[KNOWLEDGE], extras=extras,
                                 flood_limit=settings.flood_limit_per_minute, zone=settings.zone())
    yield
