"""`govbot dispatch` (the webhook dispatcher on its own) and `govbot deliveries …` (inspect and replay)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.commands.tables import utc_moment
from bot.config import Settings
from bot.dispatch import DispatchConfig, Dispatcher, DispatchMetrics
from storage import db
from storage.departments import DepartmentError, DepartmentRepository
from storage.models import utcnow
from storage.numbers import whole_number
from storage.outbox import AttemptRecord, DeliveryInFlight, EventSummary, OutboxRepository

log = logging.getLogger(__name__)
STATUSES = ("pending", "failed", "delivered", "dead")
_RELATIVE = re.compile(r"^([0-9]+)\s*([mhd])$")  # ASCII digits only, as storage.numbers reads them
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = commands.add_parser(
        "dispatch", help="deliver webhooks to departments (no HTTP server)", parents=[common]
    )
    p.add_argument("--once", action="store_true", help="one round of due deliveries, then exit")
    p.add_argument(
        "--metrics-port", type=port, default=None, metavar="PORT", help="serve /metrics on this port"
    )
    p.set_defaults(handler=dispatch_command)

    parser = commands.add_parser("deliveries", help="webhook deliveries to departments", parents=[common])
    sub = parser.add_subparsers(dest="deliveries_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", help="list deliveries, newest first", parents=[common])
    p.add_argument("--status", choices=STATUSES, help="failed = pending after a failed attempt")
    p.add_argument("--department", metavar="CODE")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_command)

    p = sub.add_parser("show", help="one delivery with every attempt", parents=[common])
    p.add_argument("id", metavar="ID", help="the delivery's number or webhook id")
    p.set_defaults(handler=show_command)

    p = sub.add_parser(
        "replay", help="deliver again (same webhook id, fresh retry schedule)", parents=[common]
    )
    p.add_argument("id", nargs="?", metavar="ID", help="the delivery's number or webhook id")
    p.add_argument("--department", metavar="CODE", help="every delivered or dead event of this department…")
    p.add_argument(
        "--since", metavar="WHEN", help="…created since WHEN: 2026-11-23, 2026-11-23T08:00Z, 6h, 2d"
    )
    p.set_defaults(handler=replay_command)


def port(text: str) -> int:
    """A TCP port number, 1 to 65535 (an argparse type)."""
    number = whole_number(text, 1, 65535)
    if number is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a port number (1 to 65535)")
    return number


def dispatch_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Run the dispatcher until SIGINT or SIGTERM; deliveries in flight finish and are recorded."""
    config = settings()
    logging.getLogger().setLevel(config.log_level)
    metrics = DispatchMetrics()
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr=config.http_host, registry=metrics.registry)
        except OSError as exc:
            where = f"{config.http_host}:{args.metrics_port}"
            print(f"govbot: cannot serve /metrics on {where}: {exc.strerror or exc}", file=sys.stderr)
            return 1

    async def go() -> int:
        async with db.connected(config.database_url) as engine:
            dispatcher = Dispatcher(
                db.sessionmaker(engine), DispatchConfig.from_settings(config), metrics=metrics
            )
            async with dispatcher:
                if args.once:
                    return await dispatcher.run_once()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, dispatcher.stop)
                await dispatcher.run()
                return 0

    attempted = asyncio.run(go())
    if args.once:
        print(f"{attempted} delivery attempt(s)")
    return 0


def list_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print deliveries, newest first."""

    async def go() -> list[EventSummary]:
        async with db.connected(settings().database_url) as engine, db.sessionmaker(engine)() as session:
            return await OutboxRepository(session).events(
                status=args.status, department=args.department, limit=max(1, min(args.limit, 10_000))
            )

    events = asyncio.run(go())
    if args.json:
        print(json.dumps([_json(e) for e in events], ensure_ascii=False, indent=2))
        return 0
    if not events:
        print("no deliveries" + (f" with status {args.status}" if args.status else ""))
        return 0
    rows = [("ID", "TYPE", "TICKET", "DEPARTMENT", "STATUS", "ATTEMPTS", "NEXT/DONE", "LAST ERROR")]
    rows += [
        (
            str(e.id),
            e.type,
            e.ticket or "-",
            e.department,
            _status(e),
            str(e.attempts),
            _when(e.finished_at or e.next_attempt_at),
            (e.last_error or "")[:60],
        )
        for e in events
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def show_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print one delivery and its attempts."""

    async def go() -> tuple[EventSummary | None, list[AttemptRecord]]:
        async with db.connected(settings().database_url) as engine, db.sessionmaker(engine)() as session:
            repo = OutboxRepository(session)
            event = await repo.event(args.id)
            return event, (await repo.attempts(event.id) if event else [])

    event, attempts = asyncio.run(go())
    if event is None:
        print(f"govbot: no delivery {args.id!r}", file=sys.stderr)
        return 1
    print(f"{event.id} {event.webhook_id} {event.type} {event.ticket} → {event.department}: {_status(event)}")
    for a in attempts:
        code = a.status_code if a.status_code is not None else "-"
        latency = f"{a.latency_ms} ms" if a.latency_ms is not None else "-"
        when = _when(a.started_at)
        print(f"  #{a.number} {when} by {a.dispatcher}: {a.outcome} {code} {latency} {a.error or ''}")
    return 0


def replay_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Queue one delivery again, or a department's deliveries since a time."""
    if (args.id is None) == (args.department is None):
        print("govbot: give a delivery ID, or --department CODE --since WHEN", file=sys.stderr)
        return 2
    since = None
    if args.department is not None:
        since = parse_since(args.since or "", utcnow())
        if since is None:
            print("govbot: --since takes a date, a time (ISO 8601) or an age like 6h or 2d", file=sys.stderr)
            return 2

    async def go() -> int:
        async with (
            db.connected(settings().database_url) as engine,
            db.sessionmaker(engine).begin() as session,
        ):
            repo = OutboxRepository(session)
            if args.id is not None:
                return 1 if await repo.replay(args.id, utcnow()) else 0
            assert since is not None
            if await DepartmentRepository(session).get(args.department) is None:
                raise DepartmentError(f"no department {args.department[:60]!r}")
            return await repo.replay_department(args.department, since, utcnow())

    try:
        count = asyncio.run(go())
    except (DeliveryInFlight, DepartmentError) as exc:
        print(f"govbot: {exc}", file=sys.stderr)
        return 1
    if args.id is not None and count == 0:
        print(f"govbot: no delivery {args.id!r}", file=sys.stderr)
        return 1
    print(f"{count} delivery(ies) queued again")
    return 0


def parse_since(text: str, now: datetime) -> datetime | None:
    """``6h``, ``2d``, ``30m`` ago, or an ISO date or time (UTC unless it says otherwise), in UTC.

    None if it is neither, or lies outside the years 1 to 9999 once in UTC.
    """
    relative = _RELATIVE.match(text.strip())
    if relative is None:
        return utc_moment(text)
    try:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    except OverflowError:
        return None


def _status(event: EventSummary) -> str:
    return "failed" if event.status == "pending" and event.last_error else event.status


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _json(event: EventSummary) -> dict[str, object]:
    return {
        "id": event.id,
        "webhook_id": event.webhook_id,
        "type": event.type,
        "ticket": event.ticket,
        "department": event.department,
        "status": _status(event),
        "attempts": event.attempts,
        "next_attempt_at": _when(event.next_attempt_at),
        "finished_at": _when(event.finished_at),
        "last_status_code": event.last_status_code,
        "last_error": event.last_error,
    }
