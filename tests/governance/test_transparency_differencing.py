"""Differencing the public figures: nothing withheld comes back from totals, other windows or repeated reads.

Each attack reads ``GET /api/v1/stats``'s document as a journalist's script would, at several times, and
solves what it publishes as linear equations in the months it covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.cases import CaseRepository, CaseStatus, NewCase
from storage.citizens import CitizenRepository
from storage.models import Answer, Question, User
from storage.questions import NewQuestion, QuestionRepository
from storage.stats import month_starts
from storage.transparency import public_stats
from tests.escalation.conftest import Dept

Sessions = async_sessionmaker[AsyncSession]
Equation = tuple[frozenset[str], int]
"""The sum of these months' values is this number."""


def determined(equations: Iterable[Equation], month: str) -> bool:
    """Whether ``month``'s value follows from the equations (all values being counts, none below zero)."""
    rows: list[dict[str, Fraction]] = []
    for months, total in equations:
        if total == 0:  # counts that add up to nothing are each nothing
            rows += [{m: Fraction(1)} for m in months]
        else:
            rows.append(dict.fromkeys(months, Fraction(1)))
    pivots: list[tuple[str, dict[str, Fraction]]] = []
    for candidate in rows:
        row = _reduced(candidate, pivots)
        if row:
            pivots.append((next(iter(row)), row))
    return not _reduced({month: Fraction(1)}, pivots)


def _reduced(row: dict[str, Fraction], pivots: list[tuple[str, dict[str, Fraction]]]) -> dict[str, Fraction]:
    row = dict(row)
    for key, pivot in pivots:
        factor = row.get(key, Fraction(0)) / pivot[key]
        if factor:
            for m, value in pivot.items():
                row[m] = row.get(m, Fraction(0)) - factor * value
    return {m: value for m, value in row.items() if value}


def window(document: dict[str, Any]) -> frozenset[str]:
    return frozenset(point["month"] for point in document["monthly"]["questions"])


def question_equations(document: dict[str, Any]) -> list[Equation]:
    """Each shown month of questions asked, and the window's total."""
    shown = [(frozenset({p["month"]}), p["value"]) for p in document["monthly"]["questions"]
             if not p["suppressed"]]  # fmt: skip
    total = document["questions_asked"]
    return shown + ([(window(document), total["value"])] if not total["suppressed"] else [])


def department_equations(document: dict[str, Any], code: str) -> list[Equation]:
    """A department's cases over the window; a department not listed had none."""
    listed = {d["department"]: d["cases"] for d in document["cases_per_department"]}
    cases = listed.get(code, {"value": 0, "suppressed": False})
    return [] if cases["suppressed"] else [(window(document), cases["value"])]


def add_question(session: AsyncSession, user: User, when: datetime) -> None:
    session.add(Question(user_id=user.id, text="q", normalised="q", language="en", decision="answer",
                         reason="r", candidates=[], signals={}, created_at=when))  # fmt: skip


async def test_a_withheld_month_cannot_be_recovered_from_the_totals_of_overlapping_windows(
    sessions: Sessions,
) -> None:
    # Six people ask in every month of 2026 but June, when three people ask seven questions.
    async with sessions.begin() as session:
        for month in range(1, 13):
            users = [User(channel="test", external_id=f"{month}-{n}") for n in range(3 if month == 6 else 6)]
            session.add_all(users)
            await session.flush()
            for n, user in enumerate(users):
                for _ in range(3 if month == 6 and n == 0 else 1 + n % 2):
                    add_question(session, user, datetime(2026, month, 10, tzinfo=UTC))
    equations: list[Equation] = []
    async with sessions() as session:
        for month in range(1, 13):
            for day in (2, 28):  # twice a month, as a script run by cron would
                document = await public_stats(session, now=datetime(2026, month, day, 12, tzinfo=UTC))
                withheld = {p["month"]: p["suppressed"] for p in document["monthly"]["questions"]}
                assert withheld.get("2026-06", True), "June itself is never shown"
                equations += question_equations(document)
    assert not determined(equations, "2026-06"), "June's three people's questions follow from the totals"
    assert determined(equations, "2026-05"), "a month of six people is still shown"


async def test_a_department_month_of_one_citizen_does_not_show_between_consecutive_months(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    # Five citizens bring a case to TAX in September 2026; in October, one more: TAX went up by one.
    async with sessions.begin() as session:
        cases = CaseRepository(session)
        for n in range(6):
            opened = datetime(2026, 9 if n < 5 else 10, 3, tzinfo=UTC)
            me = await CitizenRepository(session).get_or_create("test", str(n), now=opened)
            await cases.open_case(NewCase(me.id, "test", str(n), "en", "TAX", "help"), opened)
    equations: list[Equation] = []
    async with sessions() as session:
        for now in month_starts(datetime(2027, 6, 15, tzinfo=UTC), 12):
            document = await public_stats(session, now=now + timedelta(days=14))
            equations += department_equations(document, "TAX")
    assert not determined(equations, "2026-10"), "TAX's October case of one citizen follows from two months"
    assert determined(equations, "2026-09"), "September's five citizens are still shown"


async def test_the_figures_stay_the_same_while_a_month_is_open(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    """Read before and after one citizen acts, a live figure would tell what that citizen did."""
    earlier, first_read = datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    async with sessions.begin() as session:
        cases, cases_ids, citizens = CaseRepository(session), [], []
        for n in range(7):
            me = await CitizenRepository(session).get_or_create("test", str(n), now=earlier)
            citizens.append(me.id)
            question = await QuestionRepository(session).record_question(
                me.id, NewQuestion(
                    "q", normalised="q", language="en", decision="answer", reason="r", candidates=[],
                    signals={}
                ), now=earlier,
            )
            session.add(Answer(user_id=me.id, question_id=question, entry_id="e1", how="matched",
                               rating="helpful", rated_at=earlier, created_at=earlier))  # fmt: skip
            case = await cases.open_case(NewCase(me.id, "test", str(n), "en", "TAX", "help"), earlier)
            cases_ids.append(case.id)
            if n < 6:
                await cases.reply(case.id, "TAX", "ok", earlier + timedelta(hours=n + 1))
                await cases.set_status(case.id, "TAX", CaseStatus.RESOLVED, None, earlier)
                if n < 5:
                    await cases.rate(case.id, me.id, 4, earlier)
    async with sessions() as session:
        before = await public_stats(session, now=first_read)
    acted = first_read + timedelta(days=1)
    async with sessions.begin() as session:  # citizen 5 and 6 act, and so does TAX
        cases = CaseRepository(session)
        questions = QuestionRepository(session)
        await questions.record_question(
            citizens[5], NewQuestion(
                "q", normalised="q", language="en", decision="none", reason="r", candidates=[], signals={}
            ), now=acted,
        )
        await cases.rate(cases_ids[5], citizens[5], 1, acted)
        await cases.reply(cases_ids[6], "TAX", "ok", acted)
        await cases.transfer(cases_ids[6], "TAX", "TRANSPORT", None, acted)
        await cases.open_case(NewCase(citizens[6], "test", "6", "en", "TRANSPORT", "help"), acted)
    async with sessions() as session:
        after = await public_stats(session, now=acted + timedelta(hours=1))
    assert before | {"generated_at": None} == after | {"generated_at": None}
