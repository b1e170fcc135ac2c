"""Webhook dispatcher throughput and latency on PostgreSQL, with 1 and 2 `govbot dispatch` processes.

    .venv/bin/python benchmarks/bench_dispatch.py [--events 5000] [--idle-cases 200]

Needs PostgreSQL (GOVBOT_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres);
creates a scratch database and drops it afterwards. A receiver process on 127.0.0.1 answers every delivery
with 200. Prints one Markdown table row per dispatcher count:
- deliveries/s: a backlog of ``--events`` case.created events committed at once, delivered to the end;
- CPU ms/delivery: CPU seconds (user + system, from /proc) of the dispatcher processes, and of the
  PostgreSQL server processes serving the scratch database, spent while the backlog drained, per event;
- first attempt p50/p95/max: cases created one at a time into an idle queue, from the case's creation to
  the start of its first delivery attempt (as recorded in delivery_attempts);
- load average: the 1-minute figure at the end of the row (the machine's load, benchmark included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.support import free_port, process_cpu, run_benchmark, scratch_postgres, server_cpu  # noqa: E402
from bot.webhooks import new_secret  # noqa: E402
from storage import db  # noqa: E402
from storage.cases import CaseRepository, NewCase  # noqa: E402
from storage.citizens import CitizenRepository  # noqa: E402
from storage.departments import DepartmentRepository  # noqa: E402
from storage.models import utcnow  # noqa: E402
from storage.outbox import DeliveryAttempt, DeliveryStatus, OutboxEvent  # noqa: E402

ADMIN_URL = os.environ.get(
    "GOVBOT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
Sessions = async_sessionmaker[AsyncSession]


def serve_receiver(port: int) -> None:
    """The department's endpoint: 200 for every POST, as fast as aiohttp goes."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_dispatchers(url: str, count: int, *, core: bool) -> list[subprocess.Popen[bytes]]:
    """``count`` processes of `govbot dispatch` (or of the dispatcher core without governance)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVBOT_")}
    env |= {
        "GOVBOT_DATABASE_URL": url,
        "GOVBOT_WEBHOOK_ALLOW_HTTP": "true",
        "GOVBOT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GOVBOT_LOG_LEVEL": "ERROR",
    }
    if core:
        command = [sys.executable, __file__, "--core-dispatcher"]
    else:
        command = [sys.executable, "-m", "bot.cli", "dispatch"]
    return [subprocess.Popen(command, cwd=REPO, env=env) for _ in range(count)]  # noqa: S603


def run_core_dispatcher() -> None:
    """`govbot dispatch` with the per-delivery governance step replaced by a pass-through (for comparison)."""
    import bot.dispatch
    from bot.cli import main as cli

    async def as_claimed(session: AsyncSession, deliveries: Any, now: Any) -> Any:
        return list(deliveries)

    setattr(bot.dispatch, "governed_deliveries", as_claimed)  # noqa: B010 - replacing a module global
    sys.exit(cli(["dispatch"]))


async def reset(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        await session.execute(text("TRUNCATE outbox_events, delivery_attempts, case_changes, cases CASCADE"))


async def create_cases(sessions: Sessions, citizen: int, count: int) -> None:
    """``count`` cases (each with its case.created event) committed in one transaction."""
    async with sessions.begin() as session:
        repo = CaseRepository(session)
        for n in range(count):
            await repo.open_case(NewCase(citizen, "bench", "1", "en", "TRANSPORT", f"case {n}"), utcnow())


async def delivered(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.status == DeliveryStatus.DELIVERED)
            )
            or 0
        )


async def wait_delivered(sessions: Sessions, count: int) -> float:
    """When the ``count``-th delivery was recorded (polled every 20 ms, for at most 10 minutes)."""
    async with asyncio.timeout(600):
        while await delivered(sessions) < count:  # noqa: ASYNC110 - another process's progress, in the database
            await asyncio.sleep(0.02)
    return time.perf_counter()


async def first_attempt_delays(sessions: Sessions) -> list[float]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxEvent.created_at, DeliveryAttempt.started_at)
            .join(DeliveryAttempt, DeliveryAttempt.event_id == OutboxEvent.id)
            .where(DeliveryAttempt.number == 1)
        )
        return [(started - created).total_seconds() for created, started in rows.all()]


async def measure(
    url: str, citizen: int, dispatchers: int, events: int, idle_cases: int, *, core: bool
) -> dict[str, float]:
    engine = db.create_engine(url)
    sessions = db.sessionmaker(engine)
    await reset(sessions)
    processes = start_dispatchers(url, dispatchers, core=core)
    try:
        await asyncio.sleep(3)  # start-up of the processes (imports), not part of the measurement
        await create_cases(sessions, citizen, events)
        async with server_cpu(make_url(url).database) as database_cpu:
            cpu_before = sum(process_cpu(p.pid) for p in processes)
            begun = time.perf_counter()
            ended = await wait_delivered(sessions, events)
            dispatcher_cpu = sum(process_cpu(p.pid) for p in processes) - cpu_before
        rate = events / (ended - begun)
        await reset(sessions)
        rng = random.Random(1)
        for _ in range(idle_cases):
            await create_cases(sessions, citizen, 1)
            await asyncio.sleep(rng.uniform(0.02, 0.1))  # an idle queue: cases arrive one by one
        await wait_delivered(sessions, idle_cases)
        delays = sorted(await first_attempt_delays(sessions))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        await engine.dispose()
    return {
        "rate": rate,
        "dispatcher_ms": 1000 * dispatcher_cpu / events,
        "database_ms": 1000 * database_cpu[0] / events,
        "p50": statistics.median(delays),
        "p95": delays[int(len(delays) * 0.95) - 1],
        "max": delays[-1],
    }


HEADERS = (
    "dispatcher", "processes", "events", "deliveries/s", "dispatcher CPU ms/delivery",
    "PostgreSQL CPU ms/delivery", "first attempt p50", "p95", "max", "load average",
)  # fmt: skip


def row(label: str, count: int, events: int, r: dict[str, float]) -> str:
    """One Markdown table row; the load average is the 1-minute figure at the end of the measurement."""
    cells = [
        label, str(count), str(events), f"{r['rate']:.0f}", f"{r['dispatcher_ms']:.2f}",
        f"{r['database_ms']:.2f}", *(f"{r[k] * 1000:.0f} ms" for k in ("p50", "p95", "max")),
        f"{os.getloadavg()[0]:.1f}",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


async def main(events: int, idle_cases: int, counts: list[int], kinds: list[str]) -> None:
    port = free_port()
    command = [sys.executable, __file__, "--receiver", str(port)]
    receiver = subprocess.Popen(command, cwd=REPO)  # noqa: S603, ASYNC220
    try:
        async with scratch_postgres(ADMIN_URL) as url:
            engine = db.create_engine(url)
            async with db.sessionmaker(engine).begin() as session:
                await DepartmentRepository(session).add(
                    "TRANSPORT",
                    {"en": "Transport"},
                    webhook_url=f"http://127.0.0.1:{port}/hook",
                    secrets=[new_secret()],
                    ticket_prefix="TR",
                )
                citizen = (await CitizenRepository(session).get_or_create("bench", "1")).id
            await engine.dispose()
            print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, load average before: "
                  + ", ".join(f"{load:.2f}" for load in os.getloadavg()), flush=True)
            print("| " + " | ".join(HEADERS) + " |", flush=True)
            print("|---" + "|---:" * (len(HEADERS) - 1) + "|", flush=True)
            for kind in kinds:
                core = kind == "core"
                label = "core (governance bypassed)" if core else "govbot dispatch"
                for count in counts:
                    r = await measure(url, citizen, count, events, idle_cases, core=core)
                    print(row(label, count, events, r), flush=True)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--idle-cases", type=int, default=200)
    parser.add_argument("--dispatchers", type=int, nargs="+", default=[1, 2], help="process counts to run")
    parser.add_argument(
        "--only", choices=("governed", "core"), default=None, help="run only one kind of dispatcher"
    )
    parser.add_argument("--receiver", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--core-dispatcher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.core_dispatcher:
        run_core_dispatcher()
    elif args.receiver is not None:
        serve_receiver(args.receiver)
    else:
        kinds = [args.only] if args.only else ["governed", "core"]
        run_benchmark(main(args.events, args.idle_cases, args.dispatchers, kinds))
