"""Log lines never hold unmasked personal data, whatever is logged and however."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer, make_mocked_request

from bot.channels.telegram import WEBHOOK_PATH
from bot.cli import main
from bot.log_masking import (
    MASKED_FLAG,
    AccessLog,
    MalformedRequestFilter,
    PersonalDataFilter,
    mask_logs,
    quiet_malformed_requests,
)
from tests.conftest import clear_govbot_settings

log = logging.getLogger("govbot.test")


@pytest.fixture
def masked_root() -> Iterator[None]:
    """The root logger's handlers (caplog's among them) carry the filter during the test only."""
    yield
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, PersonalDataFilter)]:
            handler.removeFilter(found)


@pytest.mark.usefixtures("masked_root")
def test_arguments_and_messages_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    mask_logs()
    with caplog.at_level(logging.INFO):
        log.info("citizen wrote %r from %s", "my phone is 13812345678", "zhang@example.cn")
        log.warning("ID 110101199003074258 given")
    assert "13812345678" not in caplog.text
    assert "zhang@example.cn" not in caplog.text
    assert "110101199003074258" not in caplog.text
    assert "138****5678" in caplog.text
    assert "z***@example.cn" in caplog.text
    assert all(record.getMessage() == record.msg for record in caplog.records)


@pytest.mark.usefixtures("masked_root")
def test_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    mask_logs()
    try:
        raise ValueError("cannot parse 13912345678")
    except ValueError:
        log.exception("failed")
    assert "13912345678" not in caplog.text
    assert "139****5678" in caplog.text


@pytest.mark.usefixtures("masked_root")
def test_arguments_that_do_not_fit_the_format_are_still_written_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mask_logs()
    log.warning("two %s %s", "13812345678")
    assert "13812345678" not in caplog.text
    assert "138****5678" in caplog.text


@pytest.mark.usefixtures("masked_root")
def test_installing_twice_adds_one_filter() -> None:
    mask_logs()
    mask_logs()
    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, PersonalDataFilter) for f in handler.filters) == 1


@pytest.fixture
def cli_logging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logging as the `govbot` command sets it up (any command: here `db upgrade` on a scratch file)."""
    clear_govbot_settings(monkeypatch)
    monkeypatch.setenv("GOVBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}")
    assert main(["db", "upgrade"]) == 0


@pytest.mark.usefixtures("masked_root", "cli_logging")
def test_the_cli_masks_its_logs(caplog: pytest.LogCaptureFixture) -> None:
    log.warning("call back on +44 20 7946 0958")
    assert "7946 0958" not in caplog.text
    assert "442****0958" in caplog.text


@pytest.mark.usefixtures("masked_root", "cli_logging")
def test_at_debug_libraries_that_log_citizens_words_stay_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for name in ("telegram.ext.Application", "telegram.Bot", "aiosqlite", "asyncpg.pool", "httpcore.h11"):
            logging.getLogger(name).debug("update from Li Lei: I live at 5 Harbour Road")
        logging.getLogger("httpx").info("POST https://api.telegram.org/bot123:SECRET/getUpdates")
        log.debug("govbot's own debug line")
    assert "Harbour Road" not in caplog.text
    assert "SECRET" not in caplog.text
    assert "govbot's own debug line" in caplog.text


def test_the_access_log_masks_personal_data_in_the_query_and_leaves_the_line_to_no_second_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access = AccessLog(logging.getLogger("aiohttp.access"), "")
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        access.log(make_mocked_request("GET", "/web?phone=13812345678"), web.Response(text="hi"), 0.25)
    assert "13812345678" not in caplog.text
    assert '"GET /web?phone=138****5678" 200' in caplog.text
    assert all(getattr(record, MASKED_FLAG) for record in caplog.records)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", WEBHOOK_PATH])
def test_the_access_log_leaves_out_successful_probes_scrapes_and_telegram_updates_but_not_refusals(
    caplog: pytest.LogCaptureFixture, path: str
) -> None:
    access = AccessLog(logging.getLogger("aiohttp.access"), "")
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        access.log(make_mocked_request("POST", path), web.Response(text="ok"), 0.01)
        assert caplog.records == []
        access.log(make_mocked_request("POST", path), web.Response(status=403), 0.01)
        access.log(make_mocked_request("GET", "/api/v1/cases"), web.Response(text="[]"), 0.01)
    logged = [record.getMessage().split('"')[1] for record in caplog.records]
    assert logged == [f"POST {path}", "GET /api/v1/cases"]


@pytest.mark.parametrize(("target", "logged"), [
    ("/web?to=zhang%40example.cn", "/web?to=z***@example.cn"),
    ("/web?to=zhang%EF%BC%A0example.cn", "/web?to=z***@example.cn"),
    ("/web/%E5%8A%9E?p=%EF%BC%91%EF%BC%93%EF%BC%98%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96%EF%BC%97"
     "%EF%BC%98", "/web/办?p=138****5678"),
    ("/web?q=a%0AINFO%20forged", "/web?q=a\\nINFO forged"),
])
def test_the_access_log_masks_what_percent_encoding_would_hide_and_cannot_be_split_into_lines(
    caplog: pytest.LogCaptureFixture, target: str, logged: str
) -> None:
    access = AccessLog(logging.getLogger("aiohttp.access"), "")
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        access.log(make_mocked_request("GET", target), web.Response(text="hi"), 0.25)
    assert [record.getMessage().split('"')[1] for record in caplog.records] == [f"GET {logged}"]


async def test_a_malformed_request_is_answered_400_and_logged_as_one_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    quiet_malformed_requests()
    server = logging.getLogger("aiohttp.server")
    try:
        async with TestServer(app) as served:
            with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
                answer = await raw_request(served, b"GET / HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n")
                fine = await raw_request(served, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        for found in [f for f in server.filters if isinstance(f, MalformedRequestFilter)]:
            server.removeFilter(found)
    assert answer.split(b" ", 2)[1] == b"400"
    assert fine.startswith(b"HTTP/1.1 200")
    assert fine.endswith(b"hello")
    [record] = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    message = record.getMessage()
    assert message.startswith("malformed HTTP request from 127.0.0.1 answered 400: Invalid header value")
    assert "\n" not in message


async def raw_request(server: BaseTestServer, request: bytes) -> bytes:
    """Bytes straight onto the socket, as a scanner sends them; everything the server answers."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer
