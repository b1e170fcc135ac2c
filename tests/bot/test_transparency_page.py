"""The transparency page shows the stats API's case figures: by department, withheld under five people."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.config import load_settings
from bot.keys import ENGINE
from bot.web.transparency import PUBLIC, CaseFigures, DepartmentCases, PublicFigures, case_part, render_page
from storage.cases import CaseRepository, CaseStatus, NewCase
from storage.citizens import CitizenRepository
from storage.departments import DepartmentRepository
from storage.models import utcnow
from storage.stats import Figures, transparency_figures
from tests.conftest import statements

Sessions = async_sessionmaker[AsyncSession]
Client = TestClient[web.Request, web.Application]
Page = Callable[[str], Awaitable[str]]
HOSTILE = "Tax & <script>x</script> Bureau"
WITHHELD_EN = "fewer than 5 people — not shown"
WITHHELD_ZH = "少于 5 人，不予显示"


async def seed(sessions: Sessions, *, revenue_citizens: int, parks_citizens: int = 2) -> None:
    """REVENUE and PARKS cases of a closed month, each from its own citizen, replied after n minutes."""
    now = utcnow() - timedelta(days=40)
    async with sessions.begin() as session:
        departments = DepartmentRepository(session)
        await departments.add("REVENUE", {"en": HOSTILE, "zh": "税务局"}, ticket_prefix="RV", now=now)
        await departments.add("PARKS", {"en": "Parks", "zh": "公园管理处"}, ticket_prefix="PK", now=now)
        cases = CaseRepository(session)
        plan = ["REVENUE"] * revenue_citizens + ["PARKS"] * parks_citizens
        for n, department in enumerate(plan):
            me = await CitizenRepository(session).get_or_create("test", str(n), now=now)
            case = await cases.open_case(NewCase(me.id, "test", str(n), "en", department, "help"), now)
            await cases.reply(case.id, department, "ok", now + timedelta(minutes=n + 1))
            await cases.set_status(case.id, department, CaseStatus.RESOLVED, None, now)
            await cases.rate(case.id, me.id, 4, now)


@pytest.fixture
async def page(database_url: str, sessions: Sessions) -> AsyncIterator[Page]:
    """GET /transparency?lang=… from govbot serving the test database."""
    client = Client(TestServer(create_app(load_settings(database_url=database_url))))
    await client.start_server()

    async def get(lang: str) -> str:
        response = await client.get("/transparency", params={"lang": lang})
        assert response.status == 200
        return await response.text()

    yield get
    await client.close()


def department_row(page: str, name: str) -> str:
    found = re.search(rf'<tr><th scope="row">{re.escape(name)}</th><td>([^<]*)</td></tr>', page)
    assert found is not None, f"no table row for {name}"
    return found.group(1)


def department_bars(page: str) -> list[str]:
    chart = page[page.index('<svg class="chart departments"') :]
    return re.findall(r'<rect class="(bar|withheld)"', chart[: chart.index("</svg>")])


async def test_a_department_with_five_citizens_gets_its_bar_and_fewer_are_withheld(
    sessions: Sessions, page: Page
) -> None:
    await seed(sessions, revenue_citizens=5)
    html = await page("en")
    assert department_row(html, "Tax &amp; &lt;script&gt;x&lt;/script&gt; Bureau") == "5"
    assert department_row(html, "Parks") == WITHHELD_EN
    assert department_bars(html) == ["withheld", "bar"], "PARKS marked, REVENUE drawn: code order"
    assert "<script>x" not in html
    assert "4.0 / 5" in html, "satisfaction from seven raters"
    assert "0.1 hours" in html, "the median of 1…7 minutes"


async def test_the_page_names_departments_and_withholds_in_chinese(sessions: Sessions, page: Page) -> None:
    await seed(sessions, revenue_citizens=5)
    html = await page("zh")
    assert department_row(html, "税务局") == "5"
    assert department_row(html, "公园管理处") == WITHHELD_ZH


async def test_with_fewer_than_five_people_nothing_is_shown_as_a_number(
    sessions: Sessions, page: Page
) -> None:
    await seed(sessions, revenue_citizens=2, parks_citizens=2)
    html = await page("en")
    assert department_row(html, "Parks") == WITHHELD_EN
    assert department_bars(html) == ["withheld", "withheld"]
    withheld_cards = re.findall(r'<dd class="number withheld">([^<]*)</dd>', html)
    assert withheld_cards.count(WITHHELD_EN) >= 2, "satisfaction and time to reply withheld, not 0"
    assert "/ 5<" not in html
    assert " hours<" not in html


async def test_no_cases_at_all_says_so_without_a_chart(page: Page) -> None:
    html = await page("en")
    assert "No cases in these six months." in html
    assert 'class="chart departments"' not in html


def test_malformed_case_figures_count_as_withheld() -> None:
    stats: dict[str, Any] = {
        "satisfaction": {"value": 4.5, "suppressed": True},
        "median_hours_to_first_reply": {"value": "3", "suppressed": False},
        "cases_per_department": [
            {"department": "TAX", "name": "not a mapping", "cases": {"value": True, "suppressed": False}},
            "not a department",
            {"department": "LAND", "name": {"en": "Land"}, "cases": {"value": 12, "suppressed": False}},
        ],
    }
    cases = case_part(stats)
    assert cases.satisfaction is None
    assert cases.median_hours is None
    assert [(d.name("zh"), d.cases) for d in cases.departments] == [("TAX", None), ("Land", 12.0)]
    assert case_part({"cases_per_department": "nonsense"}) == CaseFigures(None, None, ())


def test_bars_are_drawn_to_scale_against_the_largest_department() -> None:
    figures = Figures(series=(), since=datetime(2026, 6, 1), until=datetime(2026, 12, 1))
    departments = (DepartmentCases("A", {"en": "A"}, 10.0), DepartmentCases("B", {"en": "B"}, 20.0))
    html = render_page(figures, "en", CaseFigures(3.25, 1234.5, departments))
    widths = [float(w) for w in re.findall(r'<rect class="bar"[^>]*width="([0-9.]+)"', html)]
    assert widths[1] == pytest.approx(2 * widths[0])
    assert "3.2 / 5" in html or "3.3 / 5" in html
    assert "1,234.5 hours" in html


def questions_read(sent: list[str]) -> list[str]:
    """The statements that read the questions table."""
    return [statement for statement in sent if re.search(r"\bFROM questions\b", statement)]


async def test_the_figures_are_counted_once_per_view_and_then_kept_for_a_minute(
    database_url: str, sessions: Sessions, engine: AsyncEngine
) -> None:
    with statements(engine) as once:
        async with sessions() as session:
            await transparency_figures(session, now=utcnow())
    app = create_app(load_settings(database_url=database_url))
    clock = [0.0]
    app[PUBLIC] = PublicFigures(clock=lambda: clock[0])
    async with Client(TestServer(app)) as client:
        with statements(client.app[ENGINE]) as view:
            assert (await client.get("/transparency")).status == 200
        assert len(questions_read(view)) == len(questions_read(once)), (
            "the page and its case figures share one count of the questions"
        )
        await seed(sessions, revenue_citizens=5)
        with statements(client.app[ENGINE]) as later:
            stats = await (await client.get("/api/v1/stats")).json()
            assert "No cases in these six months." in await (await client.get("/transparency")).text()
        assert (questions_read(later), stats["cases_per_department"]) == ([], []), (
            "counted a moment ago: not again"
        )
        clock[0] += 61
        stats = await (await client.get("/api/v1/stats")).json()
        assert [d["department"] for d in stats["cases_per_department"]] == ["PARKS", "REVENUE"]


async def test_the_stats_api_is_under_the_per_address_limit(database_url: str) -> None:
    app = create_app(load_settings(database_url=database_url, web_requests_per_minute=2))
    async with Client(TestServer(app)) as client:
        statuses = [(await client.get("/api/v1/stats")).status for _ in range(3)]
        assert statuses == [200, 200, 429]


@pytest.mark.parametrize(("zone", "midnight"), [("Etc/GMT-14", "T10:00:00Z"), ("UTC", "T00:00:00Z")])
async def test_the_public_figures_count_the_desks_calendar_months(
    database_url: str, sessions: Sessions, zone: str, midnight: str
) -> None:
    client = Client(TestServer(create_app(load_settings(database_url=database_url, timezone=zone))))
    await client.start_server()
    try:
        response = await client.get("/api/v1/stats")
        document = await response.json()
    finally:
        await client.close()
    assert document["since"].endswith(midnight)  # UTC+14's 1st began at 10:00 UTC the day before
    assert document["until"].endswith(midnight)
