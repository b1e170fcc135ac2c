"""GET /transparency: the public figures as server-rendered SVG bar charts, each with a data table.

The renderer takes a :class:`storage.stats.Figures` and knows nothing of where it came from; the source is
``app[FIGURES]``, so the figures of the stats API can replace the database query without touching this.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

from aiohttp import web

from bot.keys import SESSIONS
from bot.web.pages import LANGUAGE_NAMES, Markup, accepted_language, escape, render, static_url
from handlers.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from storage.models import utcnow
from storage.stats import Figures, Point, Series, transparency_figures

TITLES = {
    "questions": "web_tr_questions",
    "answer_rate": "web_tr_answer_rate",
    "helpful_rate": "web_tr_helpful_rate",
}
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WIDTH, HEIGHT = 360, 220
LEFT, RIGHT, TOP, BOTTOM = 42, 8, 22, 42


class FiguresSource(Protocol):
    def __call__(self, app: web.Application, now: datetime) -> Awaitable[Figures]: ...


async def database_figures(app: web.Application, now: datetime) -> Figures:
    """The figures computed from this database."""
    async with app[SESSIONS]() as session:
        return await transparency_figures(session, now=now)


FIGURES = web.AppKey("transparency_figures", FiguresSource)


def setup(app: web.Application) -> None:
    """Serve the page; keep a figures source someone set up before, else count in the database."""
    if FIGURES not in app:
        app[FIGURES] = database_figures
    app.router.add_get("/transparency", transparency_page, name="web.transparency")


async def transparency_page(request: web.Request) -> web.Response:
    """GET /transparency[?lang=zh]."""
    asked = request.query.get("lang", "")
    lang = asked if asked in LANGUAGES else accepted_language(request.headers.get("Accept-Language"))
    figures = await request.app[FIGURES](request.app, utcnow())
    return web.Response(text=render_page(figures, lang or DEFAULT_LANGUAGE), content_type="text/html")


def render_page(figures: Figures, lang: str) -> str:
    """The whole page in ``lang``."""
    sections = "\n".join(_section(series, lang) for series in figures.series)
    summary = "".join(_total(series, lang) for series in figures.series)
    current = ' aria-current="page"'
    links = "".join(
        f'<a href="?lang={code}" lang="{code}" hreflang="{code}"{current if code == lang else ""}>'
        f"{escape(name)}</a>"
        for code, name in LANGUAGE_NAMES.items()
    )
    return render(
        "transparency.html",
        lang=lang,
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
    if not month.isdigit() or not 1 <= int(month) <= 12:
        return label, ""
    name = f"{int(month)}月" if lang == "zh" else MONTH_NAMES[int(month) - 1]
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
        f'<desc id="{chart_id}-desc">{escape(t(lang, "web_tr_chart", summary=summary))}</desc>'
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
        f'<table><thead><tr><th scope="col">{escape(t(lang, "web_tr_month"))}</th>'
        f'<th scope="col">{escape(t(lang, "web_tr_value"))}</th></tr></thead><tbody>{rows}</tbody></table>'
        "</details></section>"
    )


def _total(series: Series, lang: str) -> str:
    withheld = " withheld" if series.total.value is None else ""
    return (
        f'<div class="card"><dt>{escape(t(lang, TITLES.get(series.key, series.key)))}</dt>'
        f'<dd class="number{withheld}">{escape(format_value(series.total, series.unit, lang))}</dd></div>'
    )
