"""`govbot chat`: a case opened in the terminal gets the department's replies there, before each prompt."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.console import CHANNEL, CHAT_ID, ConsoleNotices, chat
from handlers.dialogue import Dialogue
from handlers.i18n import t
from storage.cases import CaseRepository, CaseStatus, NewCase
from storage.citizens import CitizenRepository
from storage.knowledge_sync import LiveKnowledge
from storage.notices import NoticeRepository
from tests.escalation.conftest import NOW, Dept

Sessions = async_sessionmaker[AsyncSession]


async def test_the_departments_replies_to_a_console_case_are_shown_before_the_prompt_and_answerable(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    async with sessions.begin() as session:
        citizen = await CitizenRepository(session).get_or_create(CHANNEL, CHAT_ID, now=NOW)
        new = NewCase(citizen.id, CHANNEL, CHAT_ID, "en", "TRANSPORT", "The 7 bus did not stop.")
        case = await CaseRepository(session).open_case(new, NOW)
        await CaseRepository(session).reply(case.id, "TRANSPORT", "The driver has been spoken to.", NOW)

    async def typed() -> AsyncIterator[str]:
        async with sessions.begin() as session:  # the department closes the case while the citizen reads
            await CaseRepository(session).set_status(case.id, "TRANSPORT", CaseStatus.RESOLVED, None, NOW)
        yield "/help"
        [five_stars] = re.findall(r"\[(\d+)\] ⭐⭐⭐⭐⭐\n", out.getvalue())
        yield five_stars  # the rating the resolved case asks for, numbered after the buttons on screen

    knowledge = LiveKnowledge(sessions)
    await knowledge.load()
    out = io.StringIO()
    notices = ConsoleNotices(sessions, out, clock=lambda: NOW)
    await chat(Dialogue(sessions, knowledge, clock=lambda: NOW), typed(), out, language="en", notices=notices)
    greeting, helped, rated, _ = out.getvalue().split("> ")
    assert "The driver has been spoken to." in greeting
    assert "resolved" in helped
    assert t("en", "csat_thanks") in rated
    async with sessions() as session:
        assert await NoticeRepository(session).pending() == []
        rated_case = await CaseRepository(session).get(case.id)
    assert rated_case is not None
    assert rated_case.satisfaction == 5
