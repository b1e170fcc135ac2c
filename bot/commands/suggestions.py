"""`govbot kb suggestions [accept|reject ID…]`: phrasings citizens used, for staff to add to entries."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from bot.commands.tables import add_format, render_csv, render_json, render_table
from bot.config import Settings
from storage import db
from storage.audit import record_export
from storage.models import utcnow
from storage.numbers import whole_number
from storage.suggestions import Decision, Outcome, Suggestion, SuggestionRepository, SuggestionStatus

COLUMNS = ("id", "entry_id", "language", "text", "times_chosen", "status", "first_seen_at", "last_seen_at")
STATUSES = ("pending", "accepted", "rejected", "all")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `suggestions` to the `kb` sub-commands."""
    parser = commands.add_parser(
        "suggestions", help="suggested alternative phrasings; accept or reject them", parents=[common]
    )
    parser.add_argument(
        "--status", choices=STATUSES, default="pending", help="which to list (default pending)"
    )
    add_format(parser)
    parser.set_defaults(handler=list_command)
    actions = parser.add_subparsers(dest="suggestions_action", required=False, metavar="ACTION")
    for action, handler, help_text in (
        ("accept", accept_command, "add the phrasings to their entries as new revisions"),
        ("reject", reject_command, "drop the suggestions"),
    ):
        p = actions.add_parser(action, help=help_text, parents=[common])
        p.add_argument("ids", nargs="+", type=suggestion_id, metavar="ID")
        p.set_defaults(handler=handler)


MAX_ID = 2**31 - 1
"""The largest id the suggestions table holds (a 32-bit integer on PostgreSQL)."""


def suggestion_id(text: str) -> int:
    """A suggestion's id as typed: ASCII digits, 1 to MAX_ID (``int`` also took "١" and "1_0")."""
    number = whole_number(text, 1, MAX_ID)
    if number is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a suggestion id (a number from 1 to {MAX_ID})")
    return number


def list_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the suggestions, most chosen first."""
    status = None if args.status == "all" else SuggestionStatus(args.status)

    async def go() -> list[Suggestion]:
        async with db.connected(settings().database_url) as engine, db.sessionmaker(engine)() as session:
            listed = await SuggestionRepository(session).listing(status)
            # Citizens' own wordings, as the reports show them: staff reading them is recorded alike.
            await record_export(db.sessionmaker(engine), "kb suggestions", now=utcnow(),
                                details={"status": args.status})
            return listed

    print(render_suggestions(asyncio.run(go()), args.format))
    return 0


def accept_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Write each accepted phrasing into its entry (running bots pick it up on their next refresh)."""
    return _decide(args.ids, settings, accept=True)


def reject_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Mark suggestions rejected."""
    return _decide(args.ids, settings, accept=False)


def render_suggestions(suggestions: Sequence[Suggestion], fmt: str) -> str:
    """The suggestions as a table, CSV or one JSON document."""
    rows = [
        [s.id, s.entry_id, s.language, s.text, s.times_chosen, s.status, s.first_seen_at.isoformat(),
         s.last_seen_at.isoformat()]
        for s in suggestions
    ]  # fmt: skip
    if fmt == "json":
        return render_json({"suggestions": [dict(zip(COLUMNS, row, strict=True)) for row in rows]})
    if fmt == "csv":
        return render_csv(COLUMNS, rows)
    if not rows:
        return "no suggestions"
    headers = ("id", "entry", "lang", "phrasing", "chosen", "status", "last chosen (UTC)")
    when = [f"{s.last_seen_at:%Y-%m-%d %H:%M}" for s in suggestions]
    return render_table(headers, [[*row[:6], last] for row, last in zip(rows, when, strict=True)])


def describe(decision: Decision) -> str:
    """One line saying what happened to a suggestion."""
    s, number = decision.suggestion, f"#{decision.suggestion_id}"
    if decision.outcome is Outcome.NOT_FOUND or s is None:
        return f"{number}: no such suggestion"
    phrase = f"{s.text!r} ({s.language})"
    return {
        Outcome.ACCEPTED: f"{number}: accepted: {phrase} added to {s.entry_id} as a new revision",
        Outcome.ALREADY_KNOWN: f"{number}: accepted: {s.entry_id} already has {phrase}; entry unchanged",
        Outcome.REJECTED: f"{number}: rejected: {phrase} for {s.entry_id}",
        Outcome.NOT_PENDING: f"{number}: already {s.status}, nothing done",
        Outcome.ENTRY_GONE: f"{number}: entry {s.entry_id} no longer exists; left pending",
    }[decision.outcome]


def _decide(ids: list[int], settings: Callable[[], Settings], *, accept: bool) -> int:
    async def go() -> list[Decision]:
        async with (
            db.connected(settings().database_url) as engine,
            db.sessionmaker(engine).begin() as session,
        ):
            repo = SuggestionRepository(session)
            decide = repo.accept if accept else repo.reject
            return [await decide(suggestion_id) for suggestion_id in dict.fromkeys(ids)]

    decisions = asyncio.run(go())
    done = {Outcome.ACCEPTED, Outcome.ALREADY_KNOWN, Outcome.REJECTED}
    for decision in decisions:
        print(describe(decision), file=sys.stdout if decision.outcome in done else sys.stderr)
    if accept and any(d.outcome is Outcome.ACCEPTED for d in decisions):
        print("running bots pick the new phrasings up at their next knowledge-base refresh")
    return 0 if all(d.outcome in done for d in decisions) else 1
