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
    """The first instants of the last ``months`` months of ``zone``'s calendar, oldest first, then the next
    month's; each in ``zone``, so that its month is the one it starts."""
    now = now.astimezone(zone)
    year, month = now.year, now.month
    starts = []
    for back in range(months - 1, -2, -1):
        index = year * 12 + month - 1 - back
        starts.append(datetime(index // 12, index % 12 + 1, 1, tzinfo=zone))
    return starts


def _shown(value: float | None, people: int) -> float | None:
    return value if people >= MIN_PEOPLE else None


async def _questions(session: AsyncSession, start: datetime, end: datetime) -> tuple[Point, Point, int]:
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
    return Point(label, _shown(float(asked), people)), Point(label, _shown(rate, people)), people


async def _helpful(session: AsyncSession, start: datetime, end: datetime) -> tuple[Point, int]:
    row = (
        await session.execute(
            select(
                func.count(Answer.id),
                func.count(distinct(Answer.user_id)),
                func.sum(case((Answer.rating == "helpful", 1), else_=0)),
            ).where(Answer.rating.is_not(None), Answer.created_at >= start, Answer.created_at < end)
        )
    ).one()
    rated, people, helpful = int(row[0]), int(row[1]), int(row[2] or 0)
    return Point(start.strftime("%Y-%m"), _shown(100.0 * helpful / rated if rated else None, people)), people


def _complemented(points: list[Point], people: list[int]) -> tuple[Point, ...]:
    """The months with one more withheld when the window's total would give a withheld month away.

    The total is published, so the total less the shown months is what the withheld months hold
    together. When some of them rest on 1 to 4 people, the shown month with the fewest people is
    withheld too: then that remainder always includes a month of at least MIN_PEOPLE people.
    """
    sensitive = any(0 < count < MIN_PEOPLE for count in people)
    shown = [index for index, point in enumerate(points) if point.value is not None]
    if not sensitive or not shown:
        return tuple(points)
    fewest = min(shown, key=lambda index: people[index])
    return tuple(Point(p.label, None) if index == fewest else p for index, p in enumerate(points))


async def transparency_figures(
    session: AsyncSession, *, now: datetime, months: int = MONTHS, zone: tzinfo = UTC
) -> Figures:
    """Questions asked, the share answered and the share of rated answers found helpful, by month."""
    starts = month_starts(now, months, zone)
    asked, answered, helpful = [], [], []
    asking, rating = [], []
    for start, end in itertools.pairwise(starts):
        count, rate, people = await _questions(session, start, end)
        asked.append(count)
        answered.append(rate)
        asking.append(people)
        point, raters = await _helpful(session, start, end)
        helpful.append(point)
        rating.append(raters)
    total_asked, total_answered, _ = await _questions(session, starts[0], starts[-1])
    total_helpful, _ = await _helpful(session, starts[0], starts[-1])
    return Figures(
        series=(
            Series("questions", "count", _complemented(asked, asking), total_asked),
            Series("answer_rate", "percent", _complemented(answered, asking), total_answered),
            Series("helpful_rate", "percent", _complemented(helpful, rating), total_helpful),
        ),
        since=starts[0].astimezone(UTC),
        until=starts[-1].astimezone(UTC),
    )
