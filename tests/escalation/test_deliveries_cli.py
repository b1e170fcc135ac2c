"""`govbot deliveries …` and `govbot dispatch --once` as an operator runs them, on a SQLite file."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import pytest

from bot.cli import main
from bot.commands.deliveries import parse_since
from storage import db
from storage.departments import DepartmentRepository
from storage.outbox import AttemptResult, OutboxRepository, Outcome
from tests.escalation.conftest import NOW, open_case


@pytest.fixture(autouse=True)
def database(cli_database: str) -> str:
    return cli_database


def prepare(url: str, *, dead: bool) -> None:
    """TRANSPORT with an endpoint nobody listens on, one case; its event dead-lettered if ``dead``."""

    async def go() -> None:
        async with db.connected(url) as engine:
            sessions = db.sessionmaker(engine)
            async with sessions.begin() as session:
                await DepartmentRepository(session).add(
                    "TRANSPORT",
                    {"en": "Transport"},
                    webhook_url="http://127.0.0.1:9/hook",
                    secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                    ticket_prefix="TR",
                )
            await open_case(sessions, now=datetime.now(UTC))
            if dead:
                async with sessions.begin() as session:
                    [claimed] = await OutboxRepository(session).claim(
                        "d", datetime.now(UTC), limit=1, lease=timedelta(seconds=60)
                    )
                    result = AttemptResult(claimed, Outcome.FAILED, NOW, status_code=500, error="HTTP 500")
                    await OutboxRepository(session).record("d", [result], NOW)

    asyncio.run(go())


def test_list_shows_dead_deliveries_with_their_ticket_and_error(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(database, dead=True)
    assert main(["deliveries", "list", "--status", "dead"]) == 0
    out = capsys.readouterr().out
    assert "TR-2026-000001" in out
    assert "HTTP 500" in out
    assert main(["deliveries", "list", "--status", "failed"]) == 0
    assert "no deliveries with status failed" in capsys.readouterr().out


def test_replay_queues_a_dead_delivery_again_and_show_lists_its_attempts(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(database, dead=True)
    assert main(["deliveries", "replay", "1"]) == 0
    assert "1 delivery(ies) queued again" in capsys.readouterr().out
    assert main(["deliveries", "list", "--status", "failed"]) == 0
    assert "TR-2026-000001" in capsys.readouterr().out
    assert main(["deliveries", "show", "1"]) == 0
    assert "#1" in capsys.readouterr().out
    assert main(["deliveries", "replay", "999"]) == 1
    assert "no delivery '999'" in capsys.readouterr().err


def test_replay_refuses_a_delivery_being_made_right_now(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(database, dead=False)

    async def claim() -> None:
        async with db.connected(database) as engine, db.sessionmaker(engine).begin() as session:
            await OutboxRepository(session).claim("d", datetime.now(UTC), limit=1, lease=timedelta(minutes=5))

    asyncio.run(claim())
    assert main(["deliveries", "replay", "1"]) == 1
    assert "delivery 1 is being delivered right now" in capsys.readouterr().err
    assert main(["deliveries", "show", "1"]) == 0
    assert "by d: in_progress" in capsys.readouterr().out  # the claim's attempt goes on undisturbed


def test_replay_by_department_since_a_time(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    prepare(database, dead=True)
    assert main(["deliveries", "replay", "--department", "TRANSPORT", "--since", "1d"]) == 0
    assert "1 delivery(ies)" in capsys.readouterr().out
    assert main(["deliveries", "replay", "--department", "TRANSPORT", "--since", "yesterday"]) == 2
    assert "--since takes" in capsys.readouterr().err
    assert main(["deliveries", "replay"]) == 2
    capsys.readouterr()
    assert main(["deliveries", "replay", "--department", "NOPE", "--since", "1d"]) == 1
    assert capsys.readouterr().err == "govbot: no department 'NOPE'\n"  # not "0 … queued again"


def test_dispatch_once_records_a_failed_attempt_when_nobody_listens(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(database, dead=False)
    monkeypatch.setenv("GOVBOT_WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("GOVBOT_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    assert main(["dispatch", "--once"]) == 0
    assert "1 delivery attempt(s)" in capsys.readouterr().out
    assert main(["deliveries", "list", "--json"]) == 0
    assert '"status": "failed"' in capsys.readouterr().out


@pytest.mark.parametrize("given", ["99999", "0", "-1", "http"])
def test_dispatch_refuses_a_metrics_port_that_is_not_one(
    database: str, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dispatch", "--once", f"--metrics-port={given}"])
    assert exit_info.value.code == 2
    assert "is not a port number (1 to 65535)" in capsys.readouterr().err


def test_dispatch_says_so_in_one_line_when_the_metrics_port_is_taken(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dispatch", "--once", "--metrics-port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == f"govbot: cannot serve /metrics on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize(
    "since", ["999999999d", "99999999999d", "0001-01-01T00:00+05:00", "9999-12-31T23:00-05:00"]
)
def test_replay_since_beyond_the_calendar_is_a_usage_error(
    database: str, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    # These overflowed datetime arithmetic and ended in a traceback.
    prepare(database, dead=True)
    assert main(["deliveries", "replay", "--department", "TRANSPORT", f"--since={since}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("govbot: --since takes")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6h", NOW - timedelta(hours=6)),
        ("2d", NOW - timedelta(days=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00+08:00", datetime(2026, 11, 1, 0, tzinfo=UTC)),
        ("2026-11-01T00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
        ("soon", None),
        ("", None),
        ("\u0666h", None),
    ],
)
def test_since_takes_an_age_or_an_iso_time(text: str, expected: datetime | None) -> None:
    assert parse_since(text, NOW) == expected
