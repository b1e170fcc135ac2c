"""`govbot audit …`: verify the hash chain of the audit log; show the records of a citizen or department."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from bot.commands.tables import add_format, render_csv, render_json, render_table
from bot.config import Settings
from storage import db
from storage.audit import AuditEntry, AuditKind, AuditLog, AuditUnreadable, Verification, parse_citizen_ref
from storage.numbers import whole_number

COLUMNS = ("id", "at", "kind", "citizen", "department", "ticket", "fields", "basis", "details")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("audit", help="the append-only audit log of disclosures", parents=[common])
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = sub.add_parser(
        "verify", help="check the hash chain; exit code 1 names the first broken record", parents=[common]
    )
    p.add_argument(
        "--earlier", metavar="COUNT:HASH", type=_earlier,
        help="the records and head hash an earlier verify printed: exit 1 if the log no longer holds them",
    )  # fmt: skip
    p.set_defaults(handler=verify_command)
    p = sub.add_parser(
        "show", help="records of one citizen or one department (or all), newest first", parents=[common]
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--citizen", metavar="REF", help="the pseudonymous citizen reference, e.g. C42")
    who.add_argument("--department", metavar="CODE", help="a department code, e.g. TAX")
    p.add_argument("--kind", choices=[k.value for k in AuditKind], help="only records of this kind")
    p.add_argument("--limit", type=_limit, default=100, help="at most this many records (default 100)")
    add_format(p)
    p.set_defaults(handler=show_command)


def verify_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Walk the whole chain; 0 when intact, 1 with the first broken record."""

    async def go() -> Verification:
        async with db.connected(settings().database_url) as engine, db.sessionmaker(engine)() as session:
            return await AuditLog(session).verify(earlier=args.earlier)

    result = asyncio.run(go())
    if result.ok:
        print(f"audit log intact: {result.checked} records; head hash {result.head_hash}")
        earlier = f"--earlier {result.checked}:{result.head_hash}"
        print(f"keep a copy outside the database, to check later: govbot audit verify {earlier}")
        return 0
    before = "may have been rewritten too" if result.rewritten else "are intact"
    print(
        f"govbot: audit log BROKEN at record {result.broken_id}: {result.problem} "
        f"({result.checked} records before it {before})",
        file=sys.stderr,
    )
    return 1


def show_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the records of a citizen or a department."""
    citizen = None
    if args.citizen is not None:
        citizen = parse_citizen_ref(args.citizen)
        if citizen is None:
            print(f"govbot: {args.citizen[:40]!r} is not a citizen reference like C42", file=sys.stderr)
            return 2

    async def go() -> list[AuditEntry]:
        async with db.connected(settings().database_url) as engine, db.sessionmaker(engine)() as session:
            return await AuditLog(session).search(
                citizen=citizen, department=args.department, kind=args.kind, limit=args.limit
            )

    try:
        entries = asyncio.run(go())
    except AuditUnreadable as unreadable:
        message = f"govbot: audit log BROKEN: {unreadable}; `govbot audit verify` checks the rest"
        print(message, file=sys.stderr)
        return 1
    print(render_entries(entries, args.format))
    return 0


def render_entries(entries: list[AuditEntry], output: str) -> str:
    """The records as a table, CSV or JSON."""
    if output == "json":
        return render_json({"records": [entry.to_json() for entry in entries]})
    rows = [_row(entry) for entry in entries]
    if output == "csv":
        return render_csv(COLUMNS, rows)
    return render_table(COLUMNS, rows) if rows else "no audit records"


def _row(entry: AuditEntry) -> tuple[object, ...]:
    basis, details = _pairs(entry.basis), _pairs(entry.details)
    return (
        entry.id,
        entry.at.strftime("%Y-%m-%d %H:%M:%S"),
        entry.kind,
        entry.citizen_ref,
        entry.department,
        entry.ticket,
        ",".join(entry.fields) or None,
        basis or None,
        details or None,
    )


def _pairs(values: dict[str, Any]) -> str:
    """``key=value, …``; a nested value as compact JSON, not Python's repr (an erasure's counts, say)."""
    return ", ".join(
        f"{key}={json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(',', ':'))}"
        if isinstance(value, dict | list) else f"{key}={value}"
        for key, value in sorted(values.items())
    )


def _earlier(text: str) -> tuple[int, str]:
    count, _, head_hash = text.strip().lower().partition(":")
    number = whole_number(count, 0, 2**63 - 1)
    if number is None or len(head_hash) != 64 or head_hash.strip("0123456789abcdef"):
        raise argparse.ArgumentTypeError("must be COUNT:HASH as an earlier `govbot audit verify` printed it")
    return number, head_hash


def _limit(text: str) -> int:
    value = whole_number(text, 1, 100_000)
    if value is None:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 100000")
    return value
