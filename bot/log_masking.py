"""Logs never hold unmasked personal data: a filter on each handler masks every record it writes."""

from __future__ import annotations

import logging
import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from storage.masking import mask

MASKED_FLAG = "personal_data_masked"


class PersonalDataFilter(logging.Filter):
    """Masks phone numbers, e-mail, ID and card numbers in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, MASKED_FLAG, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format must not cost the log line
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        setattr(record, MASKED_FLAG, True)
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


LIBRARY_FLOORS = {"telegram": logging.INFO, "aiosqlite": logging.INFO, "asyncpg": logging.INFO,
                  "httpcore": logging.INFO, "httpx": logging.WARNING, "sqlalchemy.engine": logging.INFO}
"""Libraries that log whole updates, replies, statement parameters or result rows at DEBUG (httpx: the Bot
API URL, which holds the bot's token, at INFO) never log below these levels, whatever GOVBOT_LOG_LEVEL or a
logger set by hand says: masking catches phone numbers and addresses, not names, a citizen's words or a
department's signing secret. SQLAlchemy logs nothing below WARNING unless its logger is lowered by hand; then
its statements come at INFO, their parameters hidden (``hide_parameters``), and only its rows are kept out."""


def log_masked(line_format: str = LOG_FORMAT) -> None:
    """govbot's logging: to stderr, WARNING until the settings say otherwise, personal data masked."""
    logging.basicConfig(level=logging.WARNING, format=line_format)
    mask_logs()
    quiet_malformed_requests()
    keep_libraries_quiet()


def keep_libraries_quiet() -> None:
    """Raise each of :data:`LIBRARY_FLOORS` to its floor (a level set higher stays)."""
    for name, floor in LIBRARY_FLOORS.items():
        library = logging.getLogger(name)
        library.setLevel(max(floor, _library_level(library)))


def _library_level(logger: logging.Logger) -> int:
    """The level set on ``logger`` or on an ancestor below the root, NOTSET if none: SQLAlchemy sets WARNING
    on ``sqlalchemy``, and a floor below it must not make ``sqlalchemy.engine`` log every statement."""
    while logger.level == logging.NOTSET and logger.parent is not None and logger.parent is not logging.root:
        logger = logger.parent
    return logger.level


class MalformedRequestFilter(logging.Filter):
    """A request that is not valid HTTP is the sender's fault, and aiohttp answers it 400: one warning line.

    aiohttp logs it as an ERROR with a traceback, which on a public address (scanners, probes) would bury
    real errors and wake whoever is on call.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and exc.code < 500 and record.levelno > logging.WARNING:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            detail = " ".join(str(exc.message).split())  # aiohttp's spans lines, pointing at the bad byte
            record.msg = "malformed HTTP request from %s answered %d: %s"
            record.args = (remote, exc.code, detail)
            record.exc_info, record.exc_text = None, None
        return True


def quiet_malformed_requests() -> None:
    """Put :class:`MalformedRequestFilter` on aiohttp's server logger, once."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())


def mask_logs(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(PersonalDataFilter())


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class AccessLog(AbstractAccessLogger):
    """aiohttp's access log line, masked where personal data can be: the path and query.

    The line is written already masked, so the handlers' filter leaves it alone: masking a whole line
    costs a libphonenumber scan of the address, date and sizes on every request (a twentieth of a
    Telegram update's CPU). Referer and User-Agent are left out: the sender chooses them, and an operator
    needs the request, its status, size and time.
    """

    quiet_paths: frozenset[str] = frozenset(["/healthz", "/readyz", "/metrics", "/telegram/webhook"])
    """Paths whose successful requests go unlogged: probes and scrapes come every few seconds, and Telegram
    posts one update per citizen message, which the inbox keeps and /metrics counts (its line cost a
    fortieth of an update's CPU). A refused or failed request is logged as any other."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if response.status < 400 and request.path in self.quiet_paths:
            return
        # Masked decoded: percent-encoding hides an address's "@" (%40) and full-width digits from masking.
        target = request.path + (f"?{request.query_string}" if request.query_string else "")
        target = _CONTROL.sub(lambda found: repr(found.group())[1:-1], mask(target))  # no forged log lines
        self.logger.info('%s "%s %s" %d %d %.3fs', request.remote or "-", request.method, target,
                         response.status, response.body_length, time, extra={MASKED_FLAG: True})

