"""What one database round trip costs the bot's CPU, layer by layer, on PostgreSQL.

The Telegram benchmark spends about 40 % of the bot's CPU in SQLAlchemy and asyncpg (about twelve
statements an update). This script runs the turn's first statement (a citizen read by channel identity)
in one transaction, many times, through each layer on one connection: the ORM session that the
repositories use, SQLAlchemy Core on the connection, SQLAlchemy's driver-level ``exec_driver_sql``, and
asyncpg itself (with and without a prepared statement). It prints the CPU time of this thread per
statement (``time.thread_time``: the round trip's own waiting is not counted), median of the rounds.

    .venv/bin/python benchmarks/bench_statement.py [--statements 2000] [--rounds 7]

PostgreSQL from ``GOVBOT_BENCH_POSTGRES_URL`` (default postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a scratch database is created there and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.support import run_benchmark, scratch_postgres
from storage import db
from storage.models import User

ADMIN_URL = os.environ.get("GOVBOT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
_USERS = User.__table__
CITIZEN = select(_USERS.c.id, _USERS.c.language).where(
    _USERS.c.channel == bindparam("channel"), _USERS.c.external_id == bindparam("external_id")
)
PARAMS = {"channel": "telegram", "external_id": "42"}
RAW = "SELECT users.id, users.language FROM users WHERE users.channel = $1 AND users.external_id = $2"


async def cpu_per_call(call: Callable[[], Awaitable[object]], count: int) -> float:
    """CPU microseconds of this thread per call of ``call``."""
    start = time.thread_time()
    for _ in range(count):
        await call()
    return (time.thread_time() - start) / count * 1e6


async def main(statements: int, rounds: int) -> None:
    async with scratch_postgres(ADMIN_URL) as url:
        engine = db.create_engine(url)
        try:
            async with AsyncSession(engine) as session, session.begin():
                connection = await session.connection()
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                prepared = await driver.prepare(RAW)

                async def orm_session() -> object:
                    return (await session.execute(CITIZEN, PARAMS)).first()

                async def core_connection() -> object:
                    return (await connection.execute(CITIZEN, PARAMS)).first()

                async def driver_sql() -> object:
                    return (await connection.exec_driver_sql(RAW, ("telegram", "42"))).first()

                async def asyncpg_fetchrow() -> object:
                    return await driver.fetchrow(RAW, "telegram", "42")

                async def asyncpg_prepared() -> object:
                    return await prepared.fetchrow("telegram", "42")

                layers = {
                    "AsyncSession.execute (the repositories)": orm_session,
                    "AsyncConnection.execute (Core)": core_connection,
                    "AsyncConnection.exec_driver_sql": driver_sql,
                    "asyncpg fetchrow": asyncpg_fetchrow,
                    "asyncpg prepared statement": asyncpg_prepared,
                }
                for call in layers.values():  # warm the caches
                    await cpu_per_call(call, 100)
                figures: dict[str, list[float]] = {name: [] for name in layers}
                for _ in range(rounds):  # alternated, so that the machine's drift touches every layer
                    for name, call in layers.items():
                        figures[name].append(await cpu_per_call(call, statements))
        finally:
            await engine.dispose()
    print(f"nproc {os.cpu_count()}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f"{statements} statements x {rounds} rounds")
    print("| layer | CPU µs per statement (median) | fastest round | slowest round |")
    print("| --- | --- | --- | --- |")
    for name, values in figures.items():
        print(f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--statements", type=int, default=2000, help="statements per layer and round")
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    run_benchmark(main(arguments.statements, arguments.rounds))
