"""Questions and the answers shown for them, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.citizens import CitizenRepository
from storage.models import Answer, Question
from storage.questions import NewQuestion, QuestionRepository
from tests.conftest import statements

NOW = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
ASKED = NewQuestion(
    "how do I renew my passport?", normalised="renew passport", language="en", decision="answer",
    reason="confident", candidates=[{"entry_id": "passport", "score": 0.9}], signals={"wratio": 0.9},
)


async def test_a_matched_question_and_its_answer_are_recorded_together_and_linked(
        engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        me = await CitizenRepository(session).get_or_create("test", "1", now=NOW)
        other = await QuestionRepository(session).record_question(me.id, ASKED, now=NOW)
        with statements(engine) as sent:
            question_id, answer_id = await QuestionRepository(session).record_matched(
                me.id, ASKED, "passport", 0.9, now=NOW)
    async with sessions() as session:
        question = await session.get(Question, question_id)
        answer = (await session.execute(select(Answer).where(Answer.id == answer_id))).scalar_one()
    assert question is not None
    assert question_id != other
    assert (question.user_id, question.text, question.candidates, question.signals, question.created_at) == (
        me.id, "how do I renew my passport?", ASKED.candidates, ASKED.signals, NOW)
    shown = (answer.user_id, answer.question_id, answer.entry_id, answer.how, answer.score, answer.created_at)
    assert shown == (me.id, question_id, "passport", "matched", 0.9, NOW)
    assert len(sent) == (1 if engine.dialect.name == "postgresql" else 2)
