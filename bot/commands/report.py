"""`govbot report …`: what staff learn from citizens — unanswered questions and feedback on answers."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.commands import stats as stats_commands
from bot.commands.tables import (
    add_format,
    render_csv,
    render_json,
    render_table,
    since_argument,
    window_start,
)
from bot.config import Settings
from knowledge.clustering import Cluster, cluster_questions
from storage import db
from storage.audit import record_export
from storage.feedback import EntryFeedback, FeedbackItem, FeedbackKind, FeedbackRepository
from storage.models import utcnow

EXAMPLES = 3
LATEST_COMMENTS = 10
UNANSWERED_COLUMNS = (
    "rank", "language", "count", "citizens", "question", "examples", "nearest_entry", "nearest_score",
)  # fmt: skip
FEEDBACK_COLUMNS = (
    "entry_id", "question", "shown", "rated", "helpful", "not_helpful", "helpful_rate", "comments",
    "examples", "deleted",
)  # fmt: skip


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class FeedbackReport:
    entries: list[EntryFeedback]
    comments: int
    complaints: int
    latest: list[FeedbackItem]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("report", help="what citizens asked and said, for staff", parents=[common])
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    p = sub.add_parser(
        "unanswered", help="unanswered questions grouped by need, largest first", parents=[common]
    )
    _add_since(p, "7d")
    p.set_defaults(handler=unanswered_command)
    p = sub.add_parser(
        "feedback", help="per entry: times shown, helpful rate, comments; worst first", parents=[common]
    )
    _add_since(p, "30d")
    p.set_defaults(handler=feedback_command)
    stats_commands.add_to(sub, common)  # `report stats`: the public figures (bot/commands/stats.py)


def unanswered_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the clusters of unanswered questions in the window."""
    config = settings()
    window = Window(window_start(args.since, now := utcnow(), config.zone()), now)

    async def go() -> list[Cluster]:
        async with db.connected(config.database_url) as engine, db.sessionmaker(engine)() as session:
            clusters = cluster_questions(await FeedbackRepository(session).unanswered(window.start))
            since = {"since": window.start.isoformat()}
            await record_export(db.sessionmaker(engine), "report unanswered", now=now, details=since)
            return clusters

    print(render_unanswered(asyncio.run(go()), args.format, window))
    return 0


def feedback_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the per-entry feedback figures and the latest comments in the window."""
    config = settings()
    window = Window(window_start(args.since, now := utcnow(), config.zone()), now)

    async def go() -> FeedbackReport:
        async with db.connected(config.database_url) as engine, db.sessionmaker(engine)() as session:
            report = await feedback_report(FeedbackRepository(session), window.start)
            since = {"since": window.start.isoformat()}
            await record_export(db.sessionmaker(engine), "report feedback", now=now, details=since)
            return report

    print(render_feedback(asyncio.run(go()), args.format, window))
    return 0


async def feedback_report(repo: FeedbackRepository, since: datetime) -> FeedbackReport:
    """Everything the feedback report shows, read in one session."""
    general = (FeedbackKind.COMMENT, FeedbackKind.COMPLAINT)
    return FeedbackReport(
        entries=await repo.entry_feedback(since),
        comments=await repo.count(since, FeedbackKind.COMMENT),
        complaints=await repo.count(since, FeedbackKind.COMPLAINT),
        latest=await repo.items(since, general, limit=LATEST_COMMENTS),
    )


def render_unanswered(clusters: list[Cluster], fmt: str, window: Window) -> str:
    """The clusters as a table, CSV or one JSON document."""
    rows = [_cluster_row(rank, cluster) for rank, cluster in enumerate(clusters, start=1)]
    if fmt == "json":
        document = {
            "report": "unanswered",
            "since": window.start,
            "until": window.end,
            "questions": sum(c.count for c in clusters),
            "clusters": [dict(zip(UNANSWERED_COLUMNS, row, strict=True)) for row in rows],
        }
        return render_json(document)
    if fmt == "csv":
        return render_csv(UNANSWERED_COLUMNS, [[*row[:5], " | ".join(row[5]), *row[6:]] for row in rows])
    title = (
        f"Unanswered questions {_period(window)}: {sum(c.count for c in clusters)} "
        f"in {len(clusters)} cluster(s), largest first"
    )
    if not rows:
        return title + "\nnothing unanswered"
    headers = ("#", "lang", "count", "citizens", "question", "also asked as", "nearest entry (score)")
    table = [[*row[:5], " · ".join(row[5][1:]) or "", _nearest(row[6], row[7])] for row in rows]
    return title + "\n\n" + render_table(headers, table)


def render_feedback(report: FeedbackReport, fmt: str, window: Window) -> str:
    """The per-entry figures (worst helpful rate first) and the latest comments."""
    rows = [_entry_row(entry) for entry in report.entries]
    if fmt == "json":
        return render_json(_feedback_document(report, rows, window))
    if fmt == "csv":
        return render_csv(
            FEEDBACK_COLUMNS, [[*row[:8], " | ".join(row[8]), str(row[9]).lower()] for row in rows]
        )
    parts = [f"Feedback on answers {_period(window)}: {len(rows)} entries, worst helpful rate first"]
    if rows:
        headers = (
            "entry",
            "question",
            "shown",
            "rated",
            "👍",
            "👎",
            "helpful",
            "comments",
            "what was missing",
        )
        table = [
            [row[0], _question(row[1], row[9]), *row[2:6], _percent(row[6]), row[7], " · ".join(row[8])]
            for row in rows
        ]
        parts.append(render_table(headers, table))
    else:
        parts.append("no answers shown")
    parts.append(f"Comments: {report.comments}, complaints: {report.complaints}")
    if report.latest:
        latest = [
            [item.created_at.strftime("%Y-%m-%d %H:%M"), item.kind, item.text] for item in report.latest
        ]
        parts.append(render_table(("when (UTC)", "kind", "text"), latest))
    return "\n\n".join(parts)


def _add_since(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--since",
        type=since_argument,
        default=since_argument(default),
        metavar="WHEN",
        help=f"a period before now (7d, 24h, 2w) or an ISO date (2026-11-01, midnight in GOVBOT_TIMEZONE); "
             f"default {default}",
    )
    add_format(parser)


def _cluster_row(rank: int, cluster: Cluster) -> list[Any]:
    examples = cluster.examples(EXAMPLES)
    nearest = cluster.nearest()
    return [
        rank,
        cluster.language,
        cluster.count,
        cluster.citizens,
        examples[0] if examples else "",
        examples,
        nearest[0] if nearest else None,
        round(nearest[1], 3) if nearest else None,
    ]


def _entry_row(entry: EntryFeedback) -> list[Any]:
    rate = entry.helpful_rate
    return [
        entry.entry_id,
        entry.question,
        entry.shown,
        entry.rated,
        entry.helpful,
        entry.not_helpful,
        None if rate is None else round(rate, 3),
        entry.comments,
        entry.examples,
        entry.deleted,
    ]


def _feedback_document(report: FeedbackReport, rows: list[list[Any]], window: Window) -> dict[str, Any]:
    return {
        "report": "feedback",
        "since": window.start,
        "until": window.end,
        "entries": [dict(zip(FEEDBACK_COLUMNS, row, strict=True)) for row in rows],
        "comments": report.comments,
        "complaints": report.complaints,
        "latest_comments": [
            {"id": i.id, "kind": i.kind, "text": i.text, "language": i.language, "created_at": i.created_at}
            for i in report.latest
        ],
    }


def _nearest(entry_id: str | None, score: float | None) -> str:
    return f"{entry_id} ({score:.2f})" if entry_id and score is not None else (entry_id or "")


def _question(question: str, deleted: bool) -> str:
    return f"(deleted) {question}" if deleted else question


def _percent(rate: float | None) -> str | None:
    return None if rate is None else f"{rate:.0%}"


def _period(window: Window) -> str:
    start = window.start.astimezone(UTC)
    return f"since {start.year:04d}-{start:%m-%d %H:%M} UTC"  # %Y writes year 1 as "1"
