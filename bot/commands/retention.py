"""`govbot retention run [--dry-run]`: purge conversations and stored free text past the retention period."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from bot.config import Settings
from storage import db
from storage.models import utcnow
from storage.retention import RetentionResult, run_retention


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser(
        "retention", help="purge data older than GOVBOT_RETENTION_DAYS", parents=[common]
    )
    sub = parser.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    p = sub.add_parser("run", help="purge now (the running bot does this daily)", parents=[common])
    p.add_argument("--dry-run", action="store_true", help="only show what would be purged")
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Purge, or show what would be purged."""
    config = settings()

    async def go() -> RetentionResult:
        async with db.connected(config.database_url) as engine:
            return await run_retention(
                db.sessionmaker(engine), days=config.retention_days, now=utcnow(), dry_run=args.dry_run
            )

    print(describe(asyncio.run(go()), config.retention_days))
    return 0


def describe(result: RetentionResult, days: int) -> str:
    """What was (or would be) purged, one line per kind of data."""
    verb = "would purge" if result.dry_run else "purged"
    lines = [f"retention {days} days: {verb} what is older than {result.cutoff:%Y-%m-%d %H:%M} UTC"]
    lines += [f"  {name:<16} {count:>8}" for name, count in sorted(result.counts.items())]
    lines.append(f"  {'total':<16} {result.total:>8}")
    return "\n".join(lines)
