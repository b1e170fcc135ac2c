"""Telegram out of reach at start-up: the rest of govbot serves; the channel comes up when Telegram does."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.channels.telegram import WEBHOOK_PATH
from bot.config import ConfigError
from handlers.start import help_text
from tests.conftest import REPO, without_govbot_settings
from tests.e2e.conftest import RunningBot, StartBot
from tests.fakes.telegram_server import FakeTelegramServer

CITIZEN = 42
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
TELEGRAM_LOG = "bot.channels.telegram"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serves_without_telegram(bot: RunningBot) -> None:
    """Ready for the database and knowledge base; the web chat answers; the department API is there."""
    jar = aiohttp.CookieJar(unsafe=True)  # the cookie of a server at an IP address
    async with aiohttp.ClientSession(bot.url, cookie_jar=jar) as http:
        async with http.get("/readyz") as response:
            assert response.status == 200
            assert (await response.json())["checks"] == {"database": "ok", "knowledge": "ok"}
        async with http.get("/") as response:
            found = CSRF.search(await response.text())
        assert found is not None
        async with http.post("/api/chat/messages", json={"text": "/help", "lang": "en"},
                             headers={"X-CSRF-Token": found.group(1)}) as response:
            assert response.status == 200
            assert len((await response.json())["entries"]) == 2
        async with http.get("/api/v1/openapi.json") as response:
            assert response.status == 200


def telegram_log(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == TELEGRAM_LOG and r.levelno == level]


async def test_with_telegram_down_the_rest_serves_and_updates_are_answered_once_it_is_up(
        start_bot: StartBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=TELEGRAM_LOG)
    port = free_port()  # nothing listens there yet
    bot = await start_bot(telegram_api_base_url=f"http://127.0.0.1:{port}/bot")
    await serves_without_telegram(bot)
    async with FakeTelegramServer(port=port) as telegram:
        telegram.send_message(CITIZEN, "/help")
        [reply] = await telegram.wait_for_sent(chat_id=CITIZEN, timeout=10)
        assert reply.text == help_text("en")
        await bot.stop()
    [warning] = telegram_log(caplog, logging.WARNING)
    assert "cannot reach the Bot API" in warning
    assert [m for m in telegram_log(caplog, logging.INFO) if m.startswith("telegram: polling as @")]


async def test_a_bot_api_answering_5xx_to_getme_delays_only_telegram(
        start_bot: StartBot, telegram: FakeTelegramServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=TELEGRAM_LOG)
    telegram.fail_next("getMe", 502, times=2)
    bot = await start_bot(webhook=True)
    await serves_without_telegram(bot)
    await telegram.wait_for_call("setWebhook", timeout=10)
    assert telegram.webhook.url == bot.url + WEBHOOK_PATH
    assert await telegram.deliver(telegram.message(CITIZEN, "/help")) == 200
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert reply.text == help_text("en")
    assert len(telegram_log(caplog, logging.WARNING)) == 1


async def test_a_refused_webhook_while_retrying_is_logged_and_tried_again(
        start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    telegram.fail_next("getMe", 500)
    telegram.fail_next("setWebhook", 500)
    await start_bot(webhook=True)
    await telegram.wait_for_call("setWebhook", 2, timeout=10)
    assert telegram.webhook.url is not None


async def test_a_token_refused_once_telegram_is_reachable_is_an_error_in_the_log_and_the_rest_serves(
        start_bot: StartBot, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    bot = await start_bot(telegram_api_base_url=f"http://127.0.0.1:{port}/bot", telegram_token="999:WRONG")
    async with FakeTelegramServer(port=port) as telegram:
        await telegram.wait_for_call("getMe", 2, timeout=10)  # the first refusal has been logged
        await serves_without_telegram(bot)
        await bot.stop()
    [error] = telegram_log(caplog, logging.ERROR)
    assert "refuses GOVBOT_TELEGRAM_TOKEN" in error
    assert "WRONG" not in caplog.text


async def test_stopping_while_telegram_is_tried_again_is_quick(start_bot: StartBot) -> None:
    bot = await start_bot(telegram_api_base_url=f"http://127.0.0.1:{free_port()}/bot")
    started = time.monotonic()
    await bot.stop()
    assert time.monotonic() - started < 2


async def test_a_wrong_token_is_a_configuration_error_that_does_not_show_it(start_bot: StartBot) -> None:
    with pytest.raises(ConfigError, match="GOVBOT_TELEGRAM_TOKEN") as raised:
        await start_bot(telegram_token="999:WRONG")
    assert "WRONG" not in str(raised.value)


async def run_govbot(tmp_path: Path, *options: str, **env: str) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    environment = without_govbot_settings(dict(os.environ)) | {
        "GOVBOT_HTTP_PORT": str(port), "GOVBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/govbot.db",
        **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", *options, cwd=REPO, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    return process, port


async def ready(port: int) -> bool:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):  # start-up takes a moment: poll the port, bounded
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    return False


async def finished(process: asyncio.subprocess.Process, timeout: float) -> tuple[int, str]:
    try:
        code = await asyncio.wait_for(process.wait(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stdout is not None
    return code, (await process.stdout.read()).decode()


async def test_govbot_run_with_telegram_unreachable_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    process, port = await run_govbot(tmp_path, GOVBOT_TELEGRAM_TOKEN="1:x",
                                     GOVBOT_TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{free_port()}/bot")
    try:
        assert await ready(port)
    finally:
        process.send_signal(signal.SIGTERM)
    code, printed = await finished(process, 15)
    assert code == 0, printed
    assert "Traceback" not in printed


async def test_govbot_run_with_a_wrong_token_says_so_in_one_line_and_exits_2(
        tmp_path: Path, telegram: FakeTelegramServer) -> None:
    process, _ = await run_govbot(tmp_path, GOVBOT_TELEGRAM_TOKEN="999:WRONG",
                                  GOVBOT_TELEGRAM_API_BASE_URL=telegram.base_url)
    code, printed = await finished(process, 30)
    assert code == 2, printed
    assert "Traceback" not in printed
    assert "WRONG" not in printed
    [line] = [line for line in printed.splitlines() if line.startswith("govbot: ")]
    assert line.startswith("govbot: configuration error: ")


@pytest.mark.postgres
async def test_workers_with_a_wrong_token_stop_at_once_with_exit_2(
        tmp_path: Path, telegram: FakeTelegramServer, postgres_url: str) -> None:
    # Each worker stopped on the configuration error, and the supervisor started it again until too many
    # had died in a minute: a traceback each time, then exit code 1, as if the workers were crashing.
    process, _ = await run_govbot(tmp_path, "--workers", "2", GOVBOT_DATABASE_URL=postgres_url,
                                  GOVBOT_TELEGRAM_TOKEN="999:WRONG", GOVBOT_PUBLIC_URL="https://bot.example.gov",
                                  GOVBOT_TELEGRAM_API_BASE_URL=telegram.base_url)
    code, printed = await finished(process, 60)
    assert code == 2, printed
    assert "Traceback" not in printed
    assert "starting it again" not in printed
    assert "WRONG" not in printed
    assert "govbot: configuration error: Telegram refuses GOVBOT_TELEGRAM_TOKEN" in printed
