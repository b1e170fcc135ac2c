"""`govbot departments …` as an operator runs it, on a SQLite file."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot.cli import main
from storage import db
from storage.departments import DepartmentProfile, DepartmentRepository

IMPORT = """\
departments:
  - code: TRANSPORT
    name: {en: Transport Bureau, zh: 交通局}
    webhook_url: https://transport.example.gov/govbot-events
    secrets: [%s]
    categories: [transport]
  - code: TAX
    name: {en: Tax Bureau, zh: 税务局}
    categories: [tax]
    ticket_prefix: TX
"""
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def database(cli_database: str) -> str:
    return cli_database


def stored(url: str, code: str) -> DepartmentProfile | None:
    async def go() -> DepartmentProfile | None:
        async with db.connected(url) as engine, db.sessionmaker(engine)() as session:
            return await DepartmentRepository(session).get(code)

    return asyncio.run(go())


def by_token(url: str, token: str) -> str | None:
    async def go() -> str | None:
        async with db.connected(url) as engine, db.sessionmaker(engine)() as session:
            found = await DepartmentRepository(session).by_token(token)
            return found.code if found else None

    return asyncio.run(go())


def shown_once(output: str, what: str) -> str:
    match = re.search(rf"{what} \(shown once, store it now\): (\S+)", output)
    assert match, output
    return match.group(1)


def test_add_prints_a_token_and_secret_once_and_stores_only_the_tokens_hash(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "departments",
            "add",
            "TRANSPORT",
            "--name",
            "en=Transport Bureau",
            "--name",
            "zh=交通局",
            "--category",
            "transport",
            "--ticket-prefix",
            "TR",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    token, secret = shown_once(out, "API token"), shown_once(out, "signing secret")
    assert by_token(database, token) == "TRANSPORT"
    department = stored(database, "TRANSPORT")
    assert department is not None
    assert department.secrets == (secret,)
    assert department.name == {"en": "Transport Bureau", "zh": "交通局"}
    assert main(["departments", "list"]) == 0
    listing = capsys.readouterr().out
    assert "TRANSPORT" in listing
    assert token not in listing
    assert secret not in listing
    assert "no endpoint" in listing


def test_list_as_json_never_shows_secrets(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["departments", "add", "TAX", "--name", "en=Tax Bureau"])
    capsys.readouterr()
    assert main(["departments", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["secrets"] == 1
    assert listed["token"] is True
    assert listed["ticket_prefix"] == "TA"


def test_an_endpoint_at_the_cloud_metadata_address_is_refused_on_add(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["departments", "add", "TAX", "--webhook-url", "https://169.254.169.254/latest"])
    assert code == 1
    assert "link-local" in capsys.readouterr().err
    assert stored(database, "TAX") is None


BAD_HOSTS = ["https://a..b/hook", "https://xn--a.example/hook", f"https://{'a' * 64}.example/hook"]


@pytest.mark.parametrize("url", BAD_HOSTS)
def test_host_names_idna_refuses_are_not_urls_on_add_update_and_import(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    # These ended in a UnicodeError traceback from the IDNA codec.
    assert main(["departments", "add", "TAX", "--webhook-url", url]) == 1
    assert capsys.readouterr().err.startswith("govbot: not a URL: ")
    assert main(["departments", "add", "TAX"]) == 0
    capsys.readouterr()
    assert main(["departments", "update", "TAX", "--webhook-url", url]) == 1
    assert capsys.readouterr().err.startswith("govbot: not a URL: ")
    path = tmp_path / "departments.yaml"
    path.write_text(f"departments:\n  - code: TAX\n    name: {{en: Tax}}\n    webhook_url: {url}\n")
    assert main(["departments", "import", str(path)]) == 1
    assert "department #1: not a URL: " in capsys.readouterr().err
    department = stored(database, "TAX")
    assert department is not None
    assert department.webhook_url is None


def test_http_endpoints_need_the_testing_switch(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["departments", "add", "TAX", "--webhook-url", "http://127.0.0.1:9000/hook"]) == 1
    assert "https" in capsys.readouterr().err
    monkeypatch.setenv("GOVBOT_WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("GOVBOT_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    assert main(["departments", "add", "TAX", "--webhook-url", "http://127.0.0.1:9000/hook"]) == 0


def test_rotating_the_secret_signs_with_both_until_the_old_one_is_retired(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["departments", "add", "TAX"])
    old = shown_once(capsys.readouterr().out, "signing secret")
    assert main(["departments", "rotate-secret", "TAX"]) == 0
    new = shown_once(capsys.readouterr().out, "signing secret")
    department = stored(database, "TAX")
    assert department is not None
    assert department.secrets == (new, old)
    assert main(["departments", "rotate-secret", "TAX", "--retire-old"]) == 0
    department = stored(database, "TAX")
    assert department is not None
    assert department.secrets == (new,)


def test_rotating_the_token_invalidates_the_old_one(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["departments", "add", "TAX"])
    old = shown_once(capsys.readouterr().out, "API token")
    assert main(["departments", "rotate-token", "TAX"]) == 0
    new = shown_once(capsys.readouterr().out, "API token")
    assert by_token(database, old) is None
    assert by_token(database, new) == "TAX"


def test_unknown_department_is_a_clear_error(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["departments", "rotate-token", "MOON"]) == 1
    assert "no department 'MOON'" in capsys.readouterr().err
    assert main(["departments", "update", "MOON", "--disable"]) == 1


def test_update_with_nothing_to_change_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["departments", "update", "TAX"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    for option in ("--name", "--webhook-url", "--no-webhook", "--category", "--ticket-prefix", "--enable"):
        assert option in err


def test_import_adds_departments_and_issues_tokens_once(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "departments.yaml"
    path.write_text(IMPORT % SECRET, encoding="utf-8")
    assert main(["departments", "import", str(path)]) == 0
    captured = capsys.readouterr()
    assert "does not resolve" in captured.err  # example.gov: checked again at every delivery
    transport, tax = stored(database, "TRANSPORT"), stored(database, "TAX")
    assert transport is not None
    assert tax is not None
    assert transport.secrets == (SECRET,)
    assert transport.webhook_url == "https://transport.example.gov/govbot-events"
    assert transport.ticket_prefix == "TR"
    assert tax.ticket_prefix == "TX"
    assert by_token(database, shown_once(captured.out, "TAX API token")) == "TAX"
    assert main(["departments", "import", str(path)]) == 0
    again = capsys.readouterr().out
    assert "updated TRANSPORT" in again
    assert "API token" not in again


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (IMPORT % "not-a-secret", "signing secret starts with whsec_"),
        (IMPORT.replace("https://transport.example.gov", "https://10.0.0.1") % SECRET, "private"),
        (IMPORT.replace("categories: [tax]", "categories: [tax]\n    color: red") % SECRET, "unknown field"),
        (IMPORT.replace("code: TAX", "code: TRANSPORT") % SECRET, "appears twice"),
        ("departments: {TAX: 1}", "'departments' list"),
        ("departments: [", "cannot read"),
        ("departments: " + "[" * 5000 + "]" * 5000, "cannot read"),  # deeper than PyYAML can recurse
    ],
)
def test_an_import_with_any_problem_changes_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "departments.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["departments", "import", str(path)]) == 1
    assert problem in capsys.readouterr().err
    assert stored(database, "TAX") is None
    assert stored(database, "TRANSPORT") is None


def test_an_imported_code_or_name_of_digits_is_kept_as_typed(database: str, tmp_path: Path) -> None:
    """YAML 1.1 reads 0110 as the octal number 72: the import said "code is required" of a code
    `departments add 0110` takes, and refused the name of the 12345 hotline."""
    path = tmp_path / "departments.yaml"
    path.write_text("departments:\n  - {code: 0110, name: {en: 12345}}\n", encoding="utf-8")
    assert main(["departments", "import", str(path)]) == 0
    department = stored(database, "0110")
    assert department is not None
    assert department.name == {"en": "12345"}


def test_a_new_webhook_url_re_enables_an_endpoint_disabled_by_410(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["departments", "add", "TAX", "--webhook-url", "https://8.8.8.8/hook"])

    async def gone() -> None:
        async with db.connected(database) as engine, db.sessionmaker(engine).begin() as session:
            await DepartmentRepository(session).disable_webhook("TAX", "410 Gone")

    asyncio.run(gone())
    main(["departments", "list"])
    assert "DISABLED: 410 Gone" in capsys.readouterr().out
    assert main(["departments", "update", "TAX", "--webhook-url", "https://8.8.4.4/hook"]) == 0
    department = stored(database, "TAX")
    assert department is not None
    assert department.webhook_enabled


KB_NAMING_TRANSPORT = """\
departments:
  - code: TRANSPORT
    name: {en: Transport Bureau}
entries:
  - id: bus-pass
    department: TRANSPORT
    question: {en: How do I get a bus pass?}
    answer: {en: At any station.}
"""


def named_by_the_knowledge_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TRANSPORT as a knowledge-base import creates it: no token, no secret, no endpoint."""
    kb = tmp_path / "kb.yaml"
    kb.write_text(KB_NAMING_TRANSPORT, encoding="utf-8")
    assert main(["kb", "import", str(kb)]) == 0
    capsys.readouterr()


def test_import_gives_a_department_the_knowledge_base_created_a_secret_as_a_new_one_gets(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It got a token only, and every delivery failed with "has no signing secret".
    named_by_the_knowledge_base(tmp_path, capsys)
    path = tmp_path / "departments.yaml"
    path.write_text(IMPORT.replace("    secrets: [%s]\n", ""), encoding="utf-8")
    assert main(["departments", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "updated TRANSPORT" in out
    secret = shown_once(out, "TRANSPORT signing secret")
    transport = stored(database, "TRANSPORT")
    assert transport is not None
    assert transport.secrets == (secret,)
    assert by_token(database, shown_once(out, "TRANSPORT API token")) == "TRANSPORT"
    assert main(["departments", "import", str(path)]) == 0
    assert "shown once" not in capsys.readouterr().out
    transport = stored(database, "TRANSPORT")
    assert transport is not None
    assert transport.secrets == (secret,)


def test_an_endpoint_given_to_a_department_without_a_secret_comes_with_one(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    named_by_the_knowledge_base(tmp_path, capsys)
    assert main(["departments", "update", "TRANSPORT", "--disable"]) == 0
    assert "shown once" not in capsys.readouterr().out  # no endpoint: nothing to sign yet
    assert main(["departments", "update", "TRANSPORT", "--webhook-url", "https://8.8.8.8/hook"]) == 0
    secret = shown_once(capsys.readouterr().out, "signing secret")
    transport = stored(database, "TRANSPORT")
    assert transport is not None
    assert transport.secrets == (secret,)
    assert main(["departments", "update", "TRANSPORT", "--enable"]) == 0
    assert "shown once" not in capsys.readouterr().out
