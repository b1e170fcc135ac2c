"""GET /transparency: the public figures as server-rendered SVG bar charts, each with a data table.

The renderer takes a :class:`storage.stats.Figures` and the case part of the stats API
(:func:`storage.transparency.public_stats`) and knows nothing of where they came from; the source is
``app[FIGURES]``, so another source can replace the database query without touching this.

The figures cover whole months and counting them reads six months of questions and cases, so a process
counts them at most once a minute (:class:`PublicFigures`) for this page and ``GET /api/v1/stats`` alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.keys import SESSIONS
from bot.web.pages import LANGUAGE_NAMES, Markup, asked_language, escape, language_tag, render, static_url
from handlers.i18n import DEFAULT_LANGUAGE, t
from storage.models import utcnow
from storage.numbers import whole_number
from storage.stats import Figures, Point, Series, transparency_figures
from storage.transparency import stats_document

TITLES = {
    "questions": "web_tr_questions",
    "answer_rate": "web_tr_answer_rate",
    "helpful_rate": "web_tr_helpful_rate",
}
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FRESH_SECONDS = 60.0
"""How long one count of the public figures is shown before the next request counts again."""
WIDTH, HEIGHT = 360, 220
LEFT, RIGHT, TOP, BOTTOM = 42, 8, 22, 42
ROW, PAD, VALUE_ROOM = 40, 8, 56


@dataclass(frozen=True)
class DepartmentCases:
    """One department's cases in the window; ``cases`` is None when withheld."""

    code: str
    names: Mapping[str, str]
    cases: float | None

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get(DEFAULT_LANGUAGE) or self.code


@dataclass(frozen=True)
class CaseFigures:
    """The case figures of the stats API; a None figure is withheld (fewer than 5 people, or nobody)."""

    satisfaction: float | None
    median_hours: float | None
    departments: tuple[DepartmentCases, ...]


@dataclass(frozen=True)
class PageFigures:
    """Everything the page shows: the question series and, if known, the case figures."""

    figures: Figures
    cases: CaseFigures | None = None


class FiguresSource(Protocol):
    def __call__(self, app: web.Application, now: datetime) -> Awaitable[PageFigures]: ...


Counted = tuple[Figures, dict[str, Any]]
"""The question series and the stats document made from them (``GET /api/v1/stats``)."""


async def count(sessions: async_sessionmaker[AsyncSession], now: datetime, zone: tzinfo = UTC) -> Counted:
    """The public figures of this database by month of ``zone``, the question series counted once for both."""
    async with sessions() as session:
        figures = await transparency_figures(session, now=now, zone=zone)
        return figures, await stats_document(session, figures, now=now, zone=zone)


class PublicFigures:
    """The public figures, counted at most once per ``fresh`` seconds in this process."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, fresh: float = FRESH_SECONDS, zone: tzinfo = UTC
    ) -> None:
        """``zone``: the service desk's, whose calendar months the figures are counted by."""
        self._clock, self._fresh, self._zone = clock, fresh, zone
        self._lock = asyncio.Lock()
        self._counted: tuple[float, Counted] | None = None

    async def get(self, sessions: async_sessionmaker[AsyncSession], now: datetime) -> Counted:
        async with self._lock:  # requests arriving during a count wait for it instead of counting too
            if self._counted is None or self._clock() - self._counted[0] >= self._fresh:
                self._counted = (self._clock(), await count(sessions, now, self._zone))
            return self._counted[1]


PUBLIC = web.AppKey("public_figures", PublicFigures)


async def database_figures(app: web.Application, now: datetime) -> PageFigures:
    """The figures of this database, the case figures exactly as ``GET /api/v1/stats`` has them."""
    figures, stats = await app[PUBLIC].get(app[SESSIONS], now)
    return PageFigures(figures, case_part(stats))


async def stats(request: web.Request) -> web.Response:
    """``GET /api/v1/stats``: public aggregate figures, no personal data, small cells suppressed."""
    public, sessions = request.config_dict.get(PUBLIC), request.config_dict[SESSIONS]
    _, document = await (public.get(sessions, utcnow()) if public else count(sessions, utcnow()))
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})


def case_part(stats: Mapping[str, Any]) -> CaseFigures:
    """The case figures of a ``public_stats`` document; anything missing or malformed counts as withheld."""
    listed = stats.get("cases_per_department")
    departments = tuple(
        DepartmentCases(str(item.get("department", "")), _names(item.get("name")), _shown(item.get("cases")))
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, Mapping)
    )
    return CaseFigures(
        _shown(stats.get("satisfaction")), _shown(stats.get("median_hours_to_first_reply")), departments
    )


def _shown(item: object) -> float | None:
    """The value of a ``{"value": …, "suppressed": …}`` figure, None unless it is plainly shown."""
    if not isinstance(item, Mapping) or item.get("suppressed") is not False:
        return None
    value = item.get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _names(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(lang): str(name) for lang, name in value.items() if name}


FIGURES = web.AppKey("transparency_figures", FiguresSource)


def setup(app: web.Application, *, zone: tzinfo = UTC) -> None:
    """Serve the page; keep a figures source someone set up before, else count in the database.

    ``zone``: the service desk's; its calendar months are the page's and ``GET /api/v1/stats``'s."""
    app[PUBLIC] = PublicFigures(zone=zone)
    if FIGURES not in app:
        app[FIGURES] = database_figures
    app.router.add_get("/transparency", transparency_page, name="web.transparency")


async def transparency_page(request: web.Request) -> web.Response:
    """GET /transparency[?lang=zh]."""
    lang = asked_language(request.query, request.headers.get("Accept-Language"))
    data = await request.app[FIGURES](request.app, utcnow())
    page = render_page(data.figures, lang, data.cases)
    return web.Response(text=page, content_type="text/html")


def render_page(figures: Figures, lang: str, cases: CaseFigures | None = None) -> str:
    """The whole page in ``lang``; the case figures too when given."""
    sections = "\n".join(_section(series, lang) for series in figures.series)
    summary = "".join(_total(series, lang) for series in figures.series)
    if cases is not None:
        sections += "\n" + _department_section(cases.departments, lang)
        summary += _case_totals(cases, lang)
    current = ' aria-current="page"'
    links = "".join(
        f'<a href="?lang={code}" lang="{language_tag(code)}" hreflang="{language_tag(code)}"'
        f'{current if code == lang else ""}>'
        f"{escape(name)}</a>"
        for code, name in LANGUAGE_NAMES.items()
    )
    return render(
        "transparency.html",
        tag=language_tag(lang),
        css=static_url("transparency.css"),
        title=t(lang, "web_tr_title"),
        site_name=t(lang, "web_site_name"),
        language_label=t(lang, "web_language"),
        languages=Markup(links),
        intro=t(lang, "web_tr_intro"),
        total=t(lang, "web_tr_total"),
        summary=Markup(summary),
        sections=Markup(sections),
        back=t(lang, "web_tr_back"),
    )


def month_label(label: str, lang: str, *, with_year: bool) -> tuple[str, str]:
    """``2026-06`` as two short lines for an axis: (``Jun``, ``2026``) or (``6月``, ``2026``)."""
    year, _, month = label.partition("-")
    number = whole_number(month, 1, 12)
    if number is None:
        return label, ""
    name = f"{number}月" if lang == "zh" else MONTH_NAMES[number - 1]
    return name, year if with_year else ""


def format_value(point: Point, unit: str, lang: str) -> str:
    if point.value is None:
        return str(t(lang, "web_tr_suppressed"))
    return f"{point.value:.0f}%" if unit == "percent" else f"{point.value:,.0f}"


def bar_chart(series: Series, lang: str) -> str:
    """An SVG bar chart of one series; withheld months are marked, not drawn as zero."""
    chart_id = f"chart-{series.key}"
    highest = max((p.value or 0 for p in series.points), default=0)
    top = 100.0 if series.unit == "percent" else _nice_ceiling(highest)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_w / max(len(series.points), 1)
    parts = [_grid(top, series.unit, plot_w, plot_h)]
    for index, point in enumerate(series.points):
        x = LEFT + index * band
        parts.append(_bar(point, series.unit, lang, x, band, top, plot_h))
        first, second = month_label(point.label, lang, with_year=index == 0 or point.label.endswith("-01"))
        centre = x + band / 2
        parts.append(f'<text class="axis" x="{centre:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
                     f"{escape(first)}</text>")
        if second:
            parts.append(f'<text class="axis year" x="{centre:.1f}" y="{TOP + plot_h + 31}" '
                         f'text-anchor="middle">{escape(second)}</text>')
    summary = "; ".join(f"{p.label}: {format_value(p, series.unit, lang)}" for p in series.points)
    title = t(lang, TITLES.get(series.key, series.key))
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{t(lang, "web_tr_chart", summary=summary)}</desc>'
        + "".join(parts)
        + "</svg>"
    )


def _grid(top: float, unit: str, plot_w: float, plot_h: float) -> str:
    lines = []
    for step in range(5):
        value = top * step / 4
        y = TOP + plot_h - plot_h * step / 4
        label = f"{value:.0f}%" if unit == "percent" else f"{value:,.0f}"
        lines.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    return "".join(lines)


def _bar(point: Point, unit: str, lang: str, x: float, band: float, top: float, plot_h: float) -> str:
    width, base = band * 0.6, TOP + plot_h
    left = x + (band - width) / 2
    if point.value is None:
        return (
            f'<rect class="withheld" x="{left:.1f}" y="{base - 14:.1f}" width="{width:.1f}" height="14"/>'
            f'<text class="value withheld-label" x="{x + band / 2:.1f}" y="{base - 20:.1f}" '
            f'text-anchor="middle">–</text>'
        )
    height = plot_h * min(point.value / top, 1.0) if top else 0.0
    return (
        f'<rect class="bar" x="{left:.1f}" y="{base - height:.1f}" width="{width:.1f}" '
        f'height="{height:.1f}"/>'
        f'<text class="value" x="{x + band / 2:.1f}" y="{base - height - 5:.1f}" text-anchor="middle">'
        f"{escape(format_value(point, unit, lang))}</text>"
    )


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ (at least 4) that is not below ``value``: round gridlines."""
    if value <= 4:
        return 4.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude


def _section(series: Series, lang: str) -> str:
    title = escape(t(lang, TITLES.get(series.key, series.key)))
    rows = "".join(
        f'<tr><th scope="row">{escape(p.label)}</th>'
        f"<td>{escape(format_value(p, series.unit, lang))}</td></tr>"
        for p in series.points
    )
    return (
        f'<section class="figure" aria-labelledby="h-{series.key}">'
        f'<h2 id="h-{series.key}">{title}</h2>'
        f"{bar_chart(series, lang)}"
        f"<details><summary>{escape(t(lang, 'web_tr_table'))}</summary>"
        f'<table><caption>{title}</caption><thead><tr><th scope="col">{escape(t(lang, "web_tr_month"))}</th>'
        f'<th scope="col">{escape(t(lang, "web_tr_value"))}</th></tr></thead><tbody>{rows}</tbody></table>'
        "</details></section>"
    )


def _total(series: Series, lang: str) -> str:
    title = t(lang, TITLES.get(series.key, series.key))
    return _card(title, format_value(series.total, series.unit, lang), withheld=series.total.value is None)


def _card(title: str, text: str, *, withheld: bool) -> str:
    marked = " withheld" if withheld else ""
    return f'<div class="card"><dt>{escape(title)}</dt><dd class="number{marked}">{escape(text)}</dd></div>'


def _case_totals(cases: CaseFigures, lang: str) -> str:
    """Satisfaction and the median time to a first reply as headline figures."""
    satisfaction, hours = cases.satisfaction, cases.median_hours
    withheld = str(t(lang, "web_tr_suppressed"))
    score = None if satisfaction is None else f"{satisfaction:.1f}"
    rated = withheld if score is None else _filled(lang, "web_tr_out_of_five", value=score)
    waited = _filled(lang, "web_tr_hours", hours=f"{hours:,.1f}") if hours is not None else withheld
    return _card(t(lang, "web_tr_satisfaction"), rated, withheld=satisfaction is None) + _card(
        t(lang, "web_tr_first_reply"), waited, withheld=hours is None
    )


def _filled(lang: str, key: str, **values: str) -> Markup:
    """A catalogue text with values: t() escapes what it fills in and the catalogue is ours, so it is safe."""
    return Markup(t(lang, key, **values))


def department_value(department: DepartmentCases, lang: str) -> str:
    if department.cases is None:
        return str(t(lang, "web_tr_suppressed"))
    return f"{department.cases:,.0f}"


def department_chart(departments: tuple[DepartmentCases, ...], lang: str) -> str:
    """A horizontal SVG bar chart of cases per department: a name above each bar, withheld ones marked."""
    top = _nice_ceiling(max((d.cases or 0 for d in departments), default=0))
    plot_w = WIDTH - 2 * PAD - VALUE_ROOM
    parts = []
    for index, department in enumerate(departments):
        y = PAD + index * ROW
        parts.append(f'<text class="name" x="{PAD}" y="{y + 12}">{escape(department.name(lang))}</text>')
        value = escape(department_value(department, lang))
        if department.cases is None:
            parts.append(
                f'<rect class="withheld" x="{PAD}" y="{y + 18}" width="14" height="14"/>'
                f'<text class="value withheld-label" x="{PAD + 20}" y="{y + 29}">{value}</text>'
            )
            continue
        width = plot_w * min(department.cases / top, 1.0)
        parts.append(
            f'<rect class="bar" x="{PAD}" y="{y + 18}" width="{width:.1f}" height="14"/>'
            f'<text class="value" x="{PAD + width + 6:.1f}" y="{y + 29}">{value}</text>'
        )
    summary = "; ".join(f"{d.name(lang)}: {department_value(d, lang)}" for d in departments)
    height = 2 * PAD + ROW * len(departments)
    described = _filled(lang, "web_tr_department_chart", summary=summary)
    return (
        f'<svg class="chart departments" viewBox="0 0 {WIDTH} {height}" role="img" '
        'aria-labelledby="chart-departments-title chart-departments-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-departments-title">{escape(t(lang, "web_tr_departments"))}</title>'
        f'<desc id="chart-departments-desc">{described}</desc>'
        + "".join(parts)
        + "</svg>"
    )


def _department_section(departments: tuple[DepartmentCases, ...], lang: str) -> str:
    title = escape(t(lang, "web_tr_departments"))
    if not departments:
        body = f'<p class="empty">{escape(t(lang, "web_tr_no_cases"))}</p>'
    else:
        rows = "".join(
            f'<tr><th scope="row">{escape(d.name(lang))}</th>'
            f"<td>{escape(department_value(d, lang))}</td></tr>"
            for d in departments
        )
        body = (
            f"{department_chart(departments, lang)}"
            f"<details><summary>{escape(t(lang, 'web_tr_table'))}</summary>"
            f'<table><caption>{title}</caption>'
            f'<thead><tr><th scope="col">{escape(t(lang, "web_tr_department"))}</th>'
            f'<th scope="col">{escape(t(lang, "web_tr_cases"))}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
            "</details>"
        )
    return (
        f'<section class="figure" aria-labelledby="h-departments">'
        f'<h2 id="h-departments">{title}</h2>{body}</section>'
    )
