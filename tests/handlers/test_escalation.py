"""The escalation dialogue: from "no answer", "not helpful" or /human to a case; /status; add; withdraw."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from handlers.escalation import DEFAULT_DEPARTMENT, notice_replies
from handlers.types import Reply
from storage.cases import CaseRecord, CaseRepository, CaseStatus
from storage.knowledge_sync import LiveKnowledge
from storage.models import Conversation
from storage.outbox import OutboxEvent
from tests.handlers.conftest import NOW, payloads, said, shown

Sessions = async_sessionmaker[AsyncSession]
UNKNOWN = "What time does the moon festival fireworks show start?"


def button(replies: list[Reply], prefix: str) -> str:
    """The payload of the one button starting with ``prefix``."""
    [found] = [p for p in payloads(replies) if p.startswith(prefix)]
    return found


async def press(
    dialogue: Dialogue, replies: list[Reply], prefix: str, *, user: str = "42", language: str = "en"
) -> list[Reply]:
    """Press the button of ``replies`` whose payload starts with ``prefix`` (``esc:yes``, ``esc:cat:tax``)."""
    found = shown(payloads(replies), prefix) if prefix.startswith("esc:") else button(replies, prefix)
    return await dialogue.handle(said(payload=found, user=user, language=language))


async def events(sessions: Sessions) -> list[OutboxEvent]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all())


async def open_case_by_dialogue(dialogue: Dialogue, user: str = "42") -> str:
    """No answer → talk to a department → topic Tax → yes → send the question as it is → no contact."""
    replies = await dialogue.handle(said(UNKNOWN, user=user))
    replies = await dialogue.handle(said(payload=button(replies, "human:q"), user=user))
    replies = await press(dialogue, replies, "esc:cat:tax", user=user)
    replies = await press(dialogue, replies, "esc:yes", user=user)
    replies = await press(dialogue, replies, "esc:asis", user=user)
    replies = await press(dialogue, replies, "esc:consent:0", user=user)
    assert replies[0].kind == "case_created"
    return replies[0].text


async def test_no_answer_leads_to_a_case_with_the_question_and_its_created_event(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    replies = await dialogue.handle(said(UNKNOWN))
    replies = await dialogue.handle(said(payload=button(replies, "human:q")))
    assert replies[0].kind == "escalation_topic"
    replies = await press(dialogue, replies, "esc:cat:tax")
    assert replies[0].kind == "escalation_confirm"
    assert "Tax Bureau" in replies[0].text
    replies = await press(dialogue, replies, "esc:yes")
    assert replies[0].kind == "escalation_describe"
    assert "moon festival" in replies[0].text
    replies = await press(dialogue, replies, "esc:asis")
    assert replies[0].kind == "escalation_consent"
    replies = await press(dialogue, replies, "esc:consent:0")
    assert replies[0].kind == "case_created"
    assert "TA-2026-000001" in replies[0].text
    [event] = await events(sessions)
    assert (event.type, event.department) == ("case.created", "TAX")
    data = event.payload["data"]
    assert data["case"]["description"] == UNKNOWN
    assert "contact" not in data["citizen"]
    assert [m["text"] for m in data["excerpt"] if m["direction"] == "in"] == [UNKNOWN]


async def test_not_helpful_goes_to_the_entrys_department_with_contact_details_given_by_consent(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    answer = await dialogue.handle(said("how do I renew my identity card"))
    [not_helpful] = [p for p in payloads(answer) if p.startswith("rate:") and p.endswith(":0")]
    rated = await dialogue.handle(said(payload=not_helpful))
    replies = await dialogue.handle(said(payload=button(rated, "human:a")))
    assert replies[0].kind == "escalation_confirm"
    assert "Registry" in replies[0].text
    await press(dialogue, replies, "esc:yes")
    replies = await dialogue.handle(said("The office refused my old photo. What photo do I need?"))
    await press(dialogue, replies, "esc:consent:1")
    replies = await dialogue.handle(said("Li Wei, 13800138000"))
    assert "RE-2026-000001" in replies[0].text
    [event] = await events(sessions)
    data = event.payload["data"]
    assert event.department == "REGISTRY"
    assert data["case"]["entry_id"] == "id-card-renew"
    assert data["case"]["description"] == "The office refused my old photo. What photo do I need?"
    assert data["citizen"]["contact"] == "Li Wei, 13800138000"
    assert data["citizen"]["contact_consent_at"] == "2026-11-23T09:30:00Z"


async def test_human_with_a_description_uses_the_default_department(
    sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    dialogue = Dialogue(sessions, knowledge, clock=lambda: NOW, extras={DEFAULT_DEPARTMENT: "TAX"})
    replies = await dialogue.handle(said("/human My neighbour's dog barks all night"))
    assert replies[0].kind == "escalation_topic"
    replies = await press(dialogue, replies, "esc:cat:-")
    assert "Tax Bureau" in replies[0].text
    replies = await press(dialogue, replies, "esc:yes")
    assert replies[0].kind == "escalation_consent"  # the description came with the command
    await press(dialogue, replies, "esc:consent:0")
    [event] = await events(sessions)
    assert event.payload["data"]["case"]["description"] == "My neighbour's dog barks all night"


async def test_without_any_department_the_citizen_gets_the_hotline(dialogue: Dialogue) -> None:
    replies = await dialogue.handle(said("/human"))
    replies = await press(dialogue, replies, "esc:cat:-")
    assert replies[0].kind == "escalation_unavailable"
    assert "12345" in replies[0].text


async def test_cancel_and_stale_buttons_open_nothing(dialogue: Dialogue, sessions: Sessions) -> None:
    topics = await dialogue.handle(said("/human"))
    replies = await press(dialogue, topics, "esc:no")
    assert replies[0].kind == "escalation_cancelled"
    nonce = button(topics, "esc:no:").removeprefix("esc:no:")
    for payload in (
        f"esc:yes:{nonce}",
        f"esc:asis:{nonce}",
        f"esc:consent:{nonce}:0",
        f"esc:cat:{nonce}:tax",
        "esc:yes",
        "esc:bogus",
        "case:show:1",
        "case:add:99999999999",
        "csat:1:5",
        "csat:x:y",
        "case:wdy:-1",
    ):
        replies = await dialogue.handle(said(payload=payload))
        assert replies[0].kind == "expired", payload
    assert await events(sessions) == []


async def test_typing_instead_of_pressing_keeps_the_step_and_asks_for_its_buttons_again(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    topics = await dialogue.handle(said("/human My tax refund from March has not arrived"))
    confirm = await press(dialogue, topics, "esc:cat:tax")
    replies = await dialogue.handle(said("yes"))
    assert [r.kind for r in replies] == ["escalation_use_buttons", "escalation_confirm"]
    assert payloads(replies) == payloads(confirm)
    consent = await press(dialogue, replies, "esc:yes")
    replies = await dialogue.handle(said("13800138000"))  # "may they contact you?" answered by typing
    assert [r.kind for r in replies] == ["escalation_use_buttons", "escalation_consent"]
    assert payloads(replies) == payloads(consent)
    assert await events(sessions) == []
    created = await press(dialogue, replies, "esc:consent:0")
    assert created[0].kind == "case_created"
    [event] = await events(sessions)
    assert event.payload["data"]["case"]["description"] == "My tax refund from March has not arrived"


async def describing(dialogue: Dialogue) -> list[Reply]:
    """/human → topic Tax → yes: the citizen is asked to describe the request."""
    replies = await dialogue.handle(said("/human"))
    replies = await press(dialogue, replies, "esc:cat:tax")
    replies = await press(dialogue, replies, "esc:yes")
    assert replies[0].kind == "escalation_describe"
    return replies


async def test_an_empty_description_is_asked_for_again(dialogue: Dialogue) -> None:
    await describing(dialogue)
    replies = await dialogue.handle(said("?!…"))
    assert replies[0].kind == "escalation_empty"
    replies = await dialogue.handle(said("My tax refund has not arrived."))
    assert replies[0].kind == "escalation_consent"


async def test_a_description_waiting_for_consent_is_kept_masked(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await describing(dialogue)
    replies = await dialogue.handle(said("My refund is late, call me on 13812345678"))
    assert replies[0].kind == "escalation_consent"
    async with sessions() as session:
        [draft] = await session.scalars(select(Conversation.data))
    assert "13812345678" not in json.dumps(draft)
    assert "138****5678" in json.dumps(draft)


async def test_overlong_contact_details_are_refused(dialogue: Dialogue) -> None:
    replies = await dialogue.handle(said("/human I need help"))
    replies = await press(dialogue, replies, "esc:cat:tax")
    replies = await press(dialogue, replies, "esc:yes")
    await press(dialogue, replies, "esc:consent:1")
    replies = await dialogue.handle(said("x" * 600))
    assert replies[0].kind == "escalation_contact"
    assert "500" in replies[0].text


async def test_a_step_left_for_long_lapses_and_the_text_is_a_question_again(
    sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    now = [NOW]
    dialogue = Dialogue(sessions, knowledge, clock=lambda: now[0])
    await describing(dialogue)
    now[0] = NOW + timedelta(hours=2)
    replies = await dialogue.handle(said("how do I pay my property tax"))
    assert replies[0].kind == "answer"
    assert await events(sessions) == []


async def test_escalation_is_refused_in_a_group(dialogue: Dialogue) -> None:
    replies = await dialogue.handle(said("/human", is_group=True))
    assert replies[0].kind == "escalation_group"


async def test_status_lists_and_shows_only_the_citizens_own_cases(dialogue: Dialogue) -> None:
    await open_case_by_dialogue(dialogue)
    await open_case_by_dialogue(dialogue, user="43")
    listing = await dialogue.handle(said("/status"))
    assert "TA-2026-000001" in listing[0].text
    assert "TA-2026-000002" not in listing[0].text
    shown = await dialogue.handle(said("/status ta-2026-000001"))
    assert shown[0].kind == "case"
    assert "received" in shown[0].text
    assert payloads(shown) == [button(shown, "case:add:"), button(shown, "case:wd:")]
    for other in ("/status TA-2026-000002", "/status nonsense", "/status TA-2026-999999"):
        assert (await dialogue.handle(said(other)))[0].kind == "case_not_found"
    assert (await dialogue.handle(said("/status", user="44")))[0].kind == "cases"


async def test_adding_information_sends_case_updated(dialogue: Dialogue, sessions: Sessions) -> None:
    await open_case_by_dialogue(dialogue)
    shown = await dialogue.handle(said("/status TA-2026-000001"))
    prompt = await dialogue.handle(said(payload=button(shown, "case:add:")))
    assert (await press(dialogue, prompt, "esc:no"))[0].kind == "escalation_cancelled"
    assert (await dialogue.handle(said("how do I pay my property tax")))[0].kind == "answer"
    replies = await dialogue.handle(said(payload=button(shown, "case:add:")))
    assert replies[0].kind == prompt[0].kind == "case_add"
    replies = await dialogue.handle(said("The fireworks are on the 15th."))
    assert replies[0].kind == "case_added"
    assert [e.type for e in await events(sessions)] == ["case.created", "case.updated"]
    assert (await events(sessions))[1].payload["data"]["update"]["text"] == "The fireworks are on the 15th."


async def test_withdrawing_asks_first_then_sends_case_closed(dialogue: Dialogue, sessions: Sessions) -> None:
    await open_case_by_dialogue(dialogue)
    shown = await dialogue.handle(said("/status TA-2026-000001"))
    confirm = await dialogue.handle(said(payload=button(shown, "case:wd:")))
    assert confirm[0].kind == "case_withdraw"
    replies = await dialogue.handle(said(payload=button(confirm, "case:wdy:")))
    assert replies[0].kind == "case_withdrawn"
    assert [e.type for e in await events(sessions)] == ["case.created", "case.closed"]
    again = await dialogue.handle(said(payload=button(shown, "case:add:")))
    assert again[0].kind == "case_closed"
    assert payloads(await dialogue.handle(said("/status TA-2026-000001"))) == []


async def test_a_finished_case_takes_the_citizens_rating(dialogue: Dialogue, sessions: Sessions) -> None:
    await open_case_by_dialogue(dialogue)
    async with sessions.begin() as session:
        case = await CaseRepository(session).by_ticket("TA-2026-000001")
        assert case is not None
        await CaseRepository(session).set_status(case.id, "TAX", CaseStatus.RESOLVED, "Done.", NOW)
    notice = notice_replies("status", {"ticket": case.ticket, "case_id": case.id, "status": "resolved"}, "en")
    stars = [p for p in payloads(notice) if p.startswith("csat:")]
    assert stars == [f"csat:{case.id}:{n}" for n in range(1, 6)]
    assert (await dialogue.handle(said(payload=stars[3], user="43")))[0].kind == "expired"
    assert (await dialogue.handle(said(payload=stars[3])))[0].kind == "csat"
    async with sessions() as session:
        assert await session.scalar(select(CaseRecord.satisfaction)) == 4


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_notices_render_in_the_citizens_language(lang: str) -> None:
    data = {
        "ticket": "TR-2026-000001",
        "case_id": 1,
        "department_name": {"en": "Transport Bureau", "zh": "交通局"},
    }
    reply = notice_replies("reply", data | {"text": "<b>not markup</b>"}, lang)
    assert ("Transport Bureau" if lang == "en" else "交通局") in reply[0].text
    assert "&lt;b&gt;not markup&lt;/b&gt;" in reply[0].text
    assert payloads(reply) == ["case:add:1"]
    moved = notice_replies("transferred", data, lang)
    assert "TR-2026-000001" in moved[0].text
    progress = notice_replies("status", data | {"status": "in_progress", "note": "Looking into it"}, lang)
    assert "Looking into it" in progress[0].text


def test_a_reply_too_long_for_one_message_is_split_not_cut() -> None:
    text = "x" * 4096
    replies = notice_replies("reply", {"ticket": "TR-2026-000001", "case_id": 1, "text": text}, "en")
    assert len(replies) == 2
    assert replies[1].text == text
    assert all(len(r.text) <= 4096 for r in replies)


async def test_chinese_citizens_are_led_through_in_chinese(dialogue: Dialogue) -> None:
    replies = await dialogue.handle(said("/human", language="zh"))
    assert "主题" in replies[0].text
    replies = await press(dialogue, replies, "esc:cat:tax", language="zh")
    assert "税务局" in replies[0].text
