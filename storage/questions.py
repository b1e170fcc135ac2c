"""Questions citizens asked, what the matcher decided, the answers shown and how they were rated."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.citizens import for_storage
from storage.models import Answer, Question, utcnow


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
        row = Question(
            user_id=citizen_id,
            text=for_storage(text),
            normalised=for_storage(normalised),
            language=language,
            decision=decision,
            reason=reason,
            candidates=candidates,
            signals=signals,
            created_at=now or utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def question(self, question_id: int) -> AskedQuestion | None:
        row = await self.session.get(Question, question_id)
        if row is None:
            return None
        return AskedQuestion(
            row.id, row.user_id, row.language, row.decision, list(row.candidates), row.chosen_entry_id
        )

    async def choose(self, question_id: int, entry_id: str | None) -> None:
        """Remember which entry the citizen picked from "did you mean" (None: none of them)."""
        row = await self.session.get(Question, question_id)
        if row is not None:
            row.chosen_entry_id = entry_id if entry_id is not None else ""

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
        row = Answer(
            user_id=citizen_id,
            question_id=question_id,
            entry_id=entry_id,
            how=how,
            score=score,
            created_at=now or utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def answer(self, answer_id: int) -> ShownAnswer | None:
        row = await self.session.get(Answer, answer_id)
        if row is None:
            return None
        return ShownAnswer(row.id, row.user_id, row.question_id, row.entry_id, row.rating)

    async def rate(
        self, answer_id: int, citizen_id: int, rating: Rating, *, now: datetime | None = None
    ) -> RateResult:
        """Set the rating of an answer shown to this citizen; a second press changes it, never adds one."""
        row = await self.session.get(Answer, answer_id, with_for_update=True)
        if row is None:
            return RateResult.NOT_FOUND
        if row.user_id != citizen_id:
            return RateResult.NOT_YOURS
        if row.rating == rating.value:
            return RateResult.UNCHANGED
        result = RateResult.RECORDED if row.rating is None else RateResult.CHANGED
        row.rating, row.rated_at = rating.value, now or utcnow()
        return result
