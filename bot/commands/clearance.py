"""`govbot clearance …`: the highest data class each department may receive (public … sensitive)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable

from bot.config import Settings
from storage import db
from storage.classification import LOWEST_CLEARANCE, DataClass
from storage.governance import ClearanceError, clearances, set_clearance
from storage.models import utcnow

CHOICES = [c.label for c in DataClass if c >= LOWEST_CLEARANCE]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("clearance", help="what each department may receive", parents=[common])
    sub = parser.add_subparsers(dest="clearance_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", help="every department's clearance", parents=[common])
    p.set_defaults(handler=list_command)
    p = sub.add_parser(
        "set",
        help="change a department's clearance (audited; pending deliveries follow it)",
        parents=[common],
    )
    p.add_argument("code", help="department code")
    p.add_argument("clearance", choices=CHOICES)
    p.set_defaults(handler=set_command)


def list_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print each department with its clearance."""

    async def go() -> dict[str, DataClass]:
        async with db.connected(settings().database_url) as engine, db.sessionmaker(engine)() as session:
            return await clearances(session)

    found = asyncio.run(go())
    if not found:
        print("no departments")
    for code, clearance in found.items():
        print(f"{code:<20} {clearance.label}")
    return 0


def set_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Set a department's clearance."""

    async def go() -> tuple[DataClass, DataClass]:
        async with (
            db.connected(settings().database_url) as engine,
            db.sessionmaker(engine).begin() as session,
        ):
            return await set_clearance(session, args.code, args.clearance, now=utcnow(), by=_operator())

    try:
        old, new = asyncio.run(go())
    except ClearanceError as exc:
        print(f"govbot: {exc}", file=sys.stderr)
        return 1
    print(f"{args.code}: clearance {old.label} → {new.label}")
    return 0


def _operator() -> str:
    """Who changed it, for the audit record (the operating-system user)."""
    try:
        return f"cli:{getpass.getuser()}"[:60]
    except (KeyError, OSError):
        return "cli"
