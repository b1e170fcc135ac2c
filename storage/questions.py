"""Questions citizens asked, what the matcher decided, the answers shown and how they were rated."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Table,
    and_,
    bindparam,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage import db
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
_ASKED = (
    insert(_QUESTIONS)
    .values({column: bindparam(column, type_=_QUESTIONS.c[column].type) for column in (
        "user_id", "text", "normalised", "language", "decision", "reason", "candidates", "signals",
        "created_at")})
    .returning(_QUESTIONS.c.id).cte("asked")
)
_INSERT_MATCHED = (
    insert(_ANSWERS)
    .from_select(["user_id", "question_id", "entry_id", "how", "score", "created_at"], select(
        bindparam("user_id", type_=_ANSWERS.c.user_id.type), _ASKED.c.id,
        bindparam("entry_id", type_=_ANSWERS.c.entry_id.type), literal("matched"),
        bindparam("score", type_=_ANSWERS.c.score.type),
        bindparam("created_at", type_=_ANSWERS.c.created_at.type)))
    .add_cte(_ASKED)
    .returning(_ANSWERS.c.question_id, _ANSWERS.c.id)
)
"""PostgreSQL: a matched question and its answer, in one round trip."""
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
_RATE_LOCKED = text(
    "WITH old AS (SELECT id, user_id, rating FROM answers WHERE id = :answer_id FOR UPDATE), "
    "rated AS (UPDATE answers SET rating = :new_rating, rated_at = :new_rated_at FROM old "
    "WHERE answers.id = old.id AND old.user_id = :citizen_id AND old.rating IS DISTINCT FROM :new_rating) "
    "SELECT user_id, rating FROM old"
).bindparams(bindparam("answer_id", type_=Integer()), bindparam("citizen_id", type_=Integer()),
             bindparam("new_rating", type_=_ANSWERS.c.rating.type),
             bindparam("new_rated_at", type_=_ANSWERS.c.rated_at.type))
"""PostgreSQL: _ANSWER_TO_RATE and _RATE in one round trip; what the row was before, for the result."""


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
class NewQuestion:
    """A citizen's question as the matcher read and decided it, to be recorded."""

    text: str
    normalised: str
    language: str
    decision: str
    reason: str
    candidates: list[dict[str, Any]]
    signals: dict[str, Any]


def _question_values(citizen_id: int | None, question: NewQuestion, at: datetime) -> dict[str, Any]:
    return {
        "user_id": citizen_id,
        "text": for_storage(question.text),
        "normalised": for_storage(question.normalised),
        "language": question.language,
        "decision": question.decision,
        "reason": question.reason,
        "candidates": question.candidates,
        "signals": question.signals,
        "created_at": at,
    }


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
        self._shared = db.shared(session)

    async def record_question(
        self, citizen_id: int | None, question: NewQuestion, *, now: datetime | None = None
    ) -> int:
        values = _question_values(citizen_id, question, now or utcnow())
        return int((await self.session.execute(_INSERT_QUESTION, values)).scalar_one())

    async def record_matched(
        self, citizen_id: int | None, question: NewQuestion, entry_id: str, score: float, *,
        now: datetime | None = None,
    ) -> tuple[int, int]:
        """A question the matcher answered and the answer shown: (question id, answer id); one statement on
        PostgreSQL, where they were two round trips on most questions."""
        at = now or utcnow()
        if not self._shared:
            question_id = await self.record_question(citizen_id, question, now=at)
            return question_id, await self.record_answer(
                citizen_id, entry_id, how="matched", score=score, question_id=question_id, now=at)
        values = _question_values(citizen_id, question, at) | {"entry_id": entry_id, "score": score}
        row = (await self.session.execute(_INSERT_MATCHED, values)).one()
        return int(row.question_id), int(row.id)

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
        values = {"answer_id": answer_id, "new_rating": rating.value, "new_rated_at": now or utcnow()}
        if self._shared:  # read, locked, and written if it is to change: one round trip
            row = (await self.session.execute(_RATE_LOCKED, values | {"citizen_id": citizen_id})).first()
            return _rated(row, citizen_id, rating)
        row = (await self.session.execute(_ANSWER_TO_RATE, {"answer_id": answer_id})).first()
        result = _rated(row, citizen_id, rating)
        if result in (RateResult.RECORDED, RateResult.CHANGED):
            await self.session.execute(_RATE, values)
        return result


def _rated(row: Row[Any] | None, citizen_id: int, rating: Rating) -> RateResult:
    """What rating the answer (its ``user_id`` and ``rating`` before the press) comes to."""
    if row is None:
        return RateResult.NOT_FOUND
    if row.user_id != citizen_id:
        return RateResult.NOT_YOURS
    if row.rating == rating.value:
        return RateResult.UNCHANGED
    return RateResult.RECORDED if row.rating is None else RateResult.CHANGED
