"""PostgreSQL going away under a running bot and coming back: nothing lost, one line each, no restart."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from handlers.i18n import t
from storage import db
from tests.e2e.conftest import StartBot
from tests.fakes.telegram_server import FakeTelegramServer
from tests.private_postgres import PrivatePostgres, private_postgres

pytestmark = pytest.mark.postgres

CITIZEN = 42
TELEGRAM_LOG = "bot.channels.telegram"


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
async def database_url(server: PrivatePostgres) -> str:
    """The private server's database, migrated: what start_bot and the engine fixture use here."""
    engine = db.create_engine(server.url)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    return server.url


async def test_webhook_updates_refused_in_an_outage_are_one_line_each_and_answered_once_it_is_back(
        start_bot: StartBot, telegram: FakeTelegramServer, server: PrivatePostgres,
        caplog: pytest.LogCaptureFixture) -> None:
    await start_bot(webhook=True)
    server.stop()
    update = telegram.message(CITIZEN, "/help")
    caplog.clear()
    assert [await telegram.deliver(update) for _ in range(3)] == [503, 503, 503]  # Telegram sends again
    logged = [r for r in caplog.records if r.name == TELEGRAM_LOG]
    assert [r.levelno for r in logged] == [logging.WARNING] * 3
    assert not any(r.exc_info for r in logged)
    assert "the database is unavailable" in logged[0].getMessage()

    server.start()
    assert await telegram.deliver(update) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=10)
    assert reply.text == t("en", "help")
