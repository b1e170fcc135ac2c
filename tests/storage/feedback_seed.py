"""A database with a week of questions, answers, ratings and comments, for the feedback reports' tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.normalise import normalise
from storage.citizens import CitizenRepository
from storage.feedback import FeedbackKind, FeedbackRepository
from storage.knowledge import KnowledgeRepository
from storage.questions import NewQuestion, QuestionRepository, Rating
from tests.handlers.conftest import small_kb

UNANSWERED = [
    # (citizen, text, decision, chosen entry, days ago, nearest candidate)
    (1, "When does the swimming pool open?", "none", None, 1, ("id-card-renew", 0.12)),
    (2, "swimming pool opening hours", "none", None, 2, None),
    (2, "What time does the public pool open", "none", None, 3, None),
    (3, "can I bring my dog to the beach", "clarify", "", 1, ("id-card-lost", 0.31)),
    (3, "dogs allowed on beach?", "clarify", None, 2, None),
    (1, "垃圾分类怎么做", "none", None, 1, None),
    (4, "垃圾怎么分类", "none", None, 2, None),
    (4, "🙂🙂🙂", "none", None, 1, None),
    (1, "how do i pay my parking fine", "none", None, 10, None),
]
"""Seven unanswered questions in three clusters this week; an emoji-only one; one from ten days ago."""
ANSWERED = [
    (1, "pay property tax", "answer", None, 1, ("tax-property-pay", 0.9)),
    (2, "identity card", "clarify", "id-card-renew", 1, ("id-card-renew", 0.83)),
]
SHOWN = [
    # (citizen, entry, rating)
    (1, "tax-property-pay", Rating.HELPFUL),
    (2, "tax-property-pay", Rating.NOT_HELPFUL),
    (3, "tax-property-pay", Rating.NOT_HELPFUL),
    (4, "tax-property-pay", None),
    (1, "id-card-renew", Rating.HELPFUL),
    (2, "id-card-renew", Rating.HELPFUL),
    (3, "id-card-lost", None),
]
MISSING = "The deadline for paying"


async def seed(sessions: async_sessionmaker[AsyncSession], now: datetime) -> None:
    """The knowledge base, four citizens and their questions, answers, ratings and comments."""
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "test")
        citizens = CitizenRepository(session)
        ids = {n: (await citizens.get_or_create("test", str(n), now=now)).id for n in range(1, 5)}
        for citizen, text, decision, chosen, days, nearest in UNANSWERED + ANSWERED:
            await _question(
                session, ids[citizen], text, decision, chosen, now - timedelta(days=days), nearest
            )
        answers = [await _answer(session, ids[c], entry, rating, now) for c, entry, rating in SHOWN]
        feedback = FeedbackRepository(session)
        await feedback.add(
            ids[2], FeedbackKind.MISSING, MISSING, language="en", answer_id=answers[1], now=now
        )
        await feedback.add(ids[1], FeedbackKind.COMMENT, "Very quick, thanks", language="en", now=now)
        await feedback.add(ids[4], FeedbackKind.COMPLAINT, "办事窗口排队太久", language="zh", now=now)
        old = now - timedelta(days=40)
        await feedback.add(ids[3], FeedbackKind.COMMENT, "An old comment", language="en", now=old)


async def _question(
    session: AsyncSession,
    citizen: int,
    text: str,
    decision: str,
    chosen: str | None,
    when: datetime,
    nearest: tuple[str, float] | None,
) -> None:
    candidates: list[dict[str, Any]] = [{"entry_id": nearest[0], "score": nearest[1]}] if nearest else []
    questions = QuestionRepository(session)
    question_id = await questions.record_question(
        citizen, NewQuestion(
            text, normalised=normalise(text), language="en", decision=decision, reason="test",
            candidates=candidates, signals={}
        ), now=when,
    )
    if chosen is not None:
        await questions.choose(question_id, chosen or None)


async def _answer(
    session: AsyncSession, citizen: int, entry_id: str, rating: Rating | None, now: datetime
) -> int:
    questions = QuestionRepository(session)
    answer_id = await questions.record_answer(citizen, entry_id, how="matched", score=0.9, now=now)
    if rating is not None:
        await questions.rate(answer_id, citizen, rating, now=now)
    return answer_id
