"""The transparency figures: counted by month, nothing shown that rests on fewer than five people."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Answer, Question, User
from storage.stats import MIN_PEOPLE, month_starts, transparency_figures

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
"""In the month after the figures' last: only closed months are counted."""
OCTOBER = datetime(2026, 10, 15, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 2, tzinfo=UTC)


def test_months_run_back_across_the_new_year_and_end_where_the_open_month_starts() -> None:
    starts = month_starts(datetime(2026, 2, 10, tzinfo=UTC), 4)
    assert [s.strftime("%Y-%m") for s in starts] == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02"]


async def add_citizens(session: AsyncSession, count: int) -> list[int]:
    users = [User(channel="test", external_id=f"citizen-{i}") for i in range(count)]
    session.add_all(users)
    await session.flush()
    return [user.id for user in users]


def question(user_id: int, when: datetime, decision: str, chosen: str | None = None) -> Question:
    return Question(user_id=user_id, text="q", normalised="q", language="en", decision=decision, reason="r",
                    candidates=[], signals={}, chosen_entry_id=chosen, created_at=when)


async def test_figures_by_month_with_small_groups_withheld(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        people = await add_citizens(session, MIN_PEOPLE)
        for index, user_id in enumerate(people):  # October: five people, eight questions
            session.add(question(user_id, OCTOBER, "answer"))
            if index < 3:
                session.add(question(user_id, OCTOBER, "clarify", chosen="e1" if index == 0 else None))
        for user_id in people[:MIN_PEOPLE - 1]:  # November: four people only
            session.add(question(user_id, NOVEMBER, "answer"))
        for index, user_id in enumerate(people):
            session.add(Answer(user_id=user_id, entry_id="e1", how="matched",
                               rating="helpful" if index < 4 else "not_helpful", rated_at=OCTOBER,
                               created_at=OCTOBER))
        session.add(Answer(user_id=people[0], entry_id="e1", how="matched", rating=None, created_at=OCTOBER))
    async with sessions() as session:
        figures = await transparency_figures(session, now=NOW)
    asked, answered, helpful = figures.series
    assert [p.label for p in asked.points] == [f"2026-{month:02d}" for month in range(6, 12)]
    assert asked.points[-1].value is None, "four people are too few to show"
    assert answered.points[-1].value is None
    assert asked.points[-2].value == 8
    assert answered.points[-2].value == 75.0
    assert helpful.points[-2].value == 80.0
    assert all(p.value is None for p in asked.points[:-2]), "no questions at all is withheld, not zero"
    assert asked.total.value is None, "less October's 8, the total would give November's 4 away"
    assert answered.total.value is None
    assert helpful.total.value == 80.0  # every rating came in October: nothing to give away
    assert figures.since == datetime(2026, 6, 1, tzinfo=UTC)
    assert figures.until == datetime(2026, 12, 1, tzinfo=UTC)


async def test_no_total_is_shown_while_a_month_of_the_window_rests_on_one_to_four_people(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    september, october = datetime(2026, 9, 15, tzinfo=UTC), OCTOBER
    async with sessions.begin() as session:
        people = await add_citizens(session, 12)
        for user_id in people[:6]:  # September: six people
            session.add(question(user_id, september, "answer"))
        for user_id in people[6:11]:  # October: five
            session.add(question(user_id, october, "answer"))
        session.add(question(people[11], NOVEMBER, "none"))  # November: one, who got no answer
    async with sessions() as session:
        figures = await transparency_figures(session, now=NOW)
    asked, answered, _ = figures.series
    shown = {p.label: p.value for p in asked.points if p.value is not None}
    assert shown == {"2026-09": 6, "2026-10": 5}
    assert asked.total.value is None, "the next month's total less this one's would give November away"
    assert answered.total.value is None
    assert [p.label for p in answered.points if p.value is not None] == ["2026-09", "2026-10"]


async def test_an_empty_database_shows_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        figures = await transparency_figures(session, now=NOW)
    assert all(p.value is None for s in figures.series for p in (*s.points, s.total))


async def test_none_of_these_in_did_you_mean_is_not_counted_as_answered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        people = await add_citizens(session, MIN_PEOPLE)
        for user_id in people:  # "did you mean", and each pressed "none of these" (stored as "")
            session.add(question(user_id, OCTOBER, "clarify", chosen=""))
        session.add(question(people[0], OCTOBER, "clarify", chosen="e1"))
    async with sessions() as session:
        figures = await transparency_figures(session, now=NOW)
    _, answered, _ = figures.series
    assert answered.total.value == 100.0 / 6


async def test_months_are_the_desks_calendar_months(sessions: async_sessionmaker[AsyncSession]) -> None:
    # 17:00 UTC on 30 November is 01:00 on 1 December in Shanghai: a December question there.
    async with sessions.begin() as session:
        for user_id in await add_citizens(session, MIN_PEOPLE):
            session.add(question(user_id, datetime(2026, 11, 30, 17, tzinfo=UTC), "answer"))
    early_january = datetime(2027, 1, 5, tzinfo=UTC)
    async with sessions() as session:
        shanghai = await transparency_figures(session, now=early_january, zone=ZoneInfo("Asia/Shanghai"))
        utc = await transparency_figures(session, now=early_january)
    by_month = {p.label: p.value for p in shanghai.series[0].points}
    assert (by_month["2026-11"], by_month["2026-12"]) == (None, MIN_PEOPLE)
    by_month = {p.label: p.value for p in utc.series[0].points}
    assert (by_month["2026-11"], by_month["2026-12"]) == (MIN_PEOPLE, None)
    assert shanghai.since == datetime(2026, 6, 30, 16, tzinfo=UTC)  # midnight on 1 July in Shanghai
    assert shanghai.until == datetime(2026, 12, 31, 16, tzinfo=UTC)
