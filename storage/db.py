"""Engines, sessions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT = 30.0
"""Seconds a SQLite statement waits for another process's write lock before "database is locked"."""
MIGRATION_LOCK = 0x676F76626F74  # "govbot": the PostgreSQL advisory lock that migrations hold
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What JSON or a form may spell but no database here stores: NUL (PostgreSQL refuses it) and half a
surrogate pair. Text from outside that reaches a column unchanged is refused with it, never a 500."""
POOL_RECYCLE_SECONDS = 1800
"""PostgreSQL connections are replaced after this long, before a server or proxy idle timeout closes them."""
ASYNCPG_NUMBERS: dict[str, type[int] | type[float]] = {
    "timeout": float, "command_timeout": float, "statement_cache_size": int,
    "max_cached_statement_lifetime": int, "max_cacheable_statement_size": int,
}
"""The parameters of a PostgreSQL URL that asyncpg takes as numbers."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a new PostgreSQL connection unless the URL says (``?timeout=``): asyncpg's own
default of 60 held every request that long when the server's host stopped answering (a failover)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or used; the message says which and why, without credentials."""


DATABASE_ERRORS = (SQLAlchemyError, OSError)
"""What a unit of work raises when the database fails it: SQLAlchemy's errors, which wrap the driver's
(asyncpg's while connecting too, see ``_connect_or_explain``), and the network's."""


OUT_OF_REACH = (
    DatabaseUnavailable, OSError, OperationalError, InterfaceError, DisconnectionError, PoolTimeout
)
"""What a database out of reach raises (down, restarting, locked, pool exhausted): worth a retry later.
Other database errors (a constraint, a wrong statement) are bugs and keep their traceback in the log."""


def out_of_reach(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is out of reach, rather than that a statement was wrong."""
    return isinstance(exc, OUT_OF_REACH) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class Outage:
    """A background loop's log of a database outage: one WARNING when it begins and one INFO when it ends,
    not a traceback at every poll (five a second per process)."""

    def __init__(self, logger: logging.Logger, who: str, meanwhile: str) -> None:
        """``who`` starts each line (``notifier web``); ``meanwhile`` says what happens until it is back."""
        self._log, self._who, self._meanwhile = logger, who, meanwhile
        self.ongoing = False

    def began(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the database out of reach (logged if it starts an outage); False for a bug,
        which the caller logs with its traceback."""
        if not out_of_reach(exc):
            return False
        if not self.ongoing:
            self._log.warning("%s: the database is out of reach (%s); %s", self._who, error_reason(exc),
                              self._meanwhile)
            self.ongoing = True
        return True

    def ended(self, detail: str = "") -> None:
        """The database answered: one line if that ends an outage."""
        if self.ongoing:
            self._log.info("%s: the database is reachable again%s", self._who, detail)
            self.ongoing = False


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = _parsed(url)
    # Statement parameters are citizens' words and personal fields: never in errors or logs.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        file = _sqlite_file(parsed)
        if file is not None:
            _make_folder(file)
            parsed = parsed.set(database=str(file))  # SQLite itself would take a "~" for a folder's name
        engine = create_async_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: on asyncpg it is three round trips (BEGIN, a ping, ROLLBACK) per checkout, several
    # checkouts per update. A connection that a restarted server closed fails its next statement instead;
    # SQLAlchemy then discards the whole pool, and the units of work that matter run again on a new
    # connection (`reconnecting`). pool_recycle retires connections before idle timeouts cut them.
    kwargs.setdefault("pool_recycle", POOL_RECYCLE_SECONDS)
    kwargs.setdefault("pool_size", 10)
    parsed, arguments = _asyncpg_arguments(parsed)
    arguments.setdefault("timeout", CONNECT_TIMEOUT)
    kwargs["connect_args"] = arguments | kwargs.get("connect_args", {})
    engine = create_async_engine(parsed, **kwargs)
    event.listen(engine.sync_engine, "do_connect", _connect_or_explain)
    return engine


def _asyncpg_arguments(url: URL) -> tuple[URL, dict[str, Any]]:
    """The URL's parameters as asyncpg takes them: libpq's ``sslmode`` is its ``ssl``, and numbers are
    numbers (``?statement_cache_size=0``). Passed on as text, each was a TypeError traceback at the first
    connection."""
    query = dict(url.query)
    if "sslmode" in query:
        query.setdefault("ssl", query.pop("sslmode"))
    arguments: dict[str, Any] = {}
    for name, number in ASYNCPG_NUMBERS.items():
        if name in query:
            given = query.pop(name)
            value = given if isinstance(given, str) else ",".join(given)  # given twice: refused
            try:
                arguments[name] = number(value)
            except ValueError:
                raise DatabaseUnavailable(
                    f"invalid database URL: its parameter {name} must be a number, not {value!r}"
                ) from None
    return url.set(query=query), arguments


def _make_folder(file: Path) -> None:
    """The folder of a SQLite file, made if it is not there (``var/`` on a first start)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, a read-only disk, no permission
        raise DatabaseUnavailable(
            f"cannot make the folder {file.parent} for the database {file}: {exc.strerror or exc}"
        ) from None


def _connect_or_explain(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """A new asyncpg connection; asyncpg's own errors while connecting (a database that does not exist,
    refuses connections or is starting up, a wrong password) become the DBAPI error SQLAlchemy wraps, as
    it wraps every error of a statement. Left raw, they passed every ``except SQLAlchemyError``: the
    readiness probe answered 500 and Telegram polling stopped for good."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise dialect.loaded_dbapi.OperationalError(f"{type(exc).__name__}: {exc}") from exc
    except TypeError as exc:  # a parameter of the URL's that asyncpg does not take
        raise dialect.loaded_dbapi.OperationalError(f"the database URL's parameters: {exc}") from exc


async def reconnecting(work: Callable[[], Awaitable[T]]) -> T:
    """``work()``, run once more when the database had closed the pooled connection it was given.

    A server restart or failover closes every pooled connection, and without pre-ping (above) the engine
    finds out only when one is used; it then replaces its pool. For a unit of work that was rolled back
    whole, running it again on a new connection loses nothing and repeats nothing.
    """
    try:
        return await work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("the database had closed a pooled connection (a restart?); the work runs again")
        return await work()


@asynccontextmanager
async def autocommit(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in which every statement commits by itself: no BEGIN and COMMIT round trips.

    For units of work of one statement (storing an update in the inbox): the statement is durable when
    it returns, as a transaction's COMMIT would be.
    """
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


@asynccontextmanager
async def reachable(url: str, *, create: bool = False) -> AsyncIterator[AsyncEngine]:
    """An engine that has answered a query; disposed on exit.

    A SQLite file that is not there is made only with ``create`` (commands that set a deployment up);
    otherwise it is an error, so that a mistyped path is not reported on as an empty, intact database.
    """
    file = _sqlite_file(_parsed(url))
    if file is not None and not create and not file.is_file():
        raise DatabaseUnavailable(
            f"no database at {file}: check GOVBOT_DATABASE_URL, or create it with `govbot db upgrade`"
        )
    engine = create_engine(url)
    try:
        await check(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def connected(url: str, *, create: bool = False) -> AsyncIterator[AsyncEngine]:
    """A reachable engine whose schema is current (SQLite is migrated by itself); ``create`` as above."""
    async with reachable(url, create=create) as engine:
        await ensure_schema(engine)
        yield engine


async def ensure_schema(engine: AsyncEngine) -> None:
    """Migrate a SQLite database by itself; insist that PostgreSQL was migrated by `govbot db upgrade`."""
    current, head = await current_revision(engine), head_revision()
    if engine.url.get_backend_name() == "sqlite":
        if current != head:  # migrating takes the write lock: not at every start of every command
            await upgrade(engine)
        return
    if current is not None and current not in known_revisions():
        raise DatabaseUnavailable(_unknown_revision(engine, current))
    if current != head:
        raise DatabaseUnavailable(
            f"database {describe(engine)} is at revision {current or 'none'}, this govbot needs {head}: "
            "run `govbot db upgrade`"
        )


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The one session factory of a process: a unit of work per incoming update."""
    return async_sessionmaker(engine, expire_on_commit=False)


def shared(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL: shared by several processes, and the one whose
    data-modifying ``WITH`` joins several writes into one round trip."""
    return session.get_bind().dialect.name == "postgresql"


def describe(engine: AsyncEngine) -> str:
    """The engine's URL with any password hidden, for messages and logs: also one given as asyncpg's
    ``?password=`` parameter."""
    url, hidden = engine.url, "HIDDEN"
    if "password" in url.query:
        url = url.update_query_dict({"password": hidden})
    return url.render_as_string(hide_password=True).replace(f"password={hidden}", "password=***")


class MigrationBroke(Exception):
    """A migration would have left rows pointing at rows that are not there; nothing was changed."""


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (Alembic, sharing this engine's connection)."""
    try:
        if engine.url.get_backend_name() == "sqlite":
            async with engine.connect() as conn:
                await conn.run_sync(_upgrade_sqlite, revision)
            return
        async with engine.begin() as conn:
            # Hosts that each run `govbot db upgrade` at once: one migrates, the others wait for its
            # commit and then find nothing left to do, instead of failing on each other's tables.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            await conn.run_sync(_run_upgrade, revision)
    except MigrationBroke as exc:
        raise DatabaseUnavailable(f"cannot migrate {describe(engine)}: {exc}") from None
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot migrate {describe(engine)}: {error_reason(exc)}") from None
    except CommandError:
        current = await current_revision(engine)
        if current is not None and current not in known_revisions():
            raise DatabaseUnavailable(_unknown_revision(engine, current)) from None
        raise


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Every schema revision this govbot's migrations know."""
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _unknown_revision(engine: AsyncEngine, current: str) -> str:
    # Migrating cannot help: the schema is newer than this code, or not govbot's at all.
    return (f"database {describe(engine)} is at revision {current}, which this govbot does not know "
            "(written by a newer govbot?): run that version, or restore a backup")


async def check(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailable unless a trivial query succeeds."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot reach {describe(engine)}: {error_reason(exc)}") from None


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _upgrade_sqlite(connection: Connection, revision: str) -> None:
    """Migrate with SQLite's foreign keys off, as SQLite prescribes for changing a table.

    Alembic changes a SQLite table by copying it and dropping the old one; with foreign keys on, that
    DROP deleted every row referring to it (ON DELETE CASCADE) or emptied the reference (SET NULL):
    migration 0008 rebuilt ``users``, and every citizen's conversations, messages, consents and web chat
    went with it. Foreign keys can be switched only outside a transaction, hence the commit before.
    The migrations then run in one transaction of SQLite's own (Python's driver would commit each table
    it makes at once), so that the check after them undoes all or nothing.
    """
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        with connection.begin():
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # one process migrates; the others wait for it
            current = MigrationContext.configure(connection).get_current_revision()
            if current == ScriptDirectory.from_config(alembic_config()).as_revision_number(revision):
                return
            # Rows left dangling by hand (the sqlite3 shell has foreign keys off) are not the migration's.
            dangling = _dangling(connection)
            _run_upgrade(connection, revision)
            added = _dangling(connection) - dangling
            if added:
                (table, parent), *_ = added
                raise MigrationBroke(f"the migration would leave rows of {table} referring to rows of "
                                     f"{parent} that are not there; nothing was changed")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _dangling(connection: Connection) -> Counter[tuple[str, str]]:
    """How many rows of each table refer to rows of another table that are not there."""
    return Counter((row[0], row[2]) for row in connection.exec_driver_sql("PRAGMA foreign_key_check"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(_prepare_sqlite)


async def _prepare_sqlite(connection: aiosqlite.Connection) -> None:
    await connection.execute("PRAGMA foreign_keys=ON")
    # Turning a new file to WAL while another process holds its write lock (two processes starting on
    # a new file) fails at once with "database is locked": SQLite does not wait its busy timeout there.
    deadline = asyncio.get_running_loop().time() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
    await connection.execute("PRAGMA synchronous=NORMAL")


def _parsed(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"invalid database URL: {exc}") from None


def _sqlite_file(parsed: URL) -> Path | None:
    """The file a SQLite URL names; None for other databases and for in-memory or URI-named ones."""
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database).expanduser()


def error_reason(exc: BaseException) -> str:
    """The first line of the driver's error (never the statement or its parameters), for messages."""
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {original}".splitlines()[0]
