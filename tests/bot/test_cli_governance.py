"""`govbot audit`, `clearance`, `retention run` and `report stats` as operators run them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.cli import main
from bot.commands.audit import render_entries
from storage import db
from storage.audit import AuditEntry, AuditKind, AuditLog
from storage.citizens import CitizenRepository
from storage.departments import DepartmentRepository

NOW = datetime.now(UTC)


@pytest.fixture
def database(cli_database: str) -> str:
    url = cli_database

    async def seed() -> None:
        engine = db.create_engine(url)
        try:
            await db.upgrade(engine)
            async with db.sessionmaker(engine).begin() as session:
                await DepartmentRepository(session).add("TAX", {"en": "Tax Bureau"}, now=NOW)
                me = await CitizenRepository(session).get_or_create(
                    "test", "42", now=NOW - timedelta(days=400)
                )
                await CitizenRepository(session).record_message(
                    me.id, "in", "old", now=NOW - timedelta(days=400)
                )
            for number in range(3):
                async with db.sessionmaker(engine).begin() as session:
                    await AuditLog(session).append(
                        AuditKind.DISCLOSURE,
                        now=NOW,
                        citizen=f"C{number}",
                        department="TAX",
                        fields=["free_text"],
                    )
        finally:
            await engine.dispose()

    asyncio.run(seed())
    return url


def tamper(url: str, sql: str) -> None:
    async def go() -> None:
        engine = db.create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DROP TRIGGER audit_records_append_only_UPDATE"))
                await conn.execute(text("DROP TRIGGER audit_records_append_only_DELETE"))
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_audit_verify_passes_an_intact_log(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify"]) == 0
    assert "intact: 3 records" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sql", "record"),
    [
        ("UPDATE audit_records SET department = 'LAND' WHERE id = 2", 2),
        ("DELETE FROM audit_records WHERE id = 2", 2),
        ("DELETE FROM audit_records WHERE id = 3", 3),
        ("DELETE FROM audit_records WHERE id >= 2", 2),
        ("UPDATE audit_head SET last_id = 2", 3),
        ("UPDATE audit_head SET last_hash = 'f'", 3),
    ],
)
def test_audit_verify_names_the_first_broken_record(
    database: str, capsys: pytest.CaptureFixture[str], sql: str, record: int
) -> None:
    tamper(database, sql)
    assert main(["audit", "verify"]) == 1
    assert f"BROKEN at record {record}" in capsys.readouterr().err


def test_audit_show_by_citizen_or_department(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "show", "--citizen", "c1"]) == 0
    out = capsys.readouterr().out
    assert "C1" in out
    assert "C2" not in out
    assert main(["audit", "show", "--department", "TAX", "--format", "json"]) == 0
    assert [r["citizen"] for r in json.loads(capsys.readouterr().out)["records"]] == ["C2", "C1", "C0"]
    assert main(["audit", "show", "--citizen", "zhang"]) == 2
    with pytest.raises(SystemExit):
        main(["audit", "show", "--citizen", "C1", "--department", "TAX"])


def test_clearance_set_and_list(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clearance", "list"]) == 0
    assert "TAX" in capsys.readouterr().out
    assert main(["clearance", "set", "TAX", "sensitive"]) == 0
    assert "personal → sensitive" in capsys.readouterr().out
    assert main(["clearance", "set", "NOPE", "internal"]) == 1
    with pytest.raises(SystemExit):
        main(["clearance", "set", "TAX", "public"])
    assert main(["audit", "show", "--department", "TAX", "--kind", "clearance"]) == 0
    assert "sensitive" in capsys.readouterr().out


def test_retention_dry_run_then_run(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retention", "run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would purge" in out
    assert "messages" in out
    assert main(["retention", "run"]) == 0
    assert "purged" in capsys.readouterr().out
    assert main(["retention", "run", "--dry-run"]) == 0
    assert "total                   0" in capsys.readouterr().out


def test_report_stats_prints_the_public_figures(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "stats", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["questions_asked"] == {"value": None, "suppressed": True}
    assert main(["report", "stats"]) == 0
    assert "suppressed" in capsys.readouterr().out


def test_staff_reports_of_citizens_texts_are_audited_as_exports(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "feedback"]) == 0
    assert main(["report", "unanswered"]) == 0
    capsys.readouterr()
    assert main(["audit", "show", "--kind", "export", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert [r["details"]["what"] for r in records] == ["report unanswered", "report feedback"]
    assert main(["audit", "verify"]) == 0


def test_audit_tables_show_nested_details_as_json_not_python() -> None:
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    details = {"erased": {"messages": 3, "cases": 1}, "parts": ["chat", "cases"]}
    erased = AuditEntry(7, at, "erasure", "C42", None, None, (), {"request": "citizen"}, details, "0", "1")
    [row] = list(csv.DictReader(io.StringIO(render_entries([erased], "csv"))))
    assert row["details"] == 'erased={"cases":1,"messages":3}, parts=["chat","cases"]'
    assert row["basis"] == "request=citizen"


def test_audit_csv_cells_are_text_a_spreadsheet_does_not_run() -> None:
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    export = AuditEntry(8, at, "export", None, "@TAX", None, (), {}, {"what": "report"}, "0", "1")
    text = render_entries([export], "csv")
    [row] = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert (row[0], row[4], row[8]) == ("8", "'@TAX", "what=report")
    assert text.splitlines()[1].startswith('8,"2026-11-23 09:30:00","export"')  # the id stays a number


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE audit_records SET details = '{not json' WHERE id = 2", "its details cannot be read"),
        ("UPDATE audit_records SET at = 'yesterday' WHERE id = 2", "its time cannot be read"),
    ],
)
def test_a_record_edited_in_the_sqlite_shell_is_named_without_a_traceback(
    database: str, capsys: pytest.CaptureFixture[str], sql: str, problem: str
) -> None:
    tamper(database, sql)
    assert main(["audit", "verify"]) == 1
    assert f"BROKEN at record 2: record 2 was altered ({problem})" in capsys.readouterr().err
    assert main(["audit", "show"]) == 1
    assert capsys.readouterr().err == (
        f"govbot: audit log BROKEN: record 2 was altered ({problem}); `govbot audit verify` checks the rest\n"
    )


def test_audit_verify_against_an_earlier_head_catches_a_log_cut_back_with_its_head(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify"]) == 0
    later = capsys.readouterr().out.splitlines()[-1].split("govbot ", 1)[1]
    assert later.startswith("audit verify --earlier 3:")
    tamper(database, "DELETE FROM audit_records WHERE id = 3")
    tamper_head = (
        "UPDATE audit_head SET last_id = 2, last_hash = (SELECT hash FROM audit_records WHERE id = 2)"
    )
    asyncio.run(_execute(database, tamper_head))
    assert main(["audit", "verify"]) == 0  # the chain alone holds together
    capsys.readouterr()
    assert main(later.split()) == 1
    assert capsys.readouterr().err == (
        "govbot: audit log BROKEN at record 3: the log ends at record 2; an earlier verify saw 3 (cut back) "
        "(2 records before it may have been rewritten too)\n"
    )
    with pytest.raises(SystemExit):
        main(["audit", "verify", "--earlier", "3:not-a-hash"])
    assert "must be COUNT:HASH" in capsys.readouterr().err


async def _execute(url: str, sql: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
