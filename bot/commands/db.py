"""`govbot db …`: database migrations."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from bot.config import Settings
from storage import db


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("db", help="database migrations", parents=[common])
    sub = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = sub.add_parser("upgrade", help="migrate the database to the newest schema", parents=[common])
    upgrade.set_defaults(handler=upgrade_command)
    current = sub.add_parser("current", help="print the database's schema revision", parents=[common])
    current.set_defaults(handler=current_command)


def upgrade_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Migrate the configured database to the newest revision."""

    async def go() -> str | None:
        async with db.reachable(settings().database_url, create=True) as engine:
            await db.upgrade(engine)
            return await db.current_revision(engine)

    print(f"database at revision {asyncio.run(go())}")
    return 0


def current_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the schema revision of the configured database and the newest one."""

    async def go() -> str | None:
        async with db.reachable(settings().database_url) as engine:
            return await db.current_revision(engine)

    print(f"database at revision {asyncio.run(go()) or 'none'}; newest is {db.head_revision()}")
    return 0
