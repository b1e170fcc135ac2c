"""Feedback storage and the report queries on a seeded database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, delete, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from knowledge.clustering import cluster_questions
from storage.feedback import MAX_FEEDBACK_CHARS, Feedback, FeedbackKind, FeedbackRepository
from storage.models import Answer, Base
from storage.questions import QuestionRepository
from storage.suggestions import SuggestionRow
from tests.handlers.conftest import NOW
from tests.storage.feedback_seed import MISSING, seed

Sessions = async_sessionmaker[AsyncSession]
WEEK = NOW - timedelta(days=7)
MONTH = NOW - timedelta(days=30)


@pytest.fixture
async def seeded(sessions: Sessions) -> Sessions:
    await seed(sessions, NOW)
    return sessions


async def test_unanswered_are_nothing_good_and_did_you_mean_without_a_choice(seeded: Sessions) -> None:
    async with seeded() as session:
        questions = await FeedbackRepository(session).unanswered(WEEK)
    assert [q.text for q in questions] == [
        "When does the swimming pool open?",
        "swimming pool opening hours",
        "What time does the public pool open",
        "can I bring my dog to the beach",
        "dogs allowed on beach?",
        "垃圾分类怎么做",
        "垃圾怎么分类",
        "🙂🙂🙂",
    ]
    assert (questions[0].nearest, questions[0].nearest_score) == ("id-card-renew", 0.12)
    assert questions[1].nearest is None


async def test_unanswered_questions_cluster_largest_first(seeded: Sessions) -> None:
    async with seeded() as session:
        clusters = cluster_questions(await FeedbackRepository(session).unanswered(WEEK))
    assert [(c.language, c.count, c.citizens) for c in clusters] == [("en", 3, 2), ("zh", 2, 2), ("en", 2, 1)]
    assert clusters[0].examples(1) == ["What time does the public pool open"]


async def test_entry_feedback_puts_the_worst_helpful_rate_first(seeded: Sessions) -> None:
    async with seeded() as session:
        rows = await FeedbackRepository(session).entry_feedback(MONTH)
    figures = [(r.entry_id, r.shown, r.helpful, r.not_helpful, r.helpful_rate, r.comments) for r in rows]
    assert figures == [
        ("tax-property-pay", 4, 1, 2, pytest.approx(1 / 3), 1),
        ("id-card-renew", 2, 2, 0, 1.0, 0),
        ("id-card-lost", 1, 0, 0, None, 0),
    ]
    assert rows[0].examples == [MISSING]
    assert rows[0].question == "How do I pay my property tax?"


async def test_entry_feedback_still_counts_what_was_missing_once_its_words_are_erased(
    seeded: Sessions,
) -> None:
    async with seeded.begin() as session:  # as erasure and retention do: the words go, the kind stays
        await session.execute(update(Feedback).values(text=""))
    async with seeded() as session:
        rows = await FeedbackRepository(session).entry_feedback(MONTH)
    assert (rows[0].entry_id, rows[0].comments, rows[0].examples) == ("tax-property-pay", 1, [])


async def test_entry_feedback_is_empty_before_anything_was_shown(seeded: Sessions) -> None:
    async with seeded() as session:
        assert await FeedbackRepository(session).entry_feedback(NOW + timedelta(seconds=1)) == []


async def test_comments_and_complaints_are_counted_and_listed_newest_first(seeded: Sessions) -> None:
    async with seeded() as session:
        repo = FeedbackRepository(session)
        general = (FeedbackKind.COMMENT, FeedbackKind.COMPLAINT)
        assert await repo.count(MONTH, FeedbackKind.COMMENT) == 1
        assert await repo.count(NOW - timedelta(days=41), FeedbackKind.COMMENT) == 2
        assert await repo.count(MONTH, FeedbackKind.COMPLAINT) == 1
        items = await repo.items(MONTH, general)
    assert [(i.kind, i.text, i.language) for i in items] == [
        ("complaint", "办事窗口排队太久", "zh"),
        ("comment", "Very quick, thanks", "en"),
    ]


async def test_long_text_is_cut_and_a_deleted_answer_is_not_linked(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        answer_id = await QuestionRepository(session).record_answer(None, "tax-property-pay", how="browsed")
        await session.execute(delete(Answer))
        repo = FeedbackRepository(session)
        long = await repo.add(
            None, FeedbackKind.MISSING, "é" * 5000, language="en", answer_id=answer_id, now=NOW
        )
        short = await repo.add(None, FeedbackKind.COMMENT, "fine", language="en", now=NOW)
        missing, comment = sorted(await repo.items(NOW), key=lambda item: item.id)
    assert (long.cut, short.cut) == (True, False)
    assert (missing.text, missing.entry_id) == ("é" * MAX_FEEDBACK_CHARS, None)
    assert comment.text == "fine"


MINE = {Feedback.__tablename__, SuggestionRow.__tablename__}


def _differences(connection: Connection) -> list[Any]:
    def mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return type_ != "table" or name in MINE

    context = MigrationContext.configure(
        connection,
        opts={
            "include_object": mine,
            "include_name": lambda name, type_, parent: type_ != "table" or name in MINE,
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def test_the_migration_creates_what_the_models_describe(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
