"""One citizen with data in every feature, made through the dialogue where it can be and storage otherwise.

Everything the citizen typed carries a marker (``Zylqor01``, ``Zylqor02``…), and so do their name, username
and web identity; their Telegram chat id is distinctive too. A scan of the database for :data:`NEEDLES`
then finds every copy of their data, whatever table it went to.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import PREFIX, create_api
from bot.channels.web import reply_entry
from bot.keys import SESSIONS, WAKE
from bot.webhooks import new_secret
from handlers.dialogue import Dialogue
from handlers.types import Button, Incoming, Reply, erased
from storage import web_chat
from storage.citizens import for_storage
from storage.consent import ConsentRequest
from storage.departments import DepartmentRepository, new_token
from storage.inbox import InboxRepository
from storage.web_chat import NewEntry
from tests.escalation.dispatching import Clock, dispatcher
from tests.escalation.receiver import Receiver, receiving
from tests.handlers.conftest import payloads, shown

Sessions = async_sessionmaker[AsyncSession]
Client = TestClient[web.Request, web.Application]

MARK = "Zylqor"
"""Starts every marker: what the citizen typed, their name, username and web identity."""
NAME, SURNAME, USERNAME = f"{MARK}Anna", f"{MARK}Brightwater", f"{MARK.lower()}_anna"
CHAT_ID = 918273645
"""Their Telegram user and private chat id."""
WEB_ID = f"{MARK}WebIdentity4f1c"
"""Their web chat identity (the random one in their signed cookie)."""
CONTACT = f"{NAME} {SURNAME}, 13800138000"
NEEDLES = (MARK, str(CHAT_ID))


def mark(n: int) -> str:
    """The marker of the n-th thing the citizen typed."""
    return f"{MARK}{n:02d}"


SENDER = {"id": CHAT_ID, "is_bot": False, "first_name": NAME, "last_name": SURNAME, "username": USERNAME,
          "language_code": "en"}
PRIVATE_CHAT = {"id": CHAT_ID, "type": "private", "first_name": NAME, "last_name": SURNAME,
                "username": USERNAME}


@dataclass
class Citizen:
    """The dialogue, the departments' API and endpoints, and the citizen's exports as /mydata gave them."""

    dialogue: Dialogue
    sessions: Sessions
    clock: Clock
    api: Client
    receivers: dict[str, Receiver]
    tokens: dict[str, str]
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``telegram`` and ``web``: the JSON documents /mydata sent last."""
    _web_messages: int = 0

    async def telegram(self, text: str | None = None, *, payload: str | None = None) -> list[Reply]:
        """The citizen in their private Telegram chat."""
        return await self.dialogue.handle(Incoming(
            channel="telegram", chat_id=str(CHAT_ID), user_id=str(CHAT_ID), text=text, payload=payload,
            language="en", display_name=f"{NAME} {SURNAME}"))

    async def web(self, text: str | None = None, *, press: Button | None = None) -> list[Reply]:
        """The citizen in the web chat: the dialogue's turn and the entries the web channel stores of it."""
        replies = await self.dialogue.handle(Incoming(
            channel=web_chat.CHANNEL, chat_id=WEB_ID, user_id=WEB_ID, text=text,
            payload=press.payload if press else None, language="en"))
        if not erased(replies):
            self._web_messages += 1
            client_id = f"page-message-{self._web_messages}"
            own = (NewEntry(role="press", text=press.label, kind="press", client_id=client_id) if press else
                   NewEntry(role="citizen", text=for_storage(text or ""), kind="text", client_id=client_id))
            entries = [own, *(entry for entry in map(reply_entry, replies) if entry is not None)]
            await web_chat.append(self.sessions, WEB_ID, entries, now=self.clock())
        return replies

    async def department(self, code: str, ticket: str, action: str, body: dict[str, Any], key: str) -> None:
        """A department's write through its API, with an Idempotency-Key."""
        headers = {"Authorization": f"Bearer {self.tokens[code]}", "Idempotency-Key": key}
        response = await self.api.post(f"{PREFIX}/cases/{ticket}/{action}", json=body, headers=headers)
        assert response.status in (200, 201), await response.text()

    async def dispatch(self) -> None:
        """Deliver every due event to the departments' endpoints."""
        async with dispatcher(self.sessions, self.clock) as d:
            while await d.run_once():
                pass


@asynccontextmanager
async def citizen_world(dialogue: Dialogue, sessions: Sessions, clock: Clock) -> AsyncIterator[Citizen]:
    """TAX and REGISTRY (the knowledge base's departments) with tokens and endpoints, and the API."""
    async with AsyncExitStack() as stack:
        receivers, tokens = {}, {}
        for code in ("TAX", "REGISTRY"):
            secret, tokens[code] = new_secret(), new_token()
            receivers[code] = await stack.enter_async_context(receiving(secret))
            async with sessions.begin() as session:
                repo = DepartmentRepository(session)
                await repo.update(code, webhook_url=receivers[code].url, secrets=[secret])
                await repo.set_token(code, tokens[code])
        app = web.Application()
        app[SESSIONS] = sessions
        app[WAKE] = []
        app.add_subapp(PREFIX, create_api(clock=clock))
        api = await stack.enter_async_context(TestClient(TestServer(app)))
        yield Citizen(dialogue, sessions, clock, api, receivers, tokens)


def button(replies: list[Reply], prefix: str) -> str:
    [found] = [p for p in payloads(replies) if p.startswith(prefix)]
    return found


async def live_everywhere(citizen: Citizen) -> None:
    """The citizen uses every feature on Telegram and on the web; then asks each channel for /mydata."""
    await _channel_updates(citizen)
    await _answers_and_feedback(citizen)
    ticket = await _case(citizen)
    await _department_work(citizen, ticket)
    await citizen.web(f"How do I pay my property tax? {mark(20)}")
    await citizen.web(f"/feedback {mark(21)} the web chat is handy")
    citizen.exports["telegram"] = _mydata(await citizen.telegram("/mydata"))
    citizen.exports["web"] = _mydata(await citizen.web("/mydata"))


async def forget(citizen: Citizen) -> None:
    """/forget, confirmed, from the citizen's Telegram chat and from their web chat."""
    replies = await citizen.telegram("/forget")
    assert (await citizen.telegram(payload=button(replies, "forget:yes")))[0].kind == "forgotten"
    replies = await citizen.web("/forget")
    [yes] = [b for r in replies for b in r.buttons_flat if (b.payload or "").startswith("forget:yes")]
    assert erased(await citizen.web(press=yes))


def _mydata(replies: list[Reply]) -> dict[str, Any]:
    [reply] = replies
    assert reply.document is not None
    document: dict[str, Any] = json.loads(reply.document.content)
    return document


async def _channel_updates(citizen: Citizen) -> None:
    """Raw updates in the inbox: one handled (its content dropped), one whose attempts failed, one waiting."""
    now = citizen.clock()
    typed = f"{mark(1)} my tax office lost my papers"
    updates = [
        ("1001", {"update_id": 1001, "message": {"message_id": 1, "from": SENDER, "chat": PRIVATE_CHAT,
                                                 "date": 0, "text": "/start"}}),
        ("1002", {"update_id": 1002, "message": {"message_id": 2, "from": SENDER, "chat": PRIVATE_CHAT,
                                                 "date": 0, "text": typed}}),
        ("1003", {"update_id": 1003, "callback_query": {
            "id": "77", "from": SENDER, "chat_instance": "1",
            "message": {"message_id": 3, "chat": PRIVATE_CHAT, "date": 0, "text": f"{mark(2)} quoted"},
            "data": "menu"}}),
    ]
    async with citizen.sessions.begin() as session:
        inbox = InboxRepository(session)
        await inbox.accept_many("telegram", updates, received_at=now)
        await inbox.mark_processed("telegram", "1001")
        await inbox.mark_failed("telegram", "1002", f"could not handle {typed!r} from {USERNAME}")


async def _answers_and_feedback(citizen: Citizen) -> None:
    """A "did you mean" pick, its answer rated not helpful with what was missing, and a comment."""
    offered = await citizen.telegram(f"How do I renew my identity card? {mark(3)}")
    answered = await citizen.telegram(payload=button(offered, "pick:1:0"))
    [not_helpful] = [p for p in payloads(answered) if p.startswith("rate:") and p.endswith(":0")]
    await citizen.telegram(payload=not_helpful)
    await citizen.telegram(f"{mark(4)} the photo rules were missing")
    await citizen.telegram(f"/feedback {mark(5)} the registry office was slow")


async def _case(citizen: Citizen) -> str:
    """No answer → a department → topic Tax → a description → contact details shared by consent."""
    async def press(replies: list[Reply], wanted: str) -> list[Reply]:
        return await citizen.telegram(payload=shown(payloads(replies), wanted))

    replies = await citizen.telegram(f"When do the harbour fireworks start? {mark(7)}")
    replies = await citizen.telegram(payload=button(replies, "human:q"))
    replies = await press(replies, "esc:cat:tax")
    replies = await press(replies, "esc:yes")
    replies = await citizen.telegram(f"{mark(8)} the fireworks kept my children awake until 2 am")
    replies = await press(replies, "esc:consent:1")
    replies = await citizen.telegram(CONTACT)
    assert replies[0].kind == "case_created", replies
    await citizen.dispatch()
    [case] = (await citizen.telegram("/status"))[0].buttons
    return case[0].label


async def _department_work(citizen: Citizen, ticket: str) -> None:
    """TAX replies by name and transfers to REGISTRY, whose fields need consent; the citizen adds to it."""
    await citizen.department("TAX", ticket, "replies", {"text": f"Dear {NAME}, we have asked the harbour."},
                             "reply-1")
    await citizen.department("TAX", ticket, "status", {"status": "in_progress", "note": f"Calling {NAME}"},
                             "status-1")
    await citizen.department("TAX", ticket, "transfer", {"department": "REGISTRY", "note": f"{NAME}'s case"},
                             "transfer-1")
    await citizen.dispatch()
    async with citizen.sessions() as session:
        prompts = list(await session.scalars(select(ConsentRequest.id)))
    for prompt in prompts:
        await citizen.telegram(payload=f"consent:{prompt}:1")
    status = await citizen.telegram(f"/status {ticket}")
    await citizen.telegram(payload=button(status, "case:add:"))
    await citizen.telegram(f"{mark(9)} I can also send a video of it")
    await citizen.department("REGISTRY", ticket, "replies", {"text": f"{NAME}, please send the video."},
                             "reply-2")
    await citizen.dispatch()
