"""The service desk's calendar (GOVBOT_TIMEZONE): what citizens read as a date is the local one, not UTC's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from knowledge.entry import Entry
from storage.cases import CaseRepository
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge
from tests.handlers.conftest import payloads, said, small_kb
from tests.handlers.test_escalation import button, open_case_by_dialogue

Sessions = async_sessionmaker[AsyncSession]
NEW_YEARS_EVE = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
"""07:30 on 1 January 2027 in Shanghai (UTC+8)."""
ZONES = [("Asia/Shanghai", "2027-01-01"), ("UTC", "2026-12-31")]
MIDNIGHT_IN_SHANGHAI = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
"""00:30 on 1 January 2027 in Shanghai, still the afternoon of 31 December in UTC."""
SUBSIDY = Entry(
    id="tax-2027-subsidy",
    category="tax",
    department="TAX",
    valid_from=date(2027, 1, 1),
    question={"en": "How do I apply for the 2027 childcare subsidy?", "zh": "如何申请2027年育儿补贴？"},
    alternatives={
        "en": ["childcare subsidy", "apply for childcare subsidy"],
        "zh": ["育儿补贴", "申请育儿补贴"],
    },
    answer={
        "en": "Apply for the childcare subsidy at any tax office.",
        "zh": "可到任一税务窗口申请育儿补贴。",
    },
)


@pytest.fixture
async def knowledge(sessions: Sessions) -> LiveKnowledge:
    """The handlers' small knowledge base and an entry that comes into force on 1 January 2027."""
    kb = small_kb()
    kb.entries.append(SUBSIDY)
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(kb, "test")
    live = LiveKnowledge(sessions)
    await live.load()
    return live


def desk(sessions: Sessions, knowledge: LiveKnowledge, zone: str, now: list[datetime]) -> Dialogue:
    return Dialogue(sessions, knowledge, clock=lambda: now[0], zone=ZoneInfo(zone))


@pytest.mark.parametrize(("zone", "day"), ZONES)
async def test_status_shows_the_day_a_case_was_opened_and_answered_on_the_desks_calendar(
    sessions: Sessions, knowledge: LiveKnowledge, zone: str, day: str
) -> None:
    now = [NEW_YEARS_EVE]
    dialogue = desk(sessions, knowledge, zone, now)
    await open_case_by_dialogue(dialogue)
    listed = await dialogue.handle(said("/status"))
    assert f"({day})" in listed[0].text
    async with sessions.begin() as session:
        [case] = await CaseRepository(session).of_citizen(1)
        await CaseRepository(session).reply(case.id, case.department, "Your refund is on its way.",
                                            NEW_YEARS_EVE + timedelta(minutes=10))
    shown = await dialogue.handle(said(payload=button(listed, "case:show:")))
    assert f"Opened: {day}" in shown[0].text
    assert f"Latest reply ({day})" in shown[0].text


@pytest.mark.parametrize(("zone", "day"), ZONES)
async def test_the_mydata_file_is_named_after_the_desks_date(
    sessions: Sessions, knowledge: LiveKnowledge, zone: str, day: str
) -> None:
    dialogue = desk(sessions, knowledge, zone, [NEW_YEARS_EVE])
    [reply] = await dialogue.handle(said("/mydata"))
    assert reply.document is not None
    assert reply.document.filename.endswith(f"-{day.replace('-', '')}.json")


@pytest.mark.parametrize(("zone", "in_force"), [("Asia/Shanghai", True), ("UTC", False)])
async def test_an_entry_comes_into_force_at_the_desks_midnight(
    sessions: Sessions, knowledge: LiveKnowledge, zone: str, in_force: bool
) -> None:
    dialogue = desk(sessions, knowledge, zone, [MIDNIGHT_IN_SHANGHAI])
    replies = await dialogue.handle(said("How do I apply for the 2027 childcare subsidy?"))
    assert (replies[0].kind == "answer") is in_force
    assert ("at any tax office" in replies[0].text) is in_force
    listed = await dialogue.handle(said(payload="cat:tax:1"))
    assert (f"show:{SUBSIDY.id}" in payloads(listed)) is in_force
    shown = await dialogue.handle(said(payload=f"show:{SUBSIDY.id}"))
    assert (shown[0].kind == "expired") is not in_force


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [("Asia/Shanghai", "TA-2027-000001", "TA-2027-000002"), ("UTC", "TA-2026-000001", "TA-2027-000001")],
)
async def test_the_ticket_number_takes_the_year_of_the_desks_calendar(
    sessions: Sessions, knowledge: LiveKnowledge, zone: str, before: str, after: str
) -> None:
    now = [NEW_YEARS_EVE - timedelta(hours=1)]  # 06:30 on 1 January in Shanghai, 22:30 on 31 December in UTC
    dialogue = desk(sessions, knowledge, zone, now)
    assert before in await open_case_by_dialogue(dialogue)
    now[0] = NEW_YEARS_EVE + timedelta(hours=1)  # New Year in UTC as well
    assert after in await open_case_by_dialogue(dialogue)
