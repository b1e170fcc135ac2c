"""The citizen's side of escalation at its edges: group chats, old buttons, a step that can no longer
complete, and tickets as they are copied."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import escalation
from handlers.dialogue import Dialogue
from handlers.i18n import t
from handlers.router import Flow, Turn
from handlers.types import Reply
from storage.cases import CaseRecord, CaseRepository, CaseStatus
from storage.citizens import CitizenRepository, DialogueState
from storage.knowledge_sync import LiveKnowledge
from tests.handlers.conftest import NOW, payloads, said
from tests.handlers.test_escalation import UNKNOWN, button, describing, events, open_case_by_dialogue, press

Sessions = async_sessionmaker[AsyncSession]
GROUP = "-100999"


async def in_group(
    sessions: Sessions, knowledge: LiveKnowledge, flow: Flow, *, text: str | None = None, args: str = ""
) -> tuple[list[Reply], DialogueState]:
    """The citizen's group message handed to an escalation flow as if the dialogue had routed it there."""
    incoming = replace(said(text, payload=args or None), chat_id=GROUP, is_group=True)
    async with sessions.begin() as session:
        citizens = CitizenRepository(session)
        citizen, state = await citizens.begin_turn("test", "42", now=NOW)
        turn = Turn(incoming, session, citizen, "en", state, knowledge, NOW, args=args)
        replies = await flow(turn)
        await citizens.save_state(citizen.id, turn.state)
    async with sessions() as session:
        return replies, await CitizenRepository(session).state(citizen.id)


async def cases(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CaseRecord)) or 0)


async def test_a_group_message_neither_describes_a_private_request_nor_drops_it(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    await describing(dialogue)
    async with sessions() as session:
        before = await CitizenRepository(session).state(1)
    asked = "what time is the meeting?"
    replies, after = await in_group(sessions, knowledge, escalation.description, text=asked)
    assert not [r for r in replies if r.kind.startswith("escalation")]
    assert after == before
    replies = await dialogue.handle(said("My tax refund from March has not arrived."))
    assert replies[0].kind == "escalation_consent"


async def test_no_case_is_opened_from_a_group_whatever_step_is_pending(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    consent = await dialogue.handle(said("/human My tax refund from March has not arrived"))
    consent = await press(dialogue, await press(dialogue, consent, "esc:cat:tax"), "esc:yes")
    [no_contact] = [p for p in payloads(consent) if p.startswith("esc:consent:") and p.endswith(":0")]
    args = no_contact.removeprefix("esc:")
    replies, state = await in_group(sessions, knowledge, escalation.step, args=args)
    assert replies[0].kind == "private_only"
    assert state.state == escalation.CONSENT
    await press(dialogue, consent, "esc:consent:1")
    replies, state = await in_group(sessions, knowledge, escalation.contact, text="Li Wei, 13800138000")
    assert state.state == escalation.CONTACT
    replies, state = await in_group(sessions, knowledge, escalation.typed_instead_of_pressing, text="yes")
    assert await cases(sessions) == 0
    async with sessions.begin() as session:  # the step that opens the case refuses a group as well
        citizen, state = await CitizenRepository(session).begin_turn("test", "42", now=NOW)
        incoming = replace(said("Li Wei"), chat_id=GROUP, is_group=True)
        turn = Turn(incoming, session, citizen, "en", state, knowledge, NOW)
        refused = await escalation._open(turn, dict(state.data), contact=None)
    assert refused[0].kind == "escalation_group"
    assert await cases(sessions) == 0
    replies = await dialogue.handle(said("Li Wei, 13800138000"))
    assert replies[0].kind == "case_created"
    async with sessions() as session:
        assert await session.scalar(select(CaseRecord.chat_id)) == "42"


async def test_a_button_of_an_earlier_request_has_expired_and_opens_nothing(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    first = await dialogue.handle(said(UNKNOWN))
    first = await dialogue.handle(said(payload=button(first, "human:q")))
    first_describe = await press(dialogue, await press(dialogue, first, "esc:cat:tax"), "esc:yes")
    await dialogue.handle(said("/start"))  # the citizen leaves the first request without cancelling it
    second = await dialogue.handle(said("Where can I park my boat overnight near the harbour?"))
    second = await dialogue.handle(said(payload=button(second, "human:q")))
    await press(dialogue, await press(dialogue, second, "esc:cat:civil-registry"), "esc:yes")
    for old in payloads(first_describe):  # "Send my question as it is" with the first question, Cancel
        assert (await dialogue.handle(said(payload=old)))[0].kind == "expired", old
    assert all(len(p.encode()) <= 64 for p in payloads(first_describe))
    replies = await dialogue.handle(said("The harbour master's office is closed on weekends."))
    assert replies[0].kind == "escalation_consent"
    await press(dialogue, replies, "esc:consent:0")
    [event] = await events(sessions)
    assert event.department == "REGISTRY"
    assert event.payload["data"]["case"]["description"].startswith("The harbour master's office")


async def test_a_lapsed_requests_button_says_the_request_has_lapsed(
    sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    now = [NOW]
    dialogue = Dialogue(sessions, knowledge, clock=lambda: now[0])
    replies = await dialogue.handle(said("/human my refund is late"))
    consent = await press(dialogue, await press(dialogue, replies, "esc:cat:tax"), "esc:yes")
    now[0] = NOW + escalation.WAIT + timedelta(minutes=1)
    replies = await press(dialogue, consent, "esc:consent:0")
    assert replies[0].text == t("en", "esc_expired")
    assert await cases(sessions) == 0


async def test_adding_to_a_case_closed_meanwhile_says_it_is_closed_with_its_ticket(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await open_case_by_dialogue(dialogue)
    shown = await dialogue.handle(said("/status TA-2026-000001"))
    await dialogue.handle(said(payload=button(shown, "case:add:")))
    async with sessions.begin() as session:
        case = await CaseRepository(session).by_ticket("TA-2026-000001")
        assert case is not None
        await CaseRepository(session).set_status(case.id, "TAX", CaseStatus.CLOSED, None, NOW)
    replies = await dialogue.handle(said("Here is the receipt number you asked for"))
    assert replies[0].kind == "case_closed"
    assert "TA-2026-000001" in replies[0].text


@pytest.mark.parametrize(
    "typed",
    ["/status TA－2026－000001", "/status ＴＡ-２０２６-０００００１", "/status TA-2026-000001.",
     "/status 「ta-2026-000001」。"],
)
async def test_status_finds_a_ticket_typed_full_width_or_copied_with_its_punctuation(
    dialogue: Dialogue, typed: str
) -> None:
    await open_case_by_dialogue(dialogue)
    shown = await dialogue.handle(said(typed))
    assert shown[0].kind == "case"
    assert "TA-2026-000001" in shown[0].text
