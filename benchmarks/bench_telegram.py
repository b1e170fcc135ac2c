"""Telegram webhook throughput and reply latency: the real app on SQLite and PostgreSQL, into a fake Bot API.

    .venv/bin/python benchmarks/bench_telegram.py [--database sqlite|postgresql|both] [--updates N]
        [--concurrency C ...] [--rate R ...] [--inline]

The bot process (this one) runs govbot's real application — create_app in webhook mode, the bundled sample
knowledge base, outgoing rate limiting off, logging as `govbot run` sets it up (INFO, masked, access log),
a fresh SQLite file or a scratch PostgreSQL database (GOVBOT_BENCH_POSTGRES_URL names the server, default
postgresql+asyncpg://postgres@127.0.0.1:5432/test; the scratch database is dropped afterwards) — served by
aiohttp's AppRunner on 127.0.0.1.

"Telegram" — the fake Bot API server of tests/fakes and the client that POSTs updates to the webhook with
the secret header — runs in a child process, as Telegram is another machine in production: in the bot's
own event loop it would spend the bot's CPU on parsing and recording the bot's requests (``--inline``
does that, to show what it costs). It keeps no history (each reply goes to its waiting citizen, a citizen's
chat is forgotten once their script ends) and freezes its heap before each row, so that its own garbage
collector does not stall the measured latencies: Telegram's servers do not pause like a Python process.

Citizens each follow a short script: a question from tests/knowledge/data/sample_questions.jsonl (English
or Chinese, as the citizen speaks), a press of a button on the reply (helpful, the first "did you mean",
or the menu), /menu, a topic, an entry in it, another question. A citizen sends the next update only once
the last one was answered; a new citizen comes whenever none is free, so thousands take part and the
flood limit (raised anyway) is not what is measured. Each row of the table loads the bot one way:

- ``closed C``: C updates in flight (POST sent, reply not yet at the fake) at all times — the capacity;
- ``paced R/s``: an update every 1/R s whatever the bot does, as Telegram sends them (at most
  --max-in-flight waiting) — the latency at that load.

updates/s: updates answered ÷ (first POST → last reply received by the fake). Latency: the POST is sent
→ the fake receives the sendMessage (or editMessageText, for a button that replaces its message) to
that chat. CPU per update: this process (all of govbot's work is on its one event loop), the PostgreSQL
server processes of the scratch database (read from /proc), and the Telegram child; "bot busy" is this
process's CPU as a share of one core — near 100 % the bot itself is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.support import (  # noqa: E402
    free_port,
    local_socket,
    process_cpu,
    run_benchmark,
    scratch_postgres,
    server_cpu,
    worker_pids,
)
from bot.app import create_app  # noqa: E402
from bot.channels.telegram import SECRET_HEADER, TELEGRAM, TelegramChannel  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.log_masking import AccessLog, mask_logs  # noqa: E402
from storage import db  # noqa: E402
from tests.fakes.telegram_server import FakeTelegramServer, SentMessage  # noqa: E402

JSON = dict[str, Any]
ADMIN_URL = os.environ.get("GOVBOT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
QUESTIONS = REPO / "tests" / "knowledge" / "data" / "sample_questions.jsonl"
SCRIPT = ("question", "reply button", "/menu", "cat:", "show:", "question")
"""What each citizen does, in order; a step that needs a button the last reply lacks becomes /menu."""
REPLY_BUTTONS = ("rate:", "pick:", "menu:")
"""On the reply to a question: helpful (an answer), the first choice ("did you mean"), the menu (none)."""
REPLY_TIMEOUT = 30.0
"""Seconds after which an update with no reply counts as lost."""
TELEGRAM_CONNECTIONS = 100
"""Telegram's largest max_connections for a webhook: the POSTs it may have open at once."""
FLOOD_LIMIT = 10_000
MAX_COMMANDS = 1000
"""Loads the child process runs at most before it stops by itself."""
SETTLED_CPU = 0.15
"""Share of a core below which started workers count as settled (idle they use about 5 % each)."""
SETTLE_TIMEOUT = 60.0
IDLE_SECONDS = 5.0
"""How long the bot's CPU is measured with nothing to do, after the warm-up."""


@dataclass(frozen=True)
class Load:
    """How one row loads the bot: ``rate`` None is a closed loop of ``concurrency`` updates in flight."""

    updates: int
    concurrency: int
    rate: float | None = None

    @property
    def label(self) -> str:
        return f"closed {self.concurrency}" if self.rate is None else f"paced {self.rate:g}/s"


@dataclass
class Outcome:
    """What the Telegram side saw in one run (plain data: it crosses the process boundary)."""

    latencies: list[float] = field(default_factory=list)
    first_post: float = 0.0
    last_reply: float = 0.0
    refused: int = 0
    lost: int = 0
    cpu: float = 0.0

    @property
    def elapsed(self) -> float:
        return max(self.last_reply - self.first_post, 1e-9)


# -- the Telegram side: the fake Bot API and citizens posting to the webhook ------------------------------


class RecordingTelegram(FakeTelegramServer):
    """The fake Bot API, which also hands each message the bot sends to whoever waits on that chat."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[int | str, asyncio.Future[tuple[SentMessage, float]]] = {}

    def _record(self, method: str, params: JSON, message: JSON, **details: Any) -> None:
        super()._record(method, params, message, **details)
        received = time.perf_counter()  # the moment the fake has it, not when the waiter next runs
        sent = self.sent[-1]
        self.sent.clear()  # nobody reads the history here, and a long run's would slow every collection
        self.calls.clear()
        waiter = self.waiting.pop(sent.chat_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result((sent, received))


@dataclass
class Citizen:
    """One person working through SCRIPT, one update at a time."""

    chat_id: int
    language: str
    questions: list[str]
    step: int = 0
    last: SentMessage | None = None

    @property
    def done(self) -> bool:
        return self.step >= len(SCRIPT)

    def next_update(self, fake: FakeTelegramServer) -> JSON:
        """The update for the next step of the script."""
        action = SCRIPT[self.step]
        self.step += 1
        if action == "question" and self.questions:
            return fake.message(self.chat_id, self.questions.pop(), language_code=self.language)
        button = self._button(REPLY_BUTTONS if action == "reply button" else (action,))
        if button is None or self.last is None:
            return fake.message(self.chat_id, "/menu", language_code=self.language)
        return fake.callback(self.chat_id, button, message_id=self.last.message_id,
                             language_code=self.language)

    def _button(self, prefixes: tuple[str, ...]) -> str | None:
        payloads = [str(b.get("callback_data")) for b in (self.last.buttons if self.last else [])]
        for prefix in prefixes:
            found = next((p for p in payloads if p.startswith(prefix)), None)
            if found is not None:
                return found
        return None


class Citizens:
    """Makes citizens: a language each, and two questions in it from the sample set."""

    def __init__(self, questions: dict[str, list[str]], seed: int) -> None:
        self._questions = questions
        self._random = random.Random(seed)
        self._next_chat = 10_000_000

    def new(self) -> Citizen:
        self._next_chat += 1
        language = self._random.choice(sorted(self._questions))
        return Citizen(self._next_chat, language, self._random.sample(self._questions[language], 2))


def load_questions(path: Path = QUESTIONS) -> dict[str, list[str]]:
    """The sample questions by language."""
    by_language: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_language.setdefault(str(row["lang"]), []).append(str(row["query"]))
    return by_language


class TelegramSide:
    """The fake Bot API server and the webhook client, in whichever process runs it."""

    def __init__(self, seed: int) -> None:
        self.fake = RecordingTelegram()
        self._citizens = Citizens(load_questions(), seed)
        self._free: deque[Citizen] = deque()
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> TelegramSide:
        await self.fake.__aenter__()
        connector = aiohttp.TCPConnector(limit=TELEGRAM_CONNECTIONS)
        self._http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
        await self.fake.__aexit__(*exc_info)

    def endpoint(self) -> JSON:
        """Where the bot finds this Bot API, and the token it must use."""
        return {"base_url": self.fake.base_url, "token": self.fake.token}

    async def run(self, load: Load) -> Outcome:
        """Send ``load.updates`` updates as ``load`` says and wait for every reply (or its timeout)."""
        outcome = Outcome()
        slots = asyncio.Semaphore(load.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        cpu = time.process_time()
        start = time.perf_counter()
        for number in range(load.updates):
            if load.rate is not None:
                delay = start + number / load.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing is the point here: Telegram does not wait
            await slots.acquire()
            task = asyncio.create_task(self._one(self._free.popleft() if self._free else self._citizens.new(),
                                                 outcome))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(lambda _: slots.release())
        await asyncio.gather(*tasks)
        outcome.cpu = time.process_time() - cpu
        return outcome

    async def _one(self, citizen: Citizen, outcome: Outcome) -> None:
        """One update: POST it, wait until the fake has the bot's reply to that chat."""
        assert self._http is not None
        update = citizen.next_update(self.fake)
        waiter: asyncio.Future[tuple[SentMessage, float]] = asyncio.get_running_loop().create_future()
        self.fake.waiting[citizen.chat_id] = waiter  # before the POST: the reply may beat its 200
        posted = time.perf_counter()
        outcome.first_post = outcome.first_post or posted
        if not await self._post(update):
            outcome.refused += 1
            self.fake.waiting.pop(citizen.chat_id, None)
            return
        try:
            citizen.last, received = await asyncio.wait_for(waiter, REPLY_TIMEOUT)
        except TimeoutError:
            outcome.lost += 1
            self.fake.waiting.pop(citizen.chat_id, None)
            return
        outcome.latencies.append(received - posted)
        outcome.last_reply = max(outcome.last_reply, received)
        if citizen.done:
            self.fake.forget_chat(citizen.chat_id)
        else:
            self._free.append(citizen)

    async def _post(self, update: JSON) -> bool:
        assert self._http is not None
        headers = {SECRET_HEADER: self.fake.webhook.secret_token or ""}
        try:
            async with self._http.post(self.fake.webhook.url, json=update, headers=headers) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


class Side(Protocol):
    """The Telegram side as the bot process drives it, in this process or another."""

    def endpoint(self) -> JSON: ...

    async def run(self, load: Load) -> Outcome: ...


class RemoteSide:
    """The Telegram side in a child process, driven over a pipe with plain data."""

    def __init__(self, connection: Connection, child: BaseProcess) -> None:
        self._connection = connection
        self._child = child
        self._endpoint: JSON = {}

    async def start(self) -> None:
        self._endpoint = await self._receive()

    def endpoint(self) -> JSON:
        return self._endpoint

    async def run(self, load: Load) -> Outcome:
        self._connection.send({"load": asdict(load)})
        return Outcome(**await self._receive())

    async def _receive(self) -> JSON:
        """The child's next message; RuntimeError if it died instead of answering."""
        def wait() -> JSON:
            while not self._connection.poll(1.0):
                if not self._child.is_alive():
                    raise RuntimeError(f"the fake Telegram process exited ({self._child.exitcode})")
            message: JSON = self._connection.recv()
            return message

        return await asyncio.to_thread(wait)


def serve_telegram(connection: Connection, seed: int) -> None:
    """The child process: run loads as the parent asks until it says stop or goes away."""
    asyncio.run(_serve_telegram(connection, seed))


async def _serve_telegram(connection: Connection, seed: int) -> None:
    async with TelegramSide(seed) as side:
        connection.send(side.endpoint())
        for _ in range(MAX_COMMANDS):
            try:
                command: JSON = await asyncio.to_thread(connection.recv)
            except EOFError:  # the bot process is gone
                return
            if command.get("load") is None:
                return
            gc.collect()  # start-up and the rows before are not the next row's garbage to scan again
            gc.freeze()
            connection.send(asdict(await side.run(Load(**command["load"]))))


@asynccontextmanager
async def telegram_side(*, inline: bool, seed: int) -> AsyncIterator[Side]:
    """The Telegram side, in this event loop or in a child process of its own."""
    if inline:
        async with TelegramSide(seed) as side:
            yield side
        return
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=serve_telegram, args=(theirs, seed), name="fake-telegram", daemon=True)
    child.start()
    remote = RemoteSide(ours, child)
    try:
        await remote.start()
        yield remote
    finally:
        with contextlib.suppress(OSError):
            ours.send({"load": None})
        await asyncio.to_thread(child.join, 10)
        if child.is_alive():
            child.kill()


# -- the bot side -----------------------------------------------------------------------------------------


@asynccontextmanager
async def scratch_database(kind: str) -> AsyncIterator[str]:
    """A fresh, migrated database of ``kind``; deleted afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="govbot-bench-") as folder:
            yield f"sqlite+aiosqlite:///{folder}/govbot.db"  # create_app migrates SQLite itself
        return
    async with scratch_postgres(ADMIN_URL, "govbot_bench_tg") as url:
        yield url


@asynccontextmanager
async def running_bot(database_url: str, telegram: JSON) -> AsyncIterator[TelegramChannel]:
    """govbot's app in webhook mode on 127.0.0.1, talking to the given Bot API; its Telegram channel."""
    listening = local_socket()
    settings = load_settings(
        database_url=database_url, telegram_token=telegram["token"],
        telegram_api_base_url=telegram["base_url"],
        public_url=f"http://127.0.0.1:{listening.getsockname()[1]}",
        telegram_rate_limit=False, flood_limit_per_minute=FLOOD_LIMIT,
    )
    logging.getLogger().setLevel(settings.log_level)  # as `govbot run` does
    runner = web.AppRunner(create_app(settings), access_log_class=AccessLog)  # the access log as `govbot run`
    try:
        await runner.setup()
        await web.SockSite(runner, listening).start()
        yield runner.app[TELEGRAM]
    finally:
        await runner.cleanup()
        listening.close()  # the site closes it once started; this is for a start that failed


class Bot(Protocol):
    """The bot under test, in this process or as `govbot run --workers N`."""

    def cpu(self) -> float:
        """CPU seconds the bot has used so far."""
        ...

    async def idle(self) -> None:
        """Wait until every update stored so far has been processed."""
        ...


class InProcessBot:
    def __init__(self, channel: TelegramChannel) -> None:
        self._channel = channel

    def cpu(self) -> float:
        return time.process_time()

    async def idle(self) -> None:
        await self._channel.idle()


@asynccontextmanager
async def bot_in_process(database_url: str, telegram: JSON) -> AsyncIterator[Bot]:
    async with running_bot(database_url, telegram) as channel:
        yield InProcessBot(channel)


class WorkerProcesses:
    """`govbot run --workers N` started as operators start it, its settings in the environment."""

    def __init__(self, process: asyncio.subprocess.Process, database_url: str) -> None:
        self._process = process
        self._engine = db.create_engine(database_url)

    def cpu(self) -> float:
        """The supervisor's and its workers' CPU (all alive for the whole run)."""
        pids = [self._process.pid, *worker_pids(self._process.pid)]
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                total += process_cpu(pid)
        return total

    async def idle(self) -> None:
        while True:
            async with self._engine.connect() as conn:
                left = (await conn.execute(text(
                    "SELECT count(*) FROM inbox_updates WHERE processed_at IS NULL"))).scalar_one()
            if not left:
                return
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        await self._engine.dispose()


@asynccontextmanager
async def bot_workers(database_url: str, telegram: JSON, workers: int,
                      webhook_set: Callable[[], bool]) -> AsyncIterator[Bot]:
    port = free_port()
    environment = {
        **os.environ, "GOVBOT_DATABASE_URL": database_url, "GOVBOT_TELEGRAM_TOKEN": telegram["token"],
        "GOVBOT_TELEGRAM_API_BASE_URL": telegram["base_url"], "GOVBOT_HTTP_HOST": "127.0.0.1",
        "GOVBOT_HTTP_PORT": str(port), "GOVBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "GOVBOT_TELEGRAM_RATE_LIMIT": "false", "GOVBOT_FLOOD_LIMIT_PER_MINUTE": str(FLOOD_LIMIT),
    }
    process = await asyncio.create_subprocess_exec(
        str(REPO / ".venv" / "bin" / "govbot"), "run", "--workers", str(workers), env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    bot = WorkerProcesses(process, database_url)
    try:
        deadline = time.monotonic() + 60
        while not (webhook_set() and (workers == 1 or len(worker_pids(process.pid)) == workers)):
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"govbot run --workers {workers} did not start")
            await asyncio.sleep(0.2)
        await settled(bot)
        yield bot
    finally:
        process.terminate()
        await process.wait()
        await bot.close()


async def settled(bot: WorkerProcesses) -> None:
    """Wait until the workers have finished starting: less than SETTLED_CPU of a core over a second.

    A worker that is still importing and building its index when the others already serve would have
    its start-up counted as the idle bot's CPU, or as the first row's (a fixed 2 s wait was too short on
    a slow machine: the idle reading was 44–84 % of a core).
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    before = bot.cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = bot.cpu()
        if now - before < SETTLED_CPU:
            return
        before = now
    raise RuntimeError(f"govbot run --workers did not settle within {SETTLE_TIMEOUT:g} s")


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    database: str
    load: Load
    outcome: Outcome
    bot_cpu: float
    database_cpu: float | None

    def cells(self) -> list[str]:
        done = len(self.outcome.latencies)
        ms = [f"{1000 * value:.1f}" for value in percentiles(self.outcome.latencies, (50, 95, 99, 100))]
        per_update = [f"{1000 * cpu / max(done, 1):.1f}" if cpu is not None else "–"
                      for cpu in (self.bot_cpu, self.database_cpu, self.outcome.cpu)]
        return [
            self.database, self.load.label, f"{done}", f"{done / self.outcome.elapsed:.0f}", *ms,
            f"{self.outcome.refused + self.outcome.lost}", " / ".join(per_update),
            f"{100 * self.bot_cpu / self.outcome.elapsed:.0f}%",
        ]


HEADERS = ["database", "load", "answered", "updates/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failed",
           "CPU ms/update: bot / PostgreSQL / Telegram", "bot busy"]


def percentiles(values: list[float], points: tuple[int, ...]) -> list[float]:
    """Nearest-rank percentiles; zeros for no values."""
    ordered = sorted(values)
    if not ordered:
        return [0.0 for _ in points]
    return [ordered[min(len(ordered) - 1, max(0, -(-point * len(ordered) // 100) - 1))] for point in points]


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [HEADERS, ["---"] * len(HEADERS), *(row.cells() for row in rows)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


async def bench_database(kind: str, loads: list[Load], warmup: Load, *, inline: bool,
                         seed: int, workers: int = 0) -> list[Row]:
    """Every load against one fresh database, after a warm-up run."""
    rows: list[Row] = []
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_database(kind))
        if workers:  # the bot in processes of its own, so Telegram can be in this one
            local = await stack.enter_async_context(TelegramSide(seed))
            side: Side = local
            bot = await stack.enter_async_context(bot_workers(
                url, side.endpoint(), workers, lambda: local.fake.webhook.url is not None))
        else:
            side = await stack.enter_async_context(telegram_side(inline=inline, seed=seed))
            bot = await stack.enter_async_context(bot_in_process(url, side.endpoint()))
        database = make_url(url).database if kind == "postgresql" else None
        await side.run(warmup)
        await bot.idle()
        cpu = bot.cpu()
        await asyncio.sleep(IDLE_SECONDS)
        print(f"{kind}: the idle bot (background jobs) uses "
              f"{100 * (bot.cpu() - cpu) / IDLE_SECONDS:.1f}% of a core", flush=True)
        for load in loads:
            async with server_cpu(database) as spent:
                cpu = bot.cpu()
                outcome = await side.run(load)
                bot_cpu = bot.cpu() - cpu
            await bot.idle()  # inbox bookkeeping of the last updates, before the next row starts
            rows.append(Row(kind, load, outcome, bot_cpu, spent[0] if database else None))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--updates", type=int, default=3000, help="updates per row (default 3000)")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32],
                        help="closed-loop rows: updates in flight (default 1 8 32)")
    parser.add_argument("--rate", type=float, nargs="*", default=[300.0],
                        help="paced rows: updates per second (default 300)")
    parser.add_argument("--max-in-flight", type=int, default=200, help="cap of the paced rows")
    parser.add_argument("--warmup", type=int, default=500, help="updates before the measured rows")
    parser.add_argument("--inline", action="store_true",
                        help="run the fake Telegram in the bot's event loop instead of a child process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="run the bot as `govbot run --workers N` (PostgreSQL only) instead of in "
                             "this process; the fake Telegram then runs in this process")
    parser.add_argument("--log-file", default=os.devnull, help="where the bot's log goes (default nowhere)")
    parser.add_argument("--no-match-cache", action="store_true",
                        help="score every question afresh (the script's questions repeat, so the bot's "
                             "cache of recent matches answers most of them otherwise)")

    args = parser.parse_args(argv)
    if args.workers and args.database != "postgresql":
        parser.error("--workers needs --database postgresql")
    if args.updates < 1 or args.warmup < 0 or args.max_in_flight < 1:
        parser.error("--updates and --max-in-flight must be positive, --warmup not negative")
    if any(c < 1 for c in args.concurrency) or any(r <= 0 for r in args.rate):
        parser.error("concurrency and rates must be positive")
    return args


async def main(args: argparse.Namespace) -> None:
    if args.no_match_cache:
        os.environ["GOVBOT_MATCH_CACHE_SIZE"] = "0"  # the bot's settings are read from the environment
    loads = [Load(args.updates, c) for c in args.concurrency]
    loads += [Load(args.updates, args.max_in_flight, r) for r in args.rate]
    warmup = Load(args.warmup, 8)
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    print(f"nproc {os.cpu_count()}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f"Telegram {'in the bot process' if args.inline else 'in a child process'}, "
          f"match cache {'off' if args.no_match_cache else 'on'}", flush=True)
    print("\n".join(table([]).splitlines()[:2]), flush=True)
    for kind in kinds:
        await bench_database(kind, loads, warmup, inline=args.inline, seed=args.seed, workers=args.workers)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)


def configure_logging(log_file: str) -> None:
    """The log set up as the `govbot` command does it: WARNING format, masked; the level comes later."""
    logging.basicConfig(level=logging.WARNING, filename=log_file,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mask_logs()


if __name__ == "__main__":
    arguments = parse_args()
    configure_logging(arguments.log_file)
    run_benchmark(main(arguments))
