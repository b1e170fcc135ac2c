"""`govbot report stats`: the public transparency figures (the same as ``GET /api/v1/stats``)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from bot.commands.tables import add_format, render_csv, render_json, render_table
from bot.config import Settings
from storage import db
from storage.models import utcnow
from storage.transparency import public_stats

COLUMNS = ("figure", "department", "value", "suppressed")
OVERALL = ("questions_asked", "answer_rate", "helpful_rate", "satisfaction", "median_hours_to_first_reply")


def add_to(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add ``stats`` to the ``report`` command."""
    p = sub.add_parser(
        "stats",
        help="public aggregate figures; any figure from fewer than 5 people is suppressed",
        parents=[common],
    )
    add_format(p)
    p.set_defaults(handler=stats_command)


def stats_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the transparency figures."""

    async def go() -> dict[str, Any]:
        config = settings()
        async with db.connected(config.database_url) as engine, db.sessionmaker(engine)() as session:
            return await public_stats(session, now=utcnow(), zone=config.zone())

    print(render_stats(asyncio.run(go()), args.format))
    return 0


def render_stats(document: dict[str, Any], output: str) -> str:
    """The figures as JSON (the API's document), CSV or a table."""
    if output == "json":
        return render_json(document)
    rows = rows_of(document)
    if output == "csv":
        return render_csv(COLUMNS, rows)
    head = f"{document['since'][:10]} – {document['until'][:10]}; figures from fewer than "
    return head + f"{document['min_people']} people are suppressed\n\n" + render_table(COLUMNS, rows)


def rows_of(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per figure: overall first, then per department."""
    rows: list[tuple[Any, ...]] = [_row(name, None, document[name]) for name in OVERALL]
    for department in document["cases_per_department"]:
        for name in ("cases", "median_hours_to_first_reply", "satisfaction"):
            rows.append(_row(name, department["department"], department[name]))
    return rows


def _row(name: str, department: str | None, figure: dict[str, Any]) -> tuple[Any, ...]:
    return (name, department, figure["value"], "yes" if figure["suppressed"] else "no")
