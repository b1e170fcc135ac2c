"""Transparency figures: aggregates only, and nothing computed from fewer than five people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.cases import CaseRepository, CaseStatus, NewCase
from storage.citizens import CitizenRepository
from storage.questions import NewQuestion, QuestionRepository
from storage.transparency import CaseRow, case_figures, figure, public_stats
from tests.escalation.conftest import Dept

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def test_a_figure_from_four_people_is_suppressed_from_five_shown() -> None:
    assert figure(3.0, 4) == {"value": None, "suppressed": True}
    assert figure(3.0, 5) == {"value": 3.0, "suppressed": False}
    assert figure(None, 50) == {"value": None, "suppressed": True}


def row(
    citizen: int, department: str = "TAX", reply_hours: float | None = 2.0, rating: int | None = 4
) -> CaseRow:
    replied = NOW + timedelta(hours=reply_hours) if reply_hours is not None else None
    return CaseRow(citizen, department, NOW, replied, rating)


def test_case_figures_per_department_with_medians_and_means() -> None:
    rows = [row(n, reply_hours=float(n), rating=n % 5 + 1) for n in range(1, 8)] + [row(9, "LAND")]
    figures = case_figures(rows)
    assert figures["median_hours_to_first_reply"] == {"value": 3.5, "suppressed": False}
    assert figures["cases_per_department"]["TAX"]["cases"] == {"value": 7, "suppressed": False}
    assert figures["cases_per_department"]["TAX"]["median_hours_to_first_reply"]["suppressed"] is True, (
        "beside the overall median, TAX's would tell about LAND's one case"
    )
    assert figures["cases_per_department"]["LAND"]["cases"] == {"value": None, "suppressed": True}
    assert figures["satisfaction"]["suppressed"] is False


def test_many_cases_of_few_people_are_still_suppressed() -> None:
    rows = [row(n % 4) for n in range(40)]
    figures = case_figures(rows)
    assert figures["cases_per_department"]["TAX"]["cases"]["suppressed"] is True
    assert figures["satisfaction"]["suppressed"] is True


@given(
    st.lists(st.tuples(st.integers(1, 12), st.sampled_from(["TAX", "LAND"]), st.none() | st.integers(1, 5)))
)
def test_no_shown_figure_comes_from_fewer_than_five_people(cases: list[tuple[int, str, int | None]]) -> None:
    rows = [row(citizen, department, rating=rating) for citizen, department, rating in cases]
    figures = case_figures(rows)
    for code, values in figures["cases_per_department"].items():
        people = {r.citizen_id for r in rows if r.department == code}
        assert values["cases"]["suppressed"] is (len(people) < 5)
    raters = {r.citizen_id for r in rows if r.satisfaction is not None}
    assert figures["satisfaction"]["suppressed"] is (len(raters) < 5)
    withheld = [code for code, values in figures["cases_per_department"].items()
                if values["satisfaction"]["suppressed"]]  # fmt: skip
    behind = {r.citizen_id for r in rows if r.department in withheld and r.satisfaction is not None}
    assert figures["satisfaction"]["suppressed"] or not 0 < len(behind) < 5, "overall less shown departments"


async def test_public_stats_from_the_database(sessions: Sessions, departments: dict[str, Dept]) -> None:
    async with sessions.begin() as session:
        for n in range(6):
            me = await CitizenRepository(session).get_or_create("test", str(n), now=NOW)
            await QuestionRepository(session).record_question(
                me.id, NewQuestion(
                    "q", normalised="q", language="en", decision="answer" if n else "none", reason="r",
                    candidates=[], signals={}
                ), now=NOW,
            )
            department = "TAX" if n < 5 else "TRANSPORT"
            case = await CaseRepository(session).open_case(
                NewCase(me.id, "test", str(n), "en", department, "help"), NOW
            )
            await CaseRepository(session).reply(case.id, department, "ok", NOW + timedelta(hours=n + 1))
            await CaseRepository(session).set_status(case.id, department, CaseStatus.RESOLVED, None, NOW)
            await CaseRepository(session).rate(case.id, me.id, 4, NOW)
    async with sessions() as session:
        stats = await public_stats(session, now=NOW + timedelta(days=10))
    assert stats["questions_asked"] == {"value": 6, "suppressed": False}
    assert stats["answer_rate"]["value"] == 83.3
    assert stats["satisfaction"] == {"value": 4.0, "suppressed": False, "scale": "1-5"}
    assert stats["median_hours_to_first_reply"] == {"value": 3.5, "suppressed": False}
    by_code = {d["department"]: d for d in stats["cases_per_department"]}
    assert by_code["TAX"]["cases"] == {"value": 5, "suppressed": False}
    assert by_code["TAX"]["name"]["en"] == "Tax Bureau"
    assert by_code["TRANSPORT"]["cases"] == {"value": None, "suppressed": True}


def test_the_overall_figure_less_the_shown_departments_never_rests_on_fewer_than_five_people() -> None:
    """TAX's five ratings of 4 beside an overall 3.5 from six raters would give LAND's one rating away."""
    rows = [row(n, reply_hours=float(n), rating=4) for n in range(1, 6)]
    rows.append(row(6, "LAND", reply_hours=100.0, rating=1))
    rows += [row(n, "PARKS", reply_hours=1.0, rating=5) for n in range(7, 14)]
    figures = case_figures(rows)
    assert figures["satisfaction"]["suppressed"] is False
    assert figures["median_hours_to_first_reply"]["suppressed"] is False
    departments = figures["cases_per_department"]
    assert departments["LAND"]["satisfaction"]["suppressed"] is True
    assert departments["TAX"]["satisfaction"] == {"value": None, "suppressed": True}, "fewest shown raters"
    assert departments["TAX"]["median_hours_to_first_reply"] == {"value": None, "suppressed": True}
    assert departments["PARKS"]["satisfaction"] == {"value": 5.0, "suppressed": False}
    assert departments["PARKS"]["median_hours_to_first_reply"] == {"value": 1.0, "suppressed": False}
    assert departments["TAX"]["cases"] == {"value": 5, "suppressed": False}, "no total of cases is published"


def test_departments_are_left_alone_when_none_rests_on_one_to_four_people() -> None:
    rows = [row(n, rating=4) for n in range(1, 6)] + [row(n, "LAND", rating=None) for n in range(6, 8)]
    departments = case_figures(rows)["cases_per_department"]
    assert departments["TAX"]["satisfaction"] == {"value": 4.0, "suppressed": False}, "LAND has no raters"


def test_a_transferred_case_counts_for_its_department_from_the_transfer_to_its_own_reply() -> None:
    # TAX replied within the hour and passed the cases on; LAND took ten hours from the transfer. LAND was
    # shown TAX's hour, as the first reply by anyone counted under the department holding the case now.
    taken, answered = NOW + timedelta(hours=2), NOW + timedelta(hours=12)
    rows = [CaseRow(n, "LAND", NOW, NOW + timedelta(hours=1), None, taken, answered) for n in range(1, 6)]
    rows += [row(n, "TAX", reply_hours=2.0) for n in range(6, 11)]
    figures = case_figures(rows)
    departments = figures["cases_per_department"]
    assert departments["LAND"]["median_hours_to_first_reply"] == {"value": 10.0, "suppressed": False}
    assert departments["TAX"]["median_hours_to_first_reply"] == {"value": 2.0, "suppressed": False}
    # What citizens waited for a first word from any department is still the overall figure.
    assert figures["median_hours_to_first_reply"] == {"value": 1.5, "suppressed": False}


def test_a_transferred_case_not_yet_answered_by_its_new_department_has_no_reply_time_there() -> None:
    rows = [CaseRow(n, "LAND", NOW, NOW + timedelta(hours=1), None, NOW + timedelta(hours=2), None)
            for n in range(1, 6)]  # fmt: skip
    figures = case_figures(rows)
    assert figures["cases_per_department"]["LAND"]["median_hours_to_first_reply"]["suppressed"] is True
    assert figures["median_hours_to_first_reply"] == {"value": 1.0, "suppressed": False}


async def test_transfers_are_read_from_the_cases_history(
    sessions: Sessions, departments: dict[str, Dept]
) -> None:
    async with sessions.begin() as session:
        cases = CaseRepository(session)
        for n in range(5):
            me = await CitizenRepository(session).get_or_create("test", str(n), now=NOW)
            case = await cases.open_case(NewCase(me.id, "test", str(n), "en", "TAX", "help"), NOW)
            await cases.reply(case.id, "TAX", "not ours", NOW + timedelta(hours=1))
            await cases.transfer(case.id, "TAX", "TRANSPORT", None, NOW + timedelta(hours=2))
            await cases.reply(case.id, "TRANSPORT", "on it", NOW + timedelta(hours=2 + n))
    async with sessions() as session:
        stats = await public_stats(session, now=NOW + timedelta(days=10))
    by_code = {d["department"]: d for d in stats["cases_per_department"]}
    assert by_code["TRANSPORT"]["median_hours_to_first_reply"] == {"value": 2.0, "suppressed": False}
    assert stats["median_hours_to_first_reply"] == {"value": 1.0, "suppressed": False}
