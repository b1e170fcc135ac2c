"""The public figures of ``GET /api/v1/stats`` and `govbot report stats`: aggregates only, small cells hidden.

The question figures (asked, answer rate, helpful rate) come from storage/stats.py, the transparency page's
source, so both show the same numbers; this module adds the case figures (cases per department, median
time to a department's first reply, satisfaction) over the same window and with the same rule: a figure
computed from fewer than MIN_PEOPLE distinct citizens is ``null`` with ``"suppressed": true``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.case_events import iso
from storage.cases import CaseChangeRecord, CaseRecord
from storage.models import Department, UTCDateTime
from storage.stats import MIN_PEOPLE, MONTHS, Figures, Point, small, transparency_figures


@dataclass(frozen=True)
class CaseRow:
    citizen_id: int | None
    department: str
    """The department holding the case at the end of the window, which it counts for."""
    created_at: datetime
    first_reply_at: datetime | None
    """The first reply by any department: what the citizen waited for."""
    satisfaction: int | None
    taken_at: datetime | None = None
    """When the department took the case over by a transfer; None: it has held it since it was opened."""
    reply_since_taken: datetime | None = None
    """Its first reply since the transfer (only the department holding a case replies to it)."""
    month: str = ""
    """The month it was opened (``2026-11``), in the service desk's calendar."""

    def citizen_wait(self) -> float | None:
        """Hours from the case to the first reply of any department."""
        return _hours(self.created_at, self.first_reply_at)

    def department_wait(self) -> float | None:
        """Hours from the case reaching its department (opened, or transferred there) to that one's reply."""
        if self.taken_at is None:
            return self.citizen_wait()
        return _hours(self.taken_at, self.reply_since_taken)


def _hours(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() / 3600 if end is not None else None


def figure(value: float | None, people: int, *, digits: int = 1) -> dict[str, Any]:
    """``{"value": …, "suppressed": false}``, or ``null`` and ``true`` when fewer than MIN_PEOPLE people."""
    if people < MIN_PEOPLE or value is None:
        return {"value": None, "suppressed": True}
    return {"value": round(value, digits) if isinstance(value, float) else value, "suppressed": False}


def case_figures(rows: Iterable[CaseRow]) -> dict[str, Any]:
    """Satisfaction, median hours to the first reply and cases per department, from case rows (pure)."""
    rows = list(rows)
    by_department: dict[str, list[CaseRow]] = defaultdict(list)
    for row in rows:
        by_department[row.department].append(row)
    departments = {
        code: {
            "cases": _figure(len(cases), cases),
            "median_hours_to_first_reply": _first_reply(cases, CaseRow.department_wait),
            "satisfaction": _satisfaction(cases),
        }
        for code, cases in sorted(by_department.items())
    }
    replied = {
        code: _people(c for c in cases if c.department_wait() is not None)
        for code, cases in by_department.items()
    }
    rated = {code: _people(c for c in cases if c.satisfaction) for code, cases in by_department.items()}
    _complement(departments, "median_hours_to_first_reply", replied)
    _complement(departments, "satisfaction", rated)
    return {
        "satisfaction": _satisfaction(rows),
        "median_hours_to_first_reply": _first_reply(rows, CaseRow.citizen_wait),
        "cases_per_department": departments,
    }


def _complement(departments: dict[str, dict[str, Any]], key: str, people: dict[str, int]) -> None:
    """Withhold one more department's ``key`` when the overall figure would give a withheld one away.

    The overall figure is published beside the departments', so together they tell what the withheld
    departments hold. When some of them are withheld though people stand behind them (1 to 4, or a
    month of 1 to 4), the shown department with the fewest people is withheld too. (No total of cases
    is published.)
    """
    if not any(values[key]["suppressed"] and people[code] > 0 for code, values in departments.items()):
        return
    shown = [code for code, values in departments.items() if not values[key]["suppressed"]]
    if shown:
        departments[min(shown, key=lambda code: people[code])][key] = figure(None, 0)


async def public_stats(
    session: AsyncSession, *, now: datetime, months: int = MONTHS, zone: tzinfo = UTC
) -> dict[str, Any]:
    """Every public figure of the ``months`` closed months of ``zone`` before ``now``'s (the page's)."""
    figures = await transparency_figures(session, now=now, months=months, zone=zone)
    return await stats_document(session, figures, now=now, zone=zone)


async def stats_document(
    session: AsyncSession, resolved: Figures, *, now: datetime, zone: tzinfo = UTC
) -> dict[str, Any]:
    """The stats document around question figures already counted: adds the case figures of their window.

    ``zone``: the calendar of the question figures' months, whose months the case figures are checked by."""
    series = {s.key: s for s in resolved.series}
    cases = case_figures(await _case_rows(session, resolved.since, resolved.until, zone))
    names = await _department_names(session)
    departments = [
        {"department": code, "name": names.get(code, {})} | values
        for code, values in cases.pop("cases_per_department").items()
    ]
    return {
        "generated_at": iso(now),
        "since": iso(resolved.since),
        "until": iso(resolved.until),
        "min_people": MIN_PEOPLE,
        "questions_asked": _point(series["questions"].total, digits=0),
        "answer_rate": _point(series["answer_rate"].total) | {"unit": "percent"},
        "helpful_rate": _point(series["helpful_rate"].total) | {"unit": "percent"},
        "satisfaction": cases["satisfaction"] | {"scale": "1-5"},
        "median_hours_to_first_reply": cases["median_hours_to_first_reply"],
        "cases_per_department": departments,
        "monthly": {
            key: [{"month": p.label} | _point(p, digits=0 if key == "questions" else 1) for p in s.points]
            for key, s in series.items()
        },
    }


def _point(point: Point, *, digits: int = 1) -> dict[str, Any]:
    """A figure of storage/stats.py: there ``None`` means withheld (or from nobody at all)."""
    if point.value is None:
        return {"value": None, "suppressed": True}
    value = round(point.value, digits) if digits else round(point.value)
    return {"value": value, "suppressed": False}


def _people(rows: Iterable[CaseRow]) -> int:
    return len({row.citizen_id for row in rows if row.citizen_id is not None})


def _figure(value: float | None, rows: list[CaseRow], *, digits: int = 1) -> dict[str, Any]:
    """:func:`figure` of the rows' people, withheld too while a month of them rests on 1 to 4 people.

    The windows of consecutive months overlap in five, so two months' figures differ by what the month
    arriving and the month leaving hold: a month's 1 to 4 people would show in the difference.
    """
    by_month: dict[str, list[CaseRow]] = defaultdict(list)
    for row in rows:
        by_month[row.month].append(row)
    few = any(small(len(month), _people(month)) for month in by_month.values())
    return figure(value, 0 if few else _people(rows), digits=digits)


def _satisfaction(rows: list[CaseRow]) -> dict[str, Any]:
    rated = [row for row in rows if row.satisfaction is not None]
    mean = statistics.fmean(row.satisfaction for row in rated if row.satisfaction) if rated else None
    return _figure(mean, rated, digits=2)


def _first_reply(rows: list[CaseRow], wait: Callable[[CaseRow], float | None]) -> dict[str, Any]:
    waited = [(row, hours) for row in rows if (hours := wait(row)) is not None]
    median = statistics.median(hours for _, hours in waited) if waited else None
    return _figure(median, [row for row, _ in waited])


async def _case_rows(session: AsyncSession, since: datetime, until: datetime, zone: tzinfo) -> list[CaseRow]:
    """The cases opened in the window as they stood at its end: what came later would move closed months."""
    transfer, later_transfer, reply, later_reply = (aliased(CaseChangeRecord) for _ in range(4))
    holder = (  # the department that handed the case on first after the window: it held it at the end
        select(later_transfer.actor)
        .where(later_transfer.case_id == CaseRecord.id, later_transfer.kind == "transferred",
               later_transfer.created_at >= until)
        .order_by(later_transfer.created_at, later_transfer.id)
        .limit(1)
        .scalar_subquery()
    )
    taken = (  # the last transfer in the window: the one to the department holding the case at its end
        select(func.max(transfer.created_at))
        .where(transfer.case_id == CaseRecord.id, transfer.kind == "transferred", transfer.created_at < until)
        .scalar_subquery()
    )
    first_reply = (
        select(func.min(reply.created_at))
        .where(reply.case_id == CaseRecord.id, reply.kind == "reply", reply.created_at < until)
        .scalar_subquery()
    )
    reply_since_taken = (
        select(func.min(later_reply.created_at))
        .where(later_reply.case_id == CaseRecord.id, later_reply.kind == "reply",
               later_reply.created_at >= taken, later_reply.created_at < until)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            CaseRecord.user_id,
            func.coalesce(holder, CaseRecord.department),
            CaseRecord.created_at,
            first_reply,
            case((CaseRecord.rated_at < until, CaseRecord.satisfaction)),
            taken,
            reply_since_taken,
        ).where(CaseRecord.created_at >= since, CaseRecord.created_at < until)
    )
    return [
        CaseRow(user_id, department, created, _aware(replied), satisfaction, _aware(took), _aware(answered),
                created.astimezone(zone).strftime("%Y-%m"))
        for user_id, department, created, replied, satisfaction, took, answered in rows.all()
    ]


async def _department_names(session: AsyncSession) -> dict[str, dict[str, str]]:
    rows = await session.execute(select(Department.code, Department.name))
    return {code: dict(name or {}) for code, name in rows.all()}


def _aware(value: Any) -> datetime | None:
    """A time from a subquery (SQLite may give text, naive): UTC-aware like the model's columns."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, None)
