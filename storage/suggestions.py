"""Suggested alternative phrasings: questions whose askers picked an entry from "did you mean".

Staff accept a suggestion into the entry as a new revision (running bots pick it up through
LiveKnowledge.refresh) or reject it; a rejected phrasing keeps counting but is not offered again.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, TextClause, UniqueConstraint, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.entry import Entry
from knowledge.formats import phrase_fits_csv
from knowledge.normalise import guess_language, normalise
from storage import db
from storage.knowledge import KnowledgeRepository
from storage.models import Base, Question, utcnow
from storage.questions import QuestionRepository, chose_an_entry

MAX_PHRASING_CHARS = 200
"""Longer questions are not taken as phrasings: an alternative phrasing is a short question."""
MIN_PHRASING_UNITS = 2
"""Letters, digits or ideographs a phrasing needs at least (emoji-only text is not a phrasing)."""


class SuggestionStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Outcome(enum.StrEnum):
    """What ``accept`` or ``reject`` did with one suggestion."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ALREADY_KNOWN = "already_known"
    """Accepted, but the entry already had this phrasing: no new revision."""
    NOT_FOUND = "not_found"
    NOT_PENDING = "not_pending"
    ENTRY_GONE = "entry_gone"


class SuggestionRow(Base):
    """A phrasing citizens used for an entry, counted each time one of them chose the entry for it."""

    __tablename__ = "suggestions"
    __table_args__ = (UniqueConstraint("entry_id", "language", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(200), index=True)
    language: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(String(MAX_PHRASING_CHARS))
    """The question as asked, tidied for display and for the entry's alternatives."""
    key: Mapped[str] = mapped_column(String(MAX_PHRASING_CHARS))
    """The normalised text: phrasings that differ only in case, width or punctuation are one suggestion."""
    times_chosen: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(10), index=True, default=SuggestionStatus.PENDING.value)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Suggestion:
    id: int
    entry_id: str
    language: str
    text: str
    times_chosen: int
    status: str
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class Decision:
    """What became of one suggestion id, with the suggestion as it now stands (None: no such id)."""

    suggestion_id: int
    outcome: Outcome
    suggestion: Suggestion | None = None


def phrasing(text: str) -> str | None:
    """The display form of a question as a phrasing, or None when it cannot be one.

    Unicode NFKC, one space between words, no pipe standing alone (the knowledge base's CSV separates
    phrasings with " | ", and could not hold the entry), no trailing sentence punctuation; at least
    :data:`MIN_PHRASING_UNITS` letters, digits or ideographs and at most :data:`MAX_PHRASING_CHARS`.
    """
    words = (word for word in unicodedata.normalize("NFKC", text).split() if word != "|")
    tidy = " ".join(words).rstrip("?？!！.。,，;；…~～ ")
    units = sum(1 for ch in tidy if ch.isalnum())
    if units < MIN_PHRASING_UNITS or len(tidy) > MAX_PHRASING_CHARS or not phrase_fits_csv(tidy):
        return None
    return tidy


class SuggestionRepository:
    """Suggested phrasings within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_pick(self, question: str, entry_id: str, *, now: datetime | None = None) -> int | None:
        """Count ``question`` as a phrasing of ``entry_id``; the suggestion's id, or None: not a phrasing."""
        keyed = _keyed(question)
        if keyed is None:
            return None
        values = _pick_values(keyed) | {"entry_id": entry_id, "now": now or utcnow()}
        # One statement whoever else records the same phrasing at once: the unique constraint decides.
        return int((await self.session.execute(_COUNT_PICK, values)).scalar_one())

    async def record_first_pick(self, question_id: int, question: str, entry_id: str, *, citizen_id: int,
                                now: datetime | None = None) -> int:
        """A citizen's first pick from "did you mean": the question's choice, ``question`` counted as a
        phrasing of ``entry_id``, and the answer shown (its id); one statement on PostgreSQL, where they
        were three round trips."""
        at = now or utcnow()
        if not db.shared(self.session):
            questions = QuestionRepository(self.session)
            await questions.choose(question_id, entry_id)
            await self.record_pick(question, entry_id, now=at)
            return await questions.record_answer(citizen_id, entry_id, how="picked", question_id=question_id,
                                                 now=at)
        keyed = _keyed(question)
        values = {"entry_id": entry_id, "question_id": question_id, "user_id": citizen_id, "now": at}
        if keyed is not None:
            values |= _pick_values(keyed)
        return int((await self.session.execute(_FIRST_PICK[keyed is not None], values)).scalar_one())

    async def withdraw_picks(self, citizen_id: int) -> int:
        """Take a citizen's picks back from suggestions (erasure): a phrasing only they chose goes, pending or
        rejected (a rejected one still holds their words).

        Accepted phrasings are staff's knowledge-base text by then and stay.
        """
        picked = await self.session.scalars(
            select(Question).where(Question.user_id == citizen_id, chose_an_entry())
        )
        withdrawn = 0
        for question in picked:
            keyed = _keyed(question.text)
            row = await self._find(str(question.chosen_entry_id), *keyed[:2]) if keyed else None
            if row is None or row.status == SuggestionStatus.ACCEPTED:
                continue
            row.times_chosen -= 1
            if row.times_chosen <= 0:
                await self.session.delete(row)
            withdrawn += 1
        return withdrawn

    async def listing(self, status: SuggestionStatus | None = SuggestionStatus.PENDING) -> list[Suggestion]:
        """Suggestions (of one status, or all), most chosen first."""
        statement = select(SuggestionRow).order_by(
            SuggestionRow.times_chosen.desc(), SuggestionRow.last_seen_at.desc(), SuggestionRow.id
        )
        if status is not None:
            statement = statement.where(SuggestionRow.status == status.value)
        return [_suggestion(row) for row in await self.session.scalars(statement)]

    async def accept(self, suggestion_id: int, *, now: datetime | None = None) -> Decision:
        """Append the phrasing to the entry's alternatives as a new revision (source ``suggestion:<id>``)."""
        row = await self.session.get(SuggestionRow, suggestion_id, with_for_update=True)
        if row is None or row.status != SuggestionStatus.PENDING:
            return _refused(suggestion_id, row)
        knowledge = KnowledgeRepository(self.session)
        # Locked: another accept for this entry meanwhile would otherwise write over this phrasing.
        entry = await knowledge.entry(row.entry_id, for_update=True)
        if entry is None:
            return Decision(suggestion_id, Outcome.ENTRY_GONE, _suggestion(row))
        outcome = Outcome.ALREADY_KNOWN
        if not _has_phrasing(entry, row.key):
            alternatives = {
                **entry.alternatives,
                row.language: [*entry.alternatives.get(row.language, []), row.text],
            }
            await knowledge.save_entry(
                entry.replace(alternatives=alternatives), source=f"suggestion:{row.id}"
            )
            outcome = Outcome.ACCEPTED
        row.status, row.decided_at = SuggestionStatus.ACCEPTED.value, now or utcnow()
        return Decision(suggestion_id, outcome, _suggestion(row))

    async def reject(self, suggestion_id: int, *, now: datetime | None = None) -> Decision:
        """Mark a pending suggestion rejected; it is no longer listed as pending."""
        row = await self.session.get(SuggestionRow, suggestion_id, with_for_update=True)
        if row is None or row.status != SuggestionStatus.PENDING:
            return _refused(suggestion_id, row)
        row.status, row.decided_at = SuggestionStatus.REJECTED.value, now or utcnow()
        return Decision(suggestion_id, Outcome.REJECTED, _suggestion(row))

    async def _find(self, entry_id: str, language: str, key: str) -> SuggestionRow | None:
        # scalars().first(), not scalar(): with a return context mypy picks scalar()'s untyped overload.
        rows = await self.session.scalars(
            select(SuggestionRow)
            .where(
                SuggestionRow.entry_id == entry_id,
                SuggestionRow.language == language,
                SuggestionRow.key == key,
            )
            .with_for_update()
        )
        return rows.first()


_UPSERT_PICK = (
    "INSERT INTO suggestions "
    "(entry_id, language, text, key, times_chosen, status, first_seen_at, last_seen_at) "
    "VALUES (:entry_id, :language, :text, :key, 1, :pending, :now, :now) "
    "ON CONFLICT (entry_id, language, key) "
    "DO UPDATE SET times_chosen = suggestions.times_chosen + 1, last_seen_at = excluded.last_seen_at"
)
_NOW = bindparam("now", type_=SuggestionRow.__table__.c.last_seen_at.type)
_COUNT_PICK = text(f"{_UPSERT_PICK} RETURNING id").bindparams(_NOW)
"""Written out, as the citizens' insert: SQLAlchemy does not cache its dialects' upserts."""
_CHOOSE = "chose AS (UPDATE questions SET chosen_entry_id = :entry_id WHERE id = :question_id)"
_SHOWN = ("INSERT INTO answers (user_id, question_id, entry_id, how, created_at) "
          "VALUES (:user_id, :question_id, :entry_id, 'picked', :now) RETURNING id")


def _first_pick(counted: bool) -> TextClause:
    ctes = [_CHOOSE, f"counted AS ({_UPSERT_PICK})"] if counted else [_CHOOSE]
    return text(f"WITH {', '.join(ctes)} {_SHOWN}").bindparams(
        _NOW, bindparam("question_id", type_=Integer()), bindparam("user_id", type_=Integer()))


_FIRST_PICK = {counted: _first_pick(counted) for counted in (False, True)}
"""PostgreSQL: a first pick's choice, phrasing (when the question is one) and answer, in one round trip."""


def _pick_values(keyed: tuple[str, str, str]) -> dict[str, str]:
    language, key, tidy = keyed
    return {"language": language, "text": tidy, "key": key, "pending": SuggestionStatus.PENDING.value}


def _keyed(question: str) -> tuple[str, str, str] | None:
    """(language, key, text) of a question as a phrasing, or None when it cannot be one."""
    text = phrasing(question)
    return None if text is None else (guess_language(text), normalise(text)[:MAX_PHRASING_CHARS], text)


def _has_phrasing(entry: Entry, key: str) -> bool:
    known = [*entry.question.values(), *(text for texts in entry.alternatives.values() for text in texts)]
    return any(normalise(text) == key for text in known)


def _refused(suggestion_id: int, row: SuggestionRow | None) -> Decision:
    if row is None:
        return Decision(suggestion_id, Outcome.NOT_FOUND)
    return Decision(suggestion_id, Outcome.NOT_PENDING, _suggestion(row))


def _suggestion(row: SuggestionRow) -> Suggestion:
    return Suggestion(
        row.id,
        row.entry_id,
        row.language,
        row.text,
        row.times_chosen,
        row.status,
        row.first_seen_at,
        row.last_seen_at,
    )
