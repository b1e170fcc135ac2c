"""Public aggregate figures for the transparency page: no personal data, nothing from fewer than 5 people."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from sqlalchemy import case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Answer, Question
from storage.questions import chose_an_entry

MIN_PEOPLE = 5
"""A figure computed from fewer distinct citizens is withheld: it could point at someone."""
MONTHS = 6


@dataclass(frozen=True)
class Point:
    """One figure: ``value`` is None when it is withheld (fewer than MIN_PEOPLE people) or undefined."""

    label: str
    value: float | None


@dataclass(frozen=True)
class Series:
    """A figure by month; ``unit`` is ``count`` or ``percent``."""

    key: str
    unit: str
    points: tuple[Point, ...]
    total: Point


@dataclass(frozen=True)
class Figures:
    """Everything the transparency page shows; any source (this module, the stats API) can fill it."""

    series: tuple[Series, ...]
    since: datetime
    until: datetime


def month_starts(now: datetime, months: int = MONTHS, zone: tzinfo = UTC) -> list[datetime]:
    """The first instants of the ``months`` closed months of ``zone``'s calendar before ``now``'s, oldest
    first, then that of ``now``'s month; each in ``zone``, so that its month is the one it starts.

    Only closed months: a month still open would change as one citizen acts, and reading it before and
    after would tell what that citizen did."""
    now = now.astimezone(zone)
    year, month = now.year, now.month
    starts = []
    for back in range(months, -1, -1):
        index = year * 12 + month - 1 - back
        starts.append(datetime(index // 12, index % 12 + 1, 1, tzinfo=zone))
    return starts


def _shown(value: float | None, people: int) -> float | None:
    return value if people >= MIN_PEOPLE else None


def small(rows: int, people: int) -> bool:
    """Whether a month's figure rests on 1 to MIN_PEOPLE - 1 people (or on rows whose people are gone)."""
    return rows > 0 and people < MIN_PEOPLE


async def _questions(session: AsyncSession, start: datetime, end: datetime) -> tuple[Point, Point, bool]:
    answered = or_(Question.decision == "answer", chose_an_entry())
    row = (
        await session.execute(
            select(
                func.count(Question.id),
                func.count(distinct(Question.user_id)),
                func.sum(case((answered, 1), else_=0)),
            ).where(Question.created_at >= start, Question.created_at < end)
        )
    ).one()
    asked, people, answered_count = int(row[0]), int(row[1]), int(row[2] or 0)
    rate = 100.0 * answered_count / asked if asked else None
    label = start.strftime("%Y-%m")
    count, share = Point(label, _shown(float(asked), people)), Point(label, _shown(rate, people))
    return count, share, small(asked, people)


@dataclass(frozen=True)
class Ratings:
    """A month's rated answers: how many, how many found helpful, and whether they rest on 1 to 4 people."""

    rated: int
    helpful: int
    few: bool

    def share(self, label: str) -> Point:
        return Point(label, None if self.few or not self.rated else 100.0 * self.helpful / self.rated)


async def _helpful(session: AsyncSession, start: datetime, end: datetime) -> Ratings:
    """The month's answers rated before it ended: a later rating would change a closed month's figure."""
    row = (
        await session.execute(
            select(
                func.count(Answer.id),
                func.count(distinct(Answer.user_id)),
                func.sum(case((Answer.rating == "helpful", 1), else_=0)),
            ).where(
                Answer.rating.is_not(None), Answer.rated_at < end, Answer.created_at >= start,
                Answer.created_at < end,
            )
        )
    ).one()
    rated, people = int(row[0]), int(row[1])
    return Ratings(rated, int(row[2] or 0), small(rated, people))


def _total(point: Point, months: list[bool]) -> Point:
    """The window's figure, withheld while any of its months rests on 1 to 4 people.

    The windows of consecutive months overlap in five months, so the difference of two totals is what
    the month leaving less the month arriving held; with the other months shown, that would give a
    withheld month away. A total over months that are each shown (or empty) tells nothing new.
    """
    return Point(point.label, None) if any(months) else point


async def transparency_figures(
    session: AsyncSession, *, now: datetime, months: int = MONTHS, zone: tzinfo = UTC
) -> Figures:
    """Questions asked, the share answered and the share of rated answers found helpful, by closed month."""
    starts = month_starts(now, months, zone)
    asked, answered, asking, ratings = [], [], [], []
    for start, end in itertools.pairwise(starts):
        count, rate, few = await _questions(session, start, end)
        asked.append(count)
        answered.append(rate)
        asking.append(few)
        ratings.append(await _helpful(session, start, end))
    total_asked, total_answered, _ = await _questions(session, starts[0], starts[-1])
    every = sum(r.rated for r in ratings), sum(r.helpful for r in ratings), any(r.few for r in ratings)
    helpful = tuple(r.share(point.label) for r, point in zip(ratings, asked, strict=True))
    return Figures(
        series=(
            Series("questions", "count", tuple(asked), _total(total_asked, asking)),
            Series("answer_rate", "percent", tuple(answered), _total(total_answered, asking)),
            Series("helpful_rate", "percent", helpful, Ratings(*every).share(total_asked.label)),
        ),
        since=starts[0].astimezone(UTC),
        until=starts[-1].astimezone(UTC),
    )
