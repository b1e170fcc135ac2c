"""An audit of everything `govbot run` logs at DEBUG while citizens, departments and faults go through it:
no secret and no personal datum may appear (a chat id at most as its masked tail).

govbot runs as operators run it: its own process, its logging set up by the `govbot` command with
``GOVBOT_LOG_LEVEL=DEBUG``, and every library's logger set to DEBUG beforehand, as someone chasing a fault
would (govbot then holds back those that would log citizens' data, bot/log_masking.py's LIBRARY_FLOORS).
It talks to the fake Bot API in webhook mode, a department's real endpoint and a real database, and its
whole stderr is read.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.support import free_port
from storage.departments import DepartmentRepository, new_token
from storage.masking import resident_id_check
from tests.conftest import REPO, without_govbot_settings
from tests.escalation.receiver import Receiver, receiving
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage
from tests.handlers.conftest import shown
from tests.processes import kill_left_behind, until

Sessions = async_sessionmaker[AsyncSession]
CITIZEN = 7_712_345_608
"""The citizen's chat and user id: never whole in a log (the dialogue logs ``…608``)."""
TOKEN = "7300000001:AAH-canaryBotTokenXq9Zr4Lm2Vt8Wk"
FIRST_NAME, LAST_NAME, USERNAME = "Ottoline", "Quillfeather", "ottoline_canary"
PHONE = "139 0011 2233"
EMAIL = "ottoline.canary@example.org"
RESIDENT_ID = "11010519491231002" + resident_id_check("11010519491231002")
QUESTION = f"zeppelinquux snorklewhump? {PHONE}, {EMAIL}, {RESIDENT_ID}"
DESCRIPTION = "The flumpsnark kiosk on Harbour Road refused my card"
DEPARTMENT_REPLY = "Dear citizen, the wobblecrantz kiosk is repaired"
CARD = "6222 0212 3456 7894"
WEB_TEXT = f"glimmerquaff: where is my refund? web.canary@example.net, card {CARD}"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"log-privacy-canary-signing-key!!").decode()
ENDPOINT_KEY = "endpointCanaryKey9431"
WRONG_API_KEY = "govbot_wrongCanaryKey5521"
FORGED_WEBHOOK_SECRET = "forgedCanarySecret7710"
DATABASE_PASSWORD = "pgCanaryPassw0rd"


LIBRARIES = ("aiohttp", "aiohttp.access", "aiohttp.client", "aiohttp.server", "aiohttp.web", "telegram",
             "httpx", "httpcore", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg",
             "aiosqlite", "alembic", "asyncio")
"""Loggers set to DEBUG before `govbot run` sets up its logging."""
LAUNCH = ("import logging, sys\n"
          "for name in sys.argv[1:]: logging.getLogger(name).setLevel(logging.DEBUG)\n"
          "from bot.cli import main\n"
          "sys.exit(main(['run']))")


@asynccontextmanager
async def govbot_run_at_debug(database_url: str, log: Path,
                              **settings: str) -> AsyncIterator[tuple[Process, str]]:
    """`govbot run` on a free port with GOVBOT_LOG_LEVEL=DEBUG and every library's logger at DEBUG,
    ``settings`` as GOVBOT_ variables (``"{url}"`` is its address); its stderr in ``log``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = without_govbot_settings(dict(os.environ)) | {
        "GOVBOT_DATABASE_URL": database_url, "GOVBOT_HTTP_HOST": "127.0.0.1", "GOVBOT_HTTP_PORT": str(port),
        "GOVBOT_LOG_LEVEL": "DEBUG",
        **{f"GOVBOT_{name.upper()}": value.replace("{url}", url) for name, value in settings.items()},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, *LIBRARIES, cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        yield process, url
    finally:
        await kill_left_behind(process)


@dataclass
class Citizen:
    """The citizen on Telegram: every update carries their name and username, as Telegram's do."""

    telegram: FakeTelegramServer

    def _named(self, update: dict[str, Any], key: str) -> dict[str, Any]:
        update[key]["from"]["last_name"] = LAST_NAME
        return update

    async def say(self, text: str) -> list[SentMessage]:
        self.telegram.mark()
        update = self.telegram.message(CITIZEN, text, username=USERNAME, first_name=FIRST_NAME)
        assert await self.telegram.deliver(self._named(update, "message")) == 200
        return await self.telegram.wait_for_sent(chat_id=CITIZEN, timeout=30)

    async def press(self, message: SentMessage, payload: str) -> SentMessage:
        self.telegram.mark()
        update = self.telegram.callback(CITIZEN, shown(message.payloads, payload),
                                        message_id=message.message_id, username=USERNAME,
                                        first_name=FIRST_NAME)
        assert await self.telegram.deliver(self._named(update, "callback_query")) == 200
        [reply] = await self.telegram.wait_for_sent(chat_id=CITIZEN, timeout=30)
        return reply


def with_password(url: str) -> str:
    """A PostgreSQL URL with a password in it (the test server trusts local connections and ignores it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.set(password=DATABASE_PASSWORD).render_as_string(hide_password=False)


async def test_nothing_govbot_run_logs_at_debug_holds_a_secret_or_personal_data(
        database_url: str, sessions: Sessions, tmp_path: Path) -> None:
    log = tmp_path / "govbot.log"
    async with (FakeTelegramServer(TOKEN) as telegram, receiving(SIGNING_SECRET) as receiver,
                govbot_run_at_debug(with_password(database_url), log, telegram_token=telegram.token,
                                    telegram_api_base_url=telegram.base_url, public_url="{url}",
                                    telegram_rate_limit="false", webhook_allow_http="true",
                                    webhook_allowed_networks="127.0.0.0/8", dispatch_poll_seconds="0.05")
                as (process, url)):

        async def registered() -> bool:
            return bool(telegram.webhook.url)

        await until(registered)
        api_token = await connect_department(sessions, receiver)
        webhook_secret = str(telegram.webhook.secret_token)
        await converse(telegram, receiver, url, api_token, log)
        secrets = await web_chat(url)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    written = log.read_text()
    assert " DEBUG " in written  # the level took: libraries and govbot wrote at DEBUG
    assert "govbot listening on http://" in written
    assert "govbot stopped" in written
    assert " failed (HTTP 500)" in written  # the faults were logged, as operators need them
    assert re.search(r"notice \d+ to telegram failed", written)
    leaks = {
        "bot token": [TOKEN, TOKEN.split(":", 1)[1]],
        "signing secret": [SIGNING_SECRET, SIGNING_SECRET.removeprefix("whsec_")],
        "department endpoint's key": [ENDPOINT_KEY],
        "department API token": [api_token, WRONG_API_KEY],
        "Telegram webhook secret": [webhook_secret, FORGED_WEBHOOK_SECRET],
        "database password": [DATABASE_PASSWORD],
        "web chat cookie or CSRF token": sorted(secrets),
        "name": [FIRST_NAME, LAST_NAME, USERNAME],
        "chat id": [str(CITIZEN)],
        "phone number": [PHONE, PHONE.replace(" ", ""), "13900112233"],
        "e-mail": [EMAIL, "web.canary@example.net"],
        "ID or card number": [RESIDENT_ID, CARD, CARD.replace(" ", "")],
        "citizen's or department's words": ["zeppelinquux", "flumpsnark", "wobblecrantz", "glimmerquaff"],
    }
    found = {kind: [value for value in values if value.lower() in written.lower()]
             for kind, values in leaks.items()}
    assert {kind: values for kind, values in found.items() if values} == {}, _lines_with(written, found)


async def connect_department(sessions: Sessions, receiver: Receiver) -> str:
    """The Transport Bureau's endpoint (a key in its query), signing secret and API token; the token."""
    token = new_token()
    async with sessions.begin() as session:
        repo = DepartmentRepository(session)
        await repo.update("TRANSPORT", webhook_url=f"{receiver.url}?apikey={ENDPOINT_KEY}",
                          secrets=[SIGNING_SECRET])
        await repo.set_token("TRANSPORT", token)
    return token


async def converse(telegram: FakeTelegramServer, receiver: Receiver, url: str, token: str, log: Path) -> None:
    """A question nobody answers, a case, its delivery failing once, the department's reply, and faults."""
    citizen = Citizen(telegram)
    telegram.fail_next("sendMessage", status=502)  # Telegram fails the answer once; it goes again
    await citizen.say(QUESTION)
    receiver.answers = [500]  # the department's endpoint fails the first delivery
    [topics] = await citizen.say(f"/human {DESCRIPTION}")
    confirm = await citizen.press(topics, "esc:cat:public-transport")
    consent = await citizen.press(confirm, "esc:yes")
    created = await citizen.press(consent, "esc:consent:0")
    ticket = (created.plain_text or "").split("case ", 1)[1].split(" ", 1)[0]

    async def failure_logged() -> bool:
        return " failed (HTTP 500)" in await asyncio.to_thread(log.read_text)

    await until(failure_logged)
    forged = telegram.message(CITIZEN, QUESTION, username=USERNAME, first_name=FIRST_NAME)
    assert await telegram.deliver(forged, secret_token=FORGED_WEBHOOK_SECRET) == 403
    telegram.mark()
    telegram.fail_next("sendMessage", status=502)  # and the department's reply once: the notifier retries
    async with aiohttp.ClientSession(base_url=url) as http:
        for key, status in ((WRONG_API_KEY, 401), (token, 201)):
            async with http.post(f"/api/v1/cases/{ticket}/replies", json={"text": DEPARTMENT_REPLY},
                                 headers={"Authorization": f"Bearer {key}"}) as response:
                assert response.status == status
    await telegram.wait_for_sent(chat_id=CITIZEN, timeout=30,
                                 predicate=lambda m: "wobblecrantz" in (m.plain_text or ""))


async def web_chat(url: str) -> set[str]:
    """A citizen's message on the web chat, and one refused for a wrong CSRF token; the cookie and token."""
    async with aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get("/") as page:
            found = re.search(r'<meta name="csrf-token" content="([^"]+)">', await page.text())
        assert found is not None
        csrf = found.group(1)
        cookies = {cookie.value for cookie in http.cookie_jar}
        for token, status in ((csrf[::-1], 403), (csrf, 200)):
            async with http.post("/api/chat/messages", json={"text": WEB_TEXT, "lang": "en"},
                                 headers={"X-CSRF-Token": token}) as response:
                assert response.status == status
    return cookies | {csrf}


def _lines_with(written: str, found: dict[str, list[str]]) -> str:
    """The log lines that hold what was found, for the failure's message."""
    values = [value.lower() for values in found.values() for value in values]
    return "\n".join(line for line in written.splitlines() if any(v in line.lower() for v in values))
