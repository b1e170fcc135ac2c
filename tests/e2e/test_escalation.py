"""Escalation end to end: citizen (fake Telegram) → case → signed webhook → department API → citizen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.cases import CaseRecord
from storage.departments import DepartmentRepository, new_token
from tests.e2e.conftest import RunningBot, StartBot
from tests.escalation.receiver import Receiver, receiving
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage
from tests.handlers.conftest import shown

Sessions = async_sessionmaker[AsyncSession]
CITIZEN = 42
LOCAL_ENDPOINTS: dict[str, Any] = {
    "webhook_allow_http": True,
    "webhook_allowed_networks": ["127.0.0.0/8"],
    "dispatch_poll_seconds": 0.05,
}


@pytest.fixture
async def transport(
    start_bot: StartBot, sessions: Sessions
) -> AsyncIterator[tuple[RunningBot, Receiver, str]]:
    """The bot running with the sample knowledge base, and the Transport Bureau's endpoint and token."""
    bot = await start_bot(**LOCAL_ENDPOINTS)
    secret = "whsec_" + "dHJhbnNwb3J0LWJ1cmVhdS1zZWNyZXQtMzItYnl0ZXM="
    token = new_token()
    async with receiving(secret) as receiver:
        async with sessions.begin() as session:
            repo = DepartmentRepository(session)
            await repo.update("TRANSPORT", webhook_url=receiver.url, secrets=[secret])
            await repo.set_token("TRANSPORT", token)
        yield bot, receiver, token
    assert receiver.rejected == []


async def press(telegram: FakeTelegramServer, message: SentMessage, payload: str) -> SentMessage:
    """Press a button under a message the bot sent and return the bot's next message.

    ``payload`` as in ``esc:consent:0``: an escalation button carries its request's code after the action.
    """
    telegram.mark()
    telegram.send_callback(CITIZEN, shown(message.payloads, payload), message_id=message.message_id)
    [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    return reply


async def open_case(telegram: FakeTelegramServer) -> str:
    """/human with a description → topic Buses and metro → yes → reply here only; the ticket."""
    telegram.mark()
    telegram.send_message(CITIZEN, "/human The 7 bus did not stop at Harbour Road this morning")
    [topics] = await telegram.wait_for_sent(chat_id=CITIZEN)
    confirm = await press(telegram, topics, "esc:cat:public-transport")
    assert "Transport Bureau" in (confirm.text or "")
    consent = await press(telegram, confirm, "esc:yes")
    created = await press(telegram, consent, "esc:consent:0")
    ticket = (created.plain_text or "").split("case ", 1)[1].split(" ", 1)[0]
    assert ticket.startswith("TR-")
    return ticket


async def test_citizen_to_department_and_back_through_telegram(
    transport: tuple[RunningBot, Receiver, str], telegram: FakeTelegramServer, sessions: Sessions
) -> None:
    bot, receiver, token = transport
    ticket = await open_case(telegram)
    [delivery] = await receiver.wait_for(1)
    assert delivery.payload["type"] == "case.created"
    assert delivery.payload["data"]["case"]["ticket"] == ticket
    assert (
        delivery.payload["data"]["case"]["description"]
        == "The 7 bus did not stop at Harbour Road this morning"
    )

    auth = {"Authorization": f"Bearer {token}"}
    telegram.mark()
    async with aiohttp.ClientSession(base_url=bot.url) as http:
        async with http.post(
            f"/api/v1/cases/{ticket}/replies", json={"text": "We have spoken to the driver."}, headers=auth
        ) as response:
            assert response.status == 201
        [reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
        assert "Transport Bureau" in (reply.plain_text or "")
        assert "We have spoken to the driver." in (reply.plain_text or "")

        telegram.mark()
        async with http.post(
            f"/api/v1/cases/{ticket}/status", json={"status": "resolved"}, headers=auth
        ) as response:
            assert response.status == 200
        status, rating = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert "resolved" in (status.plain_text or "")
    thanks = await press(telegram, rating, next(p for p in rating.payloads if p.endswith(":5")))
    assert "Thank you" in (thanks.text or "")
    async with sessions() as session:
        assert await session.scalar(select(CaseRecord.satisfaction)) == 5


async def test_a_telegram_outage_delays_a_department_reply_but_never_drops_it(
    transport: tuple[RunningBot, Receiver, str], telegram: FakeTelegramServer
) -> None:
    bot, receiver, token = transport
    ticket = await open_case(telegram)
    await receiver.wait_for(1)
    telegram.mark()
    telegram.fail_next("sendMessage", status=502, times=1)
    async with (
        aiohttp.ClientSession(base_url=bot.url) as http,
        http.post(
            f"/api/v1/cases/{ticket}/replies",
            json={"text": "Reply during an outage"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 201
    [reply] = await telegram.wait_for_sent(
        chat_id=CITIZEN, timeout=20, predicate=lambda m: "outage" in (m.plain_text or "")
    )
    assert "Reply during an outage" in (reply.plain_text or "")
