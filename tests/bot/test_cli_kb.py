"""`govbot db …` and `govbot kb …` as an operator runs them, on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from storage import db
from storage.suggestions import SuggestionRepository, phrasing
from tests.conftest import REPO, SAMPLE_KB, SHARED_EVAL, clear_govbot_settings

ENTRY = """\
entries:
  - id: {id}
    category: tax
    department: TAX
    question: {{en: How do I pay property tax?, zh: 房产税怎么交？}}
    alternatives:
      en: [pay property tax, property tax payment, house tax]
      zh: [交房产税, 房产税缴纳, 房屋税]
    answer: {{en: {answer}, zh: 在税务网站缴纳。}}
"""
DEPARTMENTS = """\
departments:
  - code: TAX
    name: {en: Tax Bureau, zh: 税务局}
categories:
  - code: tax
    name: {en: Tax, zh: 税务}
"""


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    clear_govbot_settings(monkeypatch)
    path = tmp_path / "var" / "govbot.db"
    monkeypatch.setenv("GOVBOT_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


def write_kb(folder: Path, answer: str = "Pay online.", entry_id: str = "tax-pay") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    (folder / "tax.yaml").write_text(ENTRY.format(id=entry_id, answer=answer), encoding="utf-8")
    return folder


def test_db_upgrade_creates_the_sqlite_database(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert database.exists()
    assert main(["db", "current"]) == 0
    out = capsys.readouterr().out
    assert "database at revision" in out


@pytest.mark.parametrize("command", [
    ["audit", "verify"], ["audit", "show"], ["db", "current"], ["clearance", "list"], ["retention", "run"],
    ["report", "stats"], ["kb", "export", "out.yaml"], ["kb", "suggestions"], ["deliveries", "list"],
    ["departments", "list"], ["kb", "import", "--dry-run", str(SAMPLE_KB)],
])
def test_staff_commands_refuse_a_database_file_that_is_not_there(
    command: list[str], database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped path must not be reported on as an empty, intact database (nor be made by the look)."""
    assert main(command) == 1
    assert f"no database at {database}" in capsys.readouterr().err
    assert not database.exists()


def test_the_first_import_creates_the_database(database: Path) -> None:
    assert main(["kb", "import", str(SAMPLE_KB)]) == 0
    assert database.exists()


@pytest.mark.parametrize("command", [["audit", "verify"], ["db", "upgrade"]])
def test_a_database_newer_than_this_govbot_is_refused_without_advice_to_migrate(
    command: list[str], database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    capsys.readouterr()
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.startswith("govbot: database error: ")
    assert err.count("\n") == 1
    assert "revision ffffffffffff, which this govbot does not know" in err
    assert "db upgrade" not in err


def test_a_database_failing_the_work_itself_is_one_line_not_a_traceback(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE departments RENAME TO departments_old")  # as a half-restored database
    capsys.readouterr()
    assert main(["clearance", "list"]) == 1
    err = capsys.readouterr().err
    assert err == "govbot: database error: OperationalError: no such table: departments\n"


def test_sample_import_export_import_reports_no_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kb", "import", str(SAMPLE_KB)]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert " created, 0 updated, 0 unchanged" in first
    for fmt in ("yaml", "csv", "jsonl"):
        out = tmp_path / f"export.{fmt}"
        assert main(["kb", "export", "--format", fmt, str(out)]) == 0
        # CSV carries entries only; the sample's departments and categories come from its YAML.
        paths = [str(out), str(SAMPLE_KB / "departments.yaml")] if fmt == "csv" else [str(out)]
        capsys.readouterr()
        assert main(["kb", "import", *paths]) == 0
        assert capsys.readouterr().out.splitlines()[-1].startswith("no changes"), fmt


@pytest.mark.parametrize("answer", ["- bring your ID", "+86 10 1234 5678", "=SUM(A1)", "@home", "'-"])
def test_a_csv_export_of_answers_that_look_like_formulas_imports_back_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: str
) -> None:
    assert main(["kb", "import", str(write_kb(tmp_path / "kb", answer=json.dumps(answer)))]) == 0
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert main(["kb", "export", str(first)]) == 0
    assert f"\"'{answer}\"" in first.read_text(encoding="utf-8-sig")  # text to a spreadsheet
    capsys.readouterr()
    assert main(["kb", "import", str(first), str(tmp_path / "kb" / "departments.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("no changes")
    assert main(["kb", "export", str(second)]) == 0
    assert second.read_bytes() == first.read_bytes()


def test_an_export_that_cannot_be_written_says_why_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb"
    write_kb(kb)
    (kb / "tax.yaml").write_text(
        ENTRY.format(id="tax-pay", answer="Pay online.").replace("house tax", "tax | fee"), encoding="utf-8"
    )
    assert main(["kb", "import", str(kb)]) == 0
    capsys.readouterr()
    assert main(["kb", "export", str(tmp_path / "out.csv")]) == 1  # "a | b" cannot be a CSV phrase
    assert "keep this entry in YAML or JSON Lines" in capsys.readouterr().err
    assert main(["kb", "export", str(tmp_path / "missing" / "folder" / "out.yaml")]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert main(["kb", "export", str(tmp_path / "out.txt")]) == 2
    assert "--format yaml|csv|jsonl" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "fmt"), [
    ("out.csv", "yaml"), ("out.yaml", "csv"), ("OUT.YML", "jsonl"), ("out.jsonl", "csv"),
    ("out.json", "yaml"),
    ("out.json", "jsonl"),  # a JSON Lines file named .json is neither read as JSON nor imported
])
def test_an_export_whose_format_contradicts_the_file_name_is_refused(
    tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str], name: str, fmt: str
) -> None:
    """The file would not import again: the importer goes by the extension."""
    assert main(["kb", "export", "--format", fmt, str(tmp_path / name)]) == 2
    [message] = capsys.readouterr().err.splitlines()
    assert f"--format {fmt}" in message
    assert not (tmp_path / name).exists()
    assert not database.exists()


def test_an_export_format_is_taken_for_a_name_without_extension_or_stdout(tmp_path: Path) -> None:
    assert main(["kb", "import", str(write_kb(tmp_path / "kb"))]) == 0
    assert main(["kb", "export", "--format", "csv", str(tmp_path / "kb-export")]) == 0
    assert (tmp_path / "kb-export").read_text(encoding="utf-8-sig").startswith("id,")
    assert main(["kb", "export", "--format", "csv", str(tmp_path / "kb.CSV")]) == 0
    export = [sys.executable, "-m", "bot.cli", "kb", "export", "--format", "jsonl", "/dev/stdout"]
    done = subprocess.run(export, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    assert '"tax-pay"' in done.stdout


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_that_fails_leaves_the_file_it_would_replace_as_it_was(
    tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    assert main(["kb", "import", str(write_kb(tmp_path / "kb"))]) == 0
    with sqlite3.connect(database) as conn:  # half an emoji, as an import before 5658f8d let through
        conn.execute("UPDATE kb_entries SET data = replace(data, 'Pay online.', 'Pay online \\ud83d')")
    out = tmp_path / f"kb.{fmt}"
    out.write_text("last week's export\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["kb", "export", str(out)]) == 1
    [message] = capsys.readouterr().err.splitlines()
    assert "entry 'tax-pay' holds half of a character (U+D83D" in message
    assert out.read_text(encoding="utf-8") == "last week's export\n"
    assert main(["kb", "export", str(tmp_path / "kb.yaml")]) == 0  # the way to correct it
    assert '"Pay online \\uD83D"' in (tmp_path / "kb.yaml").read_text(encoding="utf-8")


def test_an_export_cut_short_by_a_full_disk_leaves_the_earlier_export_whole(
    tmp_path: Path, database: Path
) -> None:
    """A file-size limit stands in for a full disk: the write fails part of the way through."""
    assert main(["kb", "import", str(SAMPLE_KB)]) == 0
    out = tmp_path / "kb.yaml"
    out.write_text("last week's export\n", encoding="utf-8")
    out.chmod(0o640)

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))  # the export is about 160 kB

    export = [sys.executable, "-m", "bot.cli", "kb", "export", str(out)]
    done = subprocess.run(export, capture_output=True, text=True, cwd=REPO, preexec_fn=small_files,  # noqa: S603
                          timeout=120, check=False)
    assert done.returncode == 1
    assert f"cannot write {out}" in done.stderr
    assert out.read_text(encoding="utf-8") == "last week's export\n"
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".kb.yaml")] == []
    assert main(["kb", "export", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o640  # replaced, keeping who may read it
    assert "entries:" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("redirect", ["w", "a"])
@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_an_export_to_standard_output_redirected_to_a_file_goes_into_that_file(
    tmp_path: Path, database: Path, name: str, redirect: str
) -> None:
    # `govbot kb export --format jsonl /dev/stdout >> kb.jsonl`: the file the shell opened is written
    # through, after what it holds (>>); the summary goes to standard error, out of the export.
    assert main(["kb", "import", str(SAMPLE_KB)]) == 0
    out = tmp_path / "kb.jsonl"
    out.write_text("an earlier line\n", encoding="utf-8")
    with out.open(redirect, encoding="utf-8") as shell:
        export = [sys.executable, "-m", "bot.cli", "kb", "export", "--format", "jsonl", name]
        done = subprocess.run(export, stdout=shell, stderr=subprocess.PIPE, text=True, cwd=REPO,  # noqa: S603
                              timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    exported = lines[1:] if redirect == "a" else lines
    assert lines[0] == "an earlier line" if redirect == "a" else lines[0] != "an earlier line"
    assert len(exported) > 10
    assert all(json.loads(line) for line in exported)
    assert done.stderr.startswith("wrote ")


def test_an_accepted_phrasing_with_a_pipe_between_spaces_leaves_the_csv_export_working(
    tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CSV separates phrasings with " | ": a citizen's pipe must not make the knowledge base unexportable."""
    assert main(["kb", "import", str(write_kb(tmp_path / "kb"))]) == 0

    async def pick() -> int | None:
        async with db.connected(f"sqlite+aiosqlite:///{database}") as engine, \
                db.sessionmaker(engine).begin() as session:
            return await SuggestionRepository(session).record_pick("pay my property tax | online", "tax-pay")

    suggestion = asyncio.run(pick())
    assert main(["kb", "suggestions", "accept", str(suggestion)]) == 0
    capsys.readouterr()
    out = tmp_path / "kb.csv"
    assert main(["kb", "export", str(out)]) == 0, capsys.readouterr().err
    assert "house tax | pay my property tax online" in out.read_text(encoding="utf-8-sig")
    assert phrasing("pay my property tax |? |") is None  # a pipe left alone once "?" goes: not a phrasing


def test_import_dry_run_shows_changes_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = write_kb(tmp_path / "kb")
    assert main(["kb", "import", str(kb)]) == 0
    write_kb(kb, answer="Pay at the bank.")
    assert main(["kb", "import", "--dry-run", str(kb)]) == 0
    out = capsys.readouterr().out
    assert "~ tax-pay (answer)" in out
    assert "dry run, nothing written: 0 created, 1 updated" in out
    export = tmp_path / "out.jsonl"
    main(["kb", "export", str(export)])
    lines = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert [line["answer"]["en"] for line in lines if line.get("id") == "tax-pay"] == ["Pay online."]


def test_malformed_yaml_names_the_file_and_line_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = write_kb(tmp_path / "kb")
    assert main(["kb", "import", str(kb)]) == 0
    (kb / "broken.yaml").write_text("entries:\n  - id: x\n    question: {en: [unclosed\n", encoding="utf-8")
    write_kb(kb, answer="Changed answer.")
    capsys.readouterr()
    assert main(["kb", "import", str(kb)]) == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err
    assert "broken.yaml:" in err
    assert main(["kb", "import", "--dry-run", str(kb / "tax.yaml"), str(kb / "departments.yaml")]) == 0
    assert "~ tax-pay (answer)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    ["kb", "lint"], ["kb", "ask", "How do I pay?", "--kb"], ["kb", "eval", "--cases", "cases.jsonl", "--kb"],
])
def test_a_read_only_command_refusing_files_does_not_speak_of_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Saying "nothing was changed" of a command that never writes suggests it might have."""
    kb = write_kb(tmp_path / "kb")
    (kb / "broken.yaml").write_text("entries:\n  - id: x\n    question: {en: [unclosed\n", encoding="utf-8")
    assert main([*command, str(kb)]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml:" in err
    assert "problem(s) in the knowledge-base files" in err
    assert "changed" not in err


def test_duplicate_ids_across_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = write_kb(tmp_path / "kb")
    (kb / "copy.yaml").write_text(ENTRY.format(id="tax-pay", answer="Other."), encoding="utf-8")
    assert main(["kb", "import", str(kb)]) == 1
    err = capsys.readouterr().err
    assert "tax-pay" in err
    assert "copy.yaml" in err
    assert "tax.yaml" in err


def test_an_entry_whose_department_exists_nowhere_is_refused_with_its_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its citizens could never be put through to anyone; a department already configured is enough."""
    kb = write_kb(tmp_path / "kb")
    assert main(["kb", "import", str(kb)]) == 0  # TAX is now in the database
    later = tmp_path / "later"
    later.mkdir()
    (later / "roads.yaml").write_text(
        ENTRY.format(id="road-pay", answer="Pay.").replace("department: TAX", "department: ROADS"),
        encoding="utf-8",
    )
    (later / "tax.yaml").write_text(ENTRY.format(id="tax-later", answer="Pay."), encoding="utf-8")
    capsys.readouterr()
    assert main(["kb", "import", str(later)]) == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err
    assert f"{later / 'roads.yaml'}:2: department: unknown department 'ROADS'" in err
    assert "tax-later" not in err
    assert main(["kb", "import", str(later / "tax.yaml")]) == 0  # TAX, from the first import, is known
    assert "1 created" in capsys.readouterr().out


def test_an_entry_without_a_question_is_refused_with_its_file_and_line(
    tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The topic list shows an entry by its question: without one it was a blank button."""
    kb = write_kb(tmp_path / "kb")
    (kb / "draft.yaml").write_text(
        "entries:\n  - id: tax-draft\n    category: tax\n    department: TAX\n"
        "    answer: {en: Pay online.}\n", encoding="utf-8")
    for dry_run in (["--dry-run"], []):
        assert main(["kb", "import", *dry_run, str(kb)]) == 1
        assert capsys.readouterr().err.splitlines()[1:] == [
            f"  {kb / 'draft.yaml'}:2: question: missing: an entry needs its question in at least one "
            "language"
        ]
    assert not database.exists()


@pytest.mark.parametrize("command", [
    ["kb", "import", ""], ["kb", "lint", " "], ["kb", "export", ""], ["kb", "ask", "tax", "--kb", ""],
    ["kb", "eval", "--kb", str(SAMPLE_KB), "--cases", ""],
])
def test_an_empty_path_is_a_usage_error_not_the_working_directory(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    assert "an empty path was given" in capsys.readouterr().err


def test_an_evaluation_without_cases_fails_instead_of_reporting_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "cases.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    assert main(["kb", "eval", "--kb", str(SAMPLE_KB), "--cases", str(empty)]) == 1
    assert f"{empty}: no cases" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", '{"kind": "synonyms", "terms": ["tax", "levy"]}\n'])
def test_an_evaluation_without_entries_fails_instead_of_reporting_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    kb = tmp_path / "kb.jsonl"
    kb.write_text(content, encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"query": "pay tax", "lang": "en", "relevant": ["tax-pay"]}\n', encoding="utf-8")
    assert main(["kb", "eval", "--kb", str(kb), "--cases", str(cases)]) == 1
    captured = capsys.readouterr()
    assert f"the knowledge base in {kb} has no entries; nothing to evaluate" in captured.err
    assert captured.out == ""


def test_an_evaluation_names_the_cases_whose_entries_the_knowledge_base_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cases labelled against another knowledge base: every one a miss, which the figures alone hide.
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"query": "renew my identity card", "lang": "en", "relevant": ["civil-registry-id-card-renew"]}\n'
        '{"query": "vaccine side effects", "lang": "en", "relevant": ["so-65", "so-66"]}\n'
        '{"query": "the moon festival", "lang": "en", "relevant": []}\n',
        encoding="utf-8",
    )
    assert main(["kb", "eval", "--kb", str(SAMPLE_KB), "--cases", str(cases)]) == 0
    warning = f"govbot: warning: 1 case(s) in {cases} name entries not in the knowledge base: so-65, so-66"
    assert warning in capsys.readouterr().err


def test_gbk_csv_is_refused_with_an_encoding_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "kb.csv"
    csv.write_bytes(
        "id,category,department,question_en,question_zh,answer_en,answer_zh\n"
        "a,tax,TAX,Pay tax?,怎么交税,Online.,网上缴纳。\n".encode("gbk")
    )
    assert main(["kb", "import", str(csv)]) == 1
    err = capsys.readouterr().err
    assert "kb.csv" in err
    assert "UTF-8" in err


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+asyncpg://govbot:hunter2@127.0.0.1:1/govbot", "postgresql+asyncpg://govbot:***@127.0.0.1:1/govbot"),
    # asyncpg also takes the password as a parameter, which spares encoding its special characters
    ("postgresql+asyncpg://govbot@127.0.0.1:1/govbot?password=hunter2",
     "postgresql+asyncpg://govbot@127.0.0.1:1/govbot?password=***"),
])
def test_unreachable_database_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, shown: str
) -> None:
    monkeypatch.setenv("GOVBOT_DATABASE_URL", url)
    assert main(["kb", "import", str(write_kb(tmp_path / "kb"))]) == 1
    err = capsys.readouterr().err
    assert f"database error: cannot reach {shown}" in err
    assert "hunter2" not in err


def test_lint_passes_on_the_sample_and_fails_on_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kb", "lint", str(SAMPLE_KB)]) == 0
    kb = write_kb(tmp_path / "kb", answer="x" * 5000)
    assert main(["kb", "lint", str(kb)]) == 1
    assert "4096" in capsys.readouterr().out


def test_delete_takes_entries_out_all_or_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = write_kb(tmp_path / "kb")
    assert main(["kb", "import", str(kb)]) == 0
    assert main(["kb", "delete", "no-such-entry", "tax-pay"]) == 1
    assert "no entry no-such-entry in the knowledge base; nothing was deleted" in capsys.readouterr().err
    exported = tmp_path / "out.jsonl"
    assert main(["kb", "export", str(exported)]) == 0
    assert "tax-pay" in exported.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["kb", "delete", "tax-pay"]) == 0
    assert capsys.readouterr().out.startswith("- tax-pay\ndeleted 1 entries")
    assert main(["kb", "export", str(exported)]) == 0
    assert "tax-pay" not in exported.read_text(encoding="utf-8")
    assert main(["kb", "delete", "tax-pay"]) == 1  # already gone
    assert main(["kb", "import", str(kb)]) == 0  # and the files bring it back
    assert main(["kb", "export", str(exported)]) == 0
    assert "tax-pay" in exported.read_text(encoding="utf-8")


def test_lint_of_one_file_knows_the_departments_the_database_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = write_kb(tmp_path / "kb")
    tax = str(kb / "tax.yaml")
    assert main(["kb", "lint", tax]) == 1  # no database yet: TAX is defined nowhere
    out = capsys.readouterr().out
    assert "unknown department 'TAX'" in out
    assert "departments checked against the files alone: no database at" in out
    assert main(["kb", "import", str(kb)]) == 0
    capsys.readouterr()
    assert main(["kb", "lint", tax]) == 0  # as `kb import` of that file would accept it
    assert "unknown department" not in capsys.readouterr().out


def test_ask_prints_the_decision_and_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "ask", "身份证丢了怎么办", "--lang", "zh", "--kb", str(SAMPLE_KB)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("decision: ")
    assert "candidates:" in out
    assert main(["kb", "ask", "how do I renew my identity card", "--kb", str(SAMPLE_KB), "--json"]) == 0
    match = json.loads(capsys.readouterr().out)
    assert match["decision"] in {"answer", "clarify", "none"}


def test_ask_on_an_empty_knowledge_base_says_so_instead_of_matching(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["kb", "ask", "身份证丢了怎么办"]) == 1
    err = capsys.readouterr().err
    assert "no entries" in err
    assert "govbot kb import" in err


def test_eval_prints_the_json_report_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "kb",
                "eval",
                "--kb",
                str(SHARED_EVAL / "zh" / "kb.jsonl"),
                "--cases",
                str(SHARED_EVAL / "zh" / "dev.jsonl"),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    for key in (
        "top1",
        "recall_at_3",
        "mrr_at_10",
        "answerable",
        "no_answer",
        "latency_ms",
        "n_cases",
        "n_entries",
    ):
        assert key in report
    assert report["n_cases"] == 158
    assert report["n_entries"] == 90
    for share in ("answered_correct", "clarify_relevant", "wrong_answer", "refused"):
        assert share in report["answerable"]
        assert share in report["no_answer"]


def test_invalid_setting_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVBOT_HTTP_PORT", "eighty")
    assert main(["db", "upgrade"]) == 2
    assert "GOVBOT_HTTP_PORT" in capsys.readouterr().err


def test_a_reader_that_goes_away_stops_the_command_quietly() -> None:
    # `govbot kb ask … | head`: the pipe is closed before the command writes.
    command = [sys.executable, "-m", "bot.cli", "kb", "ask", "identity card", "--kb", str(SAMPLE_KB)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)  # noqa: S603
    assert process.stdout is not None
    process.stdout.close()
    _, errors = process.communicate(timeout=60)
    assert errors.decode() == ""
    assert process.returncode == 128 + signal.SIGPIPE


AHEAD, BEHIND = "Etc/GMT-14", "Etc/GMT+12"
"""UTC+14 and UTC-12: 26 hours apart, so their calendars never show the same day."""


@pytest.mark.parametrize(("zone", "expired"), [(AHEAD, True), (BEHIND, False)])
def test_lint_ask_and_eval_take_today_from_the_desks_calendar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    zone: str, expired: bool,
) -> None:
    kb = write_kb(tmp_path / "kb")
    last_day = datetime.now(ZoneInfo(BEHIND)).date()
    with (kb / "tax.yaml").open("a", encoding="utf-8") as file:
        file.write(f"    valid_until: {last_day}\n")
    monkeypatch.setenv("GOVBOT_TIMEZONE", zone)
    assert main(["kb", "lint", str(kb)]) == 0
    assert (f"expired on {last_day}" in capsys.readouterr().out) is expired
    assert main(["kb", "ask", "How do I pay property tax?", "--kb", str(kb), "--json"]) == 0
    assert (json.loads(capsys.readouterr().out)["decision"] == "answer") is not expired
    cases = tmp_path / "cases.jsonl"
    case = {"query": "How do I pay property tax?", "lang": "en", "relevant": ["tax-pay"]}
    cases.write_text(json.dumps(case))
    assert main(["kb", "eval", "--kb", str(kb), "--cases", str(cases), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == (0.0 if expired else 1.0)
