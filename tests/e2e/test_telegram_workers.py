"""Telegram through `govbot run --workers 2`: two processes behind one webhook, as operators run it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from benchmarks.support import worker_pids
from handlers.i18n import t
from handlers.start import help_text
from storage import db
from tests.fakes.telegram_server import FakeTelegramServer
from tests.processes import govbot_run, until

pytestmark = pytest.mark.postgres
CITIZENS = range(100, 110)


async def test_two_workers_answer_every_update_once_and_share_the_flood_limit(
        postgres_url: str, telegram: FakeTelegramServer, tmp_path: Path) -> None:
    log = tmp_path / "govbot.log"
    async with govbot_run(postgres_url, 2, log, telegram_token=telegram.token,
                          telegram_api_base_url=telegram.base_url, public_url="{url}",
                          telegram_rate_limit="false", flood_limit_per_minute="2") as (process, url):

        def registered() -> list[str]:
            return [str(c.params.get("secret_token")) for c in telegram.calls if c.method == "setWebhook"]

        async def serving() -> bool:  # both workers up, and both registered the webhook
            return len(worker_pids(process.pid)) == 2 and len(registered()) == 2

        await until(serving)
        assert len(set(registered())) == 1  # one secret, made by the first and read by the second

        # Each delivery is a new connection, so the kernel hands them to either worker.
        updates = [telegram.message(chat, "/help") for chat in CITIZENS]
        assert await asyncio.gather(*(telegram.deliver(u) for u in updates)) == [200] * len(updates)
        assert await telegram.deliver(updates[0]) == 200  # Telegram sends one again: stored, not redone
        sent = await telegram.wait_for_sent(len(updates), timeout=30)
        assert sorted(int(m.chat_id) for m in sent) == list(CITIZENS)
        # Whichever worker a scrape reaches, /metrics counts what both handled.
        for _ in range(6):
            assert await handled(url) >= len(updates)

        # One citizen, four messages one after another, wherever each lands: two answers, one warning,
        # then silence (the fourth is processed, and nothing is sent).
        flooder = 200
        expected = [help_text("en"), help_text("en"), t("en", "flood")]
        for text in expected:
            telegram.mark()
            assert await telegram.deliver(telegram.message(flooder, "/help")) == 200
            [reply] = await telegram.wait_for_sent(chat_id=flooder, timeout=30)
            assert reply.text == text, log.read_text()
        last = telegram.message(flooder, "/help")
        assert await telegram.deliver(last) == 200
        await until(lambda: processed(postgres_url, str(last["update_id"])))
        assert [m.text for m in telegram.sent if int(m.chat_id) == flooder] == expected
        assert len([m for m in telegram.sent if int(m.chat_id) == CITIZENS[0]]) == 1


async def processed(database_url: str, update_id: str) -> bool:
    engine = db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            done = await conn.scalar(text("SELECT processed_at FROM inbox_updates WHERE update_id = :id"),
                                     {"id": update_id})
    finally:
        await engine.dispose()
    return done is not None


async def handled(url: str) -> float:
    """Telegram updates handled, as one scrape of /metrics (a new connection) reports them."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        body = await response.text()
    samples = (sample for family in text_string_to_metric_families(body) for sample in family.samples)
    return sum(s.value for s in samples
               if s.name == "govbot_updates_handled_total" and s.labels.get("channel") == "telegram")


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_webhook_is_registered_only_once_the_port_takes_connections(
        postgres_url: str, telegram: FakeTelegramServer, tmp_path: Path, workers: int) -> None:
    # Registered during start-up, before the server listened, it sent Telegram's first deliveries to a
    # closed port, and Telegram then waits minutes before it tries again.
    async with govbot_run(postgres_url, workers, tmp_path / "govbot.log", telegram_token=telegram.token,
                          telegram_api_base_url=telegram.base_url, public_url="{url}"):

        async def registered() -> bool:
            return len(telegram.webhooks_set) == workers

        await until(registered)
        assert [webhook.reachable for webhook in telegram.webhooks_set] == [True] * workers
        update = telegram.message(CITIZENS[0], "/help")
        assert await telegram.deliver(update) == 200
        [reply] = await telegram.wait_for_sent(chat_id=CITIZENS[0], timeout=30)
        assert reply.text == help_text("en")
