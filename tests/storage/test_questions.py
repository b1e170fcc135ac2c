"""Questions and the answers shown for them, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import db
from storage.citizens import CitizenRepository
from storage.models import Answer, Question
from storage.questions import NewQuestion, QuestionRepository, RateResult, Rating
from storage.suggestions import SuggestionRepository
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


async def shown(sessions: async_sessionmaker[AsyncSession], external_id: str = "1") -> tuple[int, int]:
    """(citizen id, answer id) of an answer shown to a citizen."""
    async with sessions.begin() as session:
        me = await CitizenRepository(session).get_or_create("test", external_id, now=NOW)
        questions = QuestionRepository(session)
        _, answer_id = await questions.record_matched(me.id, ASKED, "passport", 0.9, now=NOW)
    return me.id, answer_id


async def rated(sessions: async_sessionmaker[AsyncSession], answer_id: int, citizen_id: int,
                rating: Rating) -> RateResult:
    async with sessions.begin() as session:
        return await QuestionRepository(session).rate(answer_id, citizen_id, rating, now=NOW)


async def test_rating_an_answer_records_changes_and_refuses_as_the_citizen_expects(
        engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
    me, answer_id = await shown(sessions)
    other, _ = await shown(sessions, "2")
    with statements(engine) as sent:
        assert await rated(sessions, answer_id, me, Rating.HELPFUL) is RateResult.RECORDED
    assert len([s for s in sent if "answers" in s]) == (1 if engine.dialect.name == "postgresql" else 2)
    assert await rated(sessions, answer_id, me, Rating.HELPFUL) is RateResult.UNCHANGED
    assert await rated(sessions, answer_id, other, Rating.NOT_HELPFUL) is RateResult.NOT_YOURS
    assert await rated(sessions, answer_id + 1000, me, Rating.NOT_HELPFUL) is RateResult.NOT_FOUND
    assert await rated(sessions, answer_id, me, Rating.NOT_HELPFUL) is RateResult.CHANGED
    async with sessions() as session:
        answer = await session.get(Answer, answer_id)
    assert answer is not None
    assert (answer.rating, answer.rated_at) == ("not_helpful", NOW)


@pytest.mark.postgres
async def test_two_presses_at_once_in_two_processes_record_one_rating(postgres_url: str) -> None:
    # One process takes one chat's turns one after the other; `govbot run --workers` (PostgreSQL) does not.
    engine = db.create_engine(postgres_url)
    try:
        sessions = db.sessionmaker(engine)
        me, answer_id = await shown(sessions)
        results = await asyncio.gather(*(rated(sessions, answer_id, me, Rating.HELPFUL) for _ in range(4)))
    finally:
        await engine.dispose()
    assert sorted(results) == sorted([RateResult.RECORDED] + [RateResult.UNCHANGED] * 3)


@pytest.mark.parametrize("text", ["where do I renew a passport", "x?"])  # a phrasing, and too short for one
async def test_a_first_pick_records_the_choice_the_phrasing_and_the_answer_together(
        engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], text: str) -> None:
    asked = NewQuestion(text, normalised=text, language="en", decision="clarify", reason="close",
                        candidates=[{"entry_id": "passport", "score": 0.6}], signals={})
    async with sessions.begin() as session:
        me = await CitizenRepository(session).get_or_create("test", "1", now=NOW)
        question_id = await QuestionRepository(session).record_question(me.id, asked, now=NOW)
        with statements(engine) as sent:
            answer_id = await SuggestionRepository(session).record_first_pick(
                question_id, text, "passport", citizen_id=me.id, now=NOW)
    async with sessions() as session:
        question = await session.get(Question, question_id)
        answer = await session.get(Answer, answer_id)
        listed = await SuggestionRepository(session).listing()
    suggested = [(suggestion.entry_id, suggestion.text, suggestion.times_chosen) for suggestion in listed]
    assert question is not None
    assert answer is not None
    assert question.chosen_entry_id == "passport"
    assert (answer.user_id, answer.question_id, answer.entry_id, answer.how, answer.created_at) == (
        me.id, question_id, "passport", "picked", NOW)
    assert suggested == ([("passport", text, 1)] if text != "x?" else [])
    assert len(sent) == (1 if engine.dialect.name == "postgresql" else 3 if text != "x?" else 2)
