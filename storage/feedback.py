"""What citizens tell us about the service, and the queries behind the staff's feedback reports."""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, Select, String, case, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.clustering import Asked
from storage.citizens import for_storage
from storage.models import Answer, Base, KbEntry, Question, utcnow
from storage.questions import chose_an_entry

MAX_FEEDBACK_CHARS = 2000
"""Comments are kept up to this length; the citizen is told when theirs was cut."""
EXAMPLES_PER_ENTRY = 3


class FeedbackKind(enum.StrEnum):
    MISSING = "missing"
    """The reply to "what was missing?" after an answer was rated not helpful."""
    COMMENT = "comment"
    COMPLAINT = "complaint"


class Feedback(Base):
    """A citizen's comment or complaint about the service, or what an answer was missing."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("answers.id", ondelete="SET NULL"))
    entry_id: Mapped[str | None] = mapped_column(String(200), index=True)
    text: Mapped[str] = mapped_column(String(MAX_FEEDBACK_CHARS))
    language: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True)
class SavedFeedback:
    id: int
    cut: bool
    """True when the text was longer than :data:`MAX_FEEDBACK_CHARS` and was cut."""


@dataclass(frozen=True)
class FeedbackItem:
    """One stored comment, complaint or "what was missing" reply."""

    id: int
    kind: str
    text: str
    language: str
    entry_id: str | None
    created_at: datetime


@dataclass
class EntryFeedback:
    """How one entry did as an answer: times shown, ratings and what citizens said was missing."""

    entry_id: str
    question: str = ""
    shown: int = 0
    helpful: int = 0
    not_helpful: int = 0
    comments: int = 0
    examples: list[str] = field(default_factory=list)
    """The latest "what was missing" replies, newest first."""
    deleted: bool = False
    """The entry is no longer in the knowledge base (its question is its last one)."""

    @property
    def rated(self) -> int:
        return self.helpful + self.not_helpful

    @property
    def helpful_rate(self) -> float | None:
        """Share of ratings that were helpful; None when nobody rated the entry."""
        return self.helpful / self.rated if self.rated else None

    def worst_first(self) -> tuple[bool, float, int, int, str]:
        """Sort key: lowest helpful rate first, unrated entries last, then most not-helpful, most shown."""
        rate = self.helpful_rate
        return (rate is None, rate or 0.0, -self.not_helpful, -self.shown, self.entry_id)


class FeedbackRepository:
    """Feedback and the report queries, within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        citizen_id: int | None,
        kind: FeedbackKind,
        text: str,
        *,
        language: str,
        answer_id: int | None = None,
        now: datetime | None = None,
    ) -> SavedFeedback:
        """Store feedback in its stored form; an answer that no longer exists is simply not linked."""
        stored = for_storage(text)
        cut = len(stored) > MAX_FEEDBACK_CHARS or len(stored) < len(text)
        answer = await self.session.get(Answer, answer_id) if answer_id is not None else None
        row = Feedback(
            user_id=citizen_id,
            kind=kind.value,
            answer_id=answer.id if answer else None,
            entry_id=answer.entry_id if answer else None,
            text=stored[:MAX_FEEDBACK_CHARS],
            language=language,
            created_at=now or utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        return SavedFeedback(row.id, cut)

    async def items(
        self, since: datetime, kinds: tuple[FeedbackKind, ...] = tuple(FeedbackKind), limit: int = 100
    ) -> list[FeedbackItem]:
        """Feedback of the given kinds since ``since``, newest first; texts retention emptied are left out."""
        rows = await self.session.scalars(
            select(Feedback)
            .where(Feedback.created_at >= since, Feedback.kind.in_([k.value for k in kinds]),
                   Feedback.text != "")
            .order_by(Feedback.created_at.desc(), Feedback.id.desc())
            .limit(limit)
        )
        return [FeedbackItem(r.id, r.kind, r.text, r.language, r.entry_id, r.created_at) for r in rows]

    async def count(self, since: datetime, kind: FeedbackKind) -> int:
        statement = select(func.count(Feedback.id)).where(
            Feedback.created_at >= since, Feedback.kind == kind.value
        )
        return int(await self.session.scalar(statement) or 0)

    async def unanswered(self, since: datetime) -> list[Asked]:
        """Questions since ``since`` with no answer: nothing good, or "did you mean" with no entry chosen."""
        not_chosen = not_(chose_an_entry())
        rows = await self.session.scalars(
            select(Question)
            .where(
                Question.created_at >= since,
                or_(Question.decision == "none", (Question.decision == "clarify") & not_chosen),
            )
            .order_by(Question.id)
        )
        return [_asked(row) for row in rows]

    async def entry_feedback(self, since: datetime) -> list[EntryFeedback]:
        """Per entry shown or commented on since ``since``: the figures, worst helpful rate first."""
        report: dict[str, EntryFeedback] = {}
        for entry_id, shown, helpful, not_helpful in await self.session.execute(_answer_counts(since)):
            report[entry_id] = EntryFeedback(
                entry_id, shown=int(shown), helpful=int(helpful or 0), not_helpful=int(not_helpful or 0)
            )
        for entry_id, replies in await self.session.execute(_missing_counts(since)):
            if entry_id:
                report.setdefault(entry_id, EntryFeedback(entry_id)).comments = int(replies)
        missing = await self.items(since, (FeedbackKind.MISSING,), limit=100_000)
        texts: dict[str, list[str]] = defaultdict(list)
        for item in missing:
            if item.entry_id:
                texts[item.entry_id].append(item.text)
        for entry_id, said in texts.items():
            report.setdefault(entry_id, EntryFeedback(entry_id)).examples = said[:EXAMPLES_PER_ENTRY]
        await self._add_questions(report)
        return sorted(report.values(), key=EntryFeedback.worst_first)

    async def _add_questions(self, report: dict[str, EntryFeedback]) -> None:
        if not report:
            return
        rows = {row.id: row for row in
                await self.session.scalars(select(KbEntry).where(KbEntry.id.in_(list(report))))}
        for entry_id, figures in report.items():
            row = rows.get(entry_id)
            question: dict[str, Any] = row.data.get("question", {}) if row else {}
            figures.question = question.get("en") or next(iter(question.values()), "")
            figures.deleted = row is None or row.deleted


def _answer_counts(since: datetime) -> Select[tuple[str, int, int, int]]:
    helpful = func.sum(case((Answer.rating == "helpful", 1), else_=0))
    not_helpful = func.sum(case((Answer.rating == "not_helpful", 1), else_=0))
    return (
        select(Answer.entry_id, func.count(Answer.id), helpful, not_helpful)
        .where(Answer.created_at >= since)
        .group_by(Answer.entry_id)
    )


def _missing_counts(since: datetime) -> Select[tuple[str | None, int]]:
    """"What was missing" replies per entry, those whose words erasure or retention removed included."""
    return (
        select(Feedback.entry_id, func.count(Feedback.id))
        .where(Feedback.created_at >= since, Feedback.kind == FeedbackKind.MISSING.value)
        .group_by(Feedback.entry_id)
    )


def _asked(row: Question) -> Asked:
    best = row.candidates[0] if row.candidates else None
    return Asked(
        text=row.text,
        normalised=row.normalised,
        citizen_id=row.user_id,
        nearest=str(best["entry_id"]) if best and best.get("entry_id") else None,
        nearest_score=float(best["score"]) if best and best.get("score") is not None else None,
    )
