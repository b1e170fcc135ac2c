"""The service desk's calendar (GOVBOT_TIMEZONE): what citizens read as a date is the local one, not UTC's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from storage.cases import CaseRepository
from storage.knowledge_sync import LiveKnowledge
from tests.handlers.conftest import said
from tests.handlers.test_escalation import button, open_case_by_dialogue

Sessions = async_sessionmaker[AsyncSession]
NEW_YEARS_EVE = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
"""07:30 on 1 January 2027 in Shanghai (UTC+8)."""
ZONES = [("Asia/Shanghai", "2027-01-01"), ("UTC", "2026-12-31")]


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
