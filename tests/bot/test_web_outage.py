"""The web chat while its database is out of reach: 503 with Retry-After and one log line, then back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import load_settings
from bot.keys import ENGINE
from handlers.i18n import t
from tests.bot.test_web_channel import Browser

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """govbot on a SQLite database in a folder of its own, which the test can take away and give back."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'govbot.db'}"
    client = Client(TestServer(create_app(load_settings(database_url=url))))
    await client.start_server()
    browser = Browser(client)
    await browser.open()
    yield browser
    await client.close()


async def take_the_database_away(browser: Browser, folder: Path, away: Path) -> None:
    """Close the pool's connections and move the file: every new connection fails, as with a server down."""
    await browser.client.app[ENGINE].dispose()
    await asyncio.to_thread(folder.rename, away)


async def test_while_the_database_is_down_every_web_route_says_503_once_in_the_log(
    browser: Browser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await browser.say("hello", client_id="before-outage")
    await take_the_database_away(browser, tmp_path / "data", tmp_path / "away")
    caplog.set_level(logging.WARNING, logger="bot.web.guard")

    status, problem = await browser.post({"text": "pay property tax", "client_id": "during-outage"})
    assert status == 503
    assert problem["title"] == "Service Unavailable"
    updates = await browser.client.get("/api/chat/updates")
    assert updates.status == 503
    assert int(updates.headers["Retry-After"]) > 0
    page = await browser.client.get("/", headers={"Accept-Language": "zh-CN"})
    assert (page.status, page.content_type) == (503, "text/html")
    assert int(page.headers["Retry-After"]) > 0
    html = await page.text()
    assert '<html lang="zh-Hans">' in html  # Simplified Chinese, as the chat page says
    assert str(t("zh", "web_unavailable")) in html
    form = await browser.client.post(
        "/api/chat/messages", data={"csrf": browser.token, "text": "hello"}, allow_redirects=False
    )
    assert (form.status, form.content_type) == (503, "text/html"), "not back to a chat that cannot be shown"
    stats = await browser.client.get("/api/v1/stats")
    assert stats.status == 503
    assert int(stats.headers["Retry-After"]) > 0
    assert not [r for r in caplog.records if r.exc_info], "an outage is not a bug: no tracebacks anywhere"

    logged = [r for r in caplog.records if r.name == "bot.web.guard"]
    assert len(logged) == 4, "one line per request"
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in logged), "no tracebacks"
    assert all("\n" not in r.getMessage() for r in logged)

    await asyncio.to_thread((tmp_path / "away").rename, tmp_path / "data")
    body = await browser.say("pay property tax", client_id="during-outage")
    assert [e["role"] for e in body["entries"]] == ["citizen", "bot"], "sent again, answered once it is back"
    assert body["duplicate"] is False
