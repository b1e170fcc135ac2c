"""Questions citizens asked, what the matcher decided, the answers shown and how they were rated."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.citizens import for_storage
from storage.models import Answer, Question, utcnow

_QUESTIONS = cast(Table, Question.__table__)
NONE_OF_THESE = ""
"""``chosen_entry_id`` of a question whose asker chose "none of these" in "did you mean" (NULL: no choice)."""


def chose_an_entry() -> ColumnElement[bool]:
    """The asker picked an entry from "did you mean": a choice, and not "none of these"."""
    return and_(Question.chosen_entry_id.is_not(None), Question.chosen_entry_id != NONE_OF_THESE)


_ANSWERS = cast(Table, Answer.__table__)
# Core statements, compiled once: an ORM add and flush per question cost several times the CPU.
_INSERT_QUESTION = insert(_QUESTIONS).returning(_QUESTIONS.c.id)
_INSERT_ANSWER = insert(_ANSWERS).returning(_ANSWERS.c.id)
_QUESTION = select(
    _QUESTIONS.c.id, _QUESTIONS.c.user_id, _QUESTIONS.c.text, _QUESTIONS.c.language, _QUESTIONS.c.decision,
    _QUESTIONS.c.candidates, _QUESTIONS.c.chosen_entry_id,
).where(_QUESTIONS.c.id == bindparam("question_id"))
_CHOOSE = (
    update(_QUESTIONS).where(_QUESTIONS.c.id == bindparam("question_id"))
    .values(chosen_entry_id=bindparam("chosen", type_=_QUESTIONS.c.chosen_entry_id.type))
)
_ANSWER = select(
    _ANSWERS.c.id, _ANSWERS.c.user_id, _ANSWERS.c.question_id, _ANSWERS.c.entry_id, _ANSWERS.c.rating
).where(_ANSWERS.c.id == bindparam("answer_id"))
_ANSWER_TO_RATE = _ANSWER.with_for_update()
"""Locked: two presses at once must not both see "no rating yet"."""
_RATE = (
    update(_ANSWERS).where(_ANSWERS.c.id == bindparam("answer_id"))
    .values(rating=bindparam("new_rating", type_=_ANSWERS.c.rating.type),
            rated_at=bindparam("new_rated_at", type_=_ANSWERS.c.rated_at.type))
)


class Rating(enum.StrEnum):
    HELPFUL = "helpful"
    NOT_HELPFUL = "not_helpful"


class RateResult(enum.StrEnum):
    RECORDED = "recorded"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"


@dataclass(frozen=True)
class AskedQuestion:
    """A recorded question with the candidates the citizen was offered."""

    id: int
    citizen_id: int | None
    text: str
    language: str
    decision: str
    candidates: list[dict[str, Any]]
    chosen_entry_id: str | None


@dataclass(frozen=True)
class ShownAnswer:
    id: int
    citizen_id: int | None
    question_id: int | None
    entry_id: str
    rating: str | None


class QuestionRepository:
    """Questions and answers within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_question(
        self,
        citizen_id: int | None,
        text: str,
        *,
        normalised: str,
        language: str,
        decision: str,
        reason: str,
        candidates: list[dict[str, Any]],
        signals: dict[str, Any],
        now: datetime | None = None,
    ) -> int:
        values = {
            "user_id": citizen_id,
            "text": for_storage(text),
            "normalised": for_storage(normalised),
            "language": language,
            "decision": decision,
            "reason": reason,
            "candidates": candidates,
            "signals": signals,
            "created_at": now or utcnow(),
        }
        return int((await self.session.execute(_INSERT_QUESTION, values)).scalar_one())

    async def question(self, question_id: int) -> AskedQuestion | None:
        row = (await self.session.execute(_QUESTION, {"question_id": question_id})).first()
        if row is None:
            return None
        return AskedQuestion(
            row.id, row.user_id, row.text, row.language, row.decision, list(row.candidates),
            row.chosen_entry_id,
        )

    async def choose(self, question_id: int, entry_id: str | None) -> None:
        """Remember which entry the citizen picked from "did you mean" (None: none of them)."""
        chosen = entry_id if entry_id is not None else NONE_OF_THESE
        await self.session.execute(_CHOOSE, {"question_id": question_id, "chosen": chosen})

    async def record_answer(
        self,
        citizen_id: int | None,
        entry_id: str,
        *,
        how: str,
        score: float | None = None,
        question_id: int | None = None,
        now: datetime | None = None,
    ) -> int:
        values = {
            "user_id": citizen_id,
            "question_id": question_id,
            "entry_id": entry_id,
            "how": how,
            "score": score,
            "created_at": now or utcnow(),
        }
        return int((await self.session.execute(_INSERT_ANSWER, values)).scalar_one())

    async def answer(self, answer_id: int) -> ShownAnswer | None:
        row = (await self.session.execute(_ANSWER, {"answer_id": answer_id})).first()
        if row is None:
            return None
        return ShownAnswer(row.id, row.user_id, row.question_id, row.entry_id, row.rating)

    async def rate(
        self, answer_id: int, citizen_id: int, rating: Rating, *, now: datetime | None = None
    ) -> RateResult:
        """Set the rating of an answer shown to this citizen; a second press changes it, never adds one."""
        row = (await self.session.execute(_ANSWER_TO_RATE, {"answer_id": answer_id})).first()
        if row is None:
            return RateResult.NOT_FOUND
        if row.user_id != citizen_id:
            return RateResult.NOT_YOURS
        if row.rating == rating.value:
            return RateResult.UNCHANGED
        result = RateResult.RECORDED if row.rating is None else RateResult.CHANGED
        values = {"answer_id": answer_id, "new_rating": rating.value, "new_rated_at": now or utcnow()}
        await self.session.execute(_RATE, values)
        return result
