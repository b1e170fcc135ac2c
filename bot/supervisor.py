"""`govbot run --workers N`: N server processes on one port, each restarted if it dies.

One Python process answers on one core; on a machine with more, a busy bot runs several. Each worker
is a whole `govbot run` (HTTP server, Telegram webhook, web chat, department API, dispatcher, notifier)
listening on the same address with SO_REUSEPORT, so the kernel spreads connections among them. They
share everything through PostgreSQL: the inbox, a citizen's conversation (locked for the length of a
turn), the flood limit, the outbox. The supervisor only starts, watches and stops them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from bot.app import seed_knowledge
from bot.config import ConfigError, Settings
from bot.log_masking import log_masked
from bot.metrics import MULTIPROCESS_DIR
from bot.workers import FORCE_AFTER, HTTP_SHUTDOWN_TIMEOUT, STOP_TIMEOUT
from storage import db, masking
from storage.numbers import whole_number

log = logging.getLogger(__name__)

RESTARTS_PER_MINUTE = 5
"""A worker that dies more often than this gives up the whole service (exit code 1): it is broken,
not unlucky, and an operator's process manager should see the failure."""
STOP_GRACE = HTTP_SHUTDOWN_TIMEOUT + STOP_TIMEOUT + 5.0
"""Seconds a worker has after SIGTERM before SIGKILL: its own graceful shutdown (requests in flight, then
deliveries in flight), and a margin. Killed sooner, a delivery in flight would be sent again after its
lease."""
ORPHAN_CHECK_SECONDS = 1.0
CONFIGURATION_ERROR = 2
"""A worker's exit code when a setting is wrong (Telegram refuses the token): every worker would fail alike
and no restart can help, so the service stops with this code, as a single `govbot run` does."""
METRICS_PREFIX = "govbot-metrics-"
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"

Serve = Callable[[Settings, bool], None]
"""Runs one server until SIGTERM: the settings, and whether to listen with SO_REUSEPORT."""


def refusal(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` processes cannot run with these settings, or None."""
    if workers == 1:
        return None
    if not settings.database_url.startswith("postgresql"):
        return "GOVBOT_WORKERS above 1 needs PostgreSQL: SQLite takes one writer at a time"
    if settings.telegram_token is not None and settings.public_url is None:
        return ("GOVBOT_WORKERS above 1 needs Telegram in webhook mode (GOVBOT_PUBLIC_URL): "
                "only one process may long-poll a bot")
    return None


def supervise(settings: Settings, workers: int, serve: Serve) -> int:
    """Prepare the database once, run ``workers`` servers until SIGINT or SIGTERM; the exit code."""
    asyncio.run(_prepare(settings))  # migrations checked and the first seed done once, not raced
    supervisor = _Supervisor(settings, workers, serve)
    previous = {number: signal.signal(number, supervisor.stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with metrics_folder(tempfile.gettempdir()) as metrics:
            os.environ[MULTIPROCESS_DIR] = metrics  # the workers inherit it: one /metrics for all of them
            return supervisor.run()
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def metrics_folder(parent: str) -> Iterator[str]:
    """A folder in ``parent`` for the workers' metrics files, named after this process and removed at exit.

    A supervisor killed with SIGKILL leaves its folder behind; the next one removes those whose
    supervisor is gone: no process has its id, or the id is this process's own (a container restarted
    under the same id), as this one has made none yet.
    """
    for left in Path(parent).glob(f"{METRICS_PREFIX}*-*"):
        pid = whole_number(left.name.removeprefix(METRICS_PREFIX).partition("-")[0], 1, 2**22)
        if pid is not None and (pid == os.getpid() or not _alive(pid)):
            shutil.rmtree(left, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"{METRICS_PREFIX}{os.getpid()}-", dir=parent) as folder:
        yield folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


async def _prepare(settings: Settings) -> None:
    async with db.connected(settings.database_url) as engine:
        await seed_knowledge(db.sessionmaker(engine), settings.kb_paths)


class _Supervisor:
    def __init__(self, settings: Settings, workers: int, serve: Serve) -> None:
        self._settings, self._serve = settings, serve
        self._context = multiprocessing.get_context("spawn")  # no copied event loops, pools or locks
        self._count = workers
        self._workers: list[BaseProcess] = []
        self._deaths: list[float] = []
        self._stopping = False
        self._signals = 0
        self._forced: int | None = None
        """The signal that stopped the workers at once, if one did: the exit code says so."""

    def stop(self, signum: int, frame: FrameType | None) -> None:
        """The first signal stops the workers gracefully; the third (an operator's Ctrl-C, three times)
        kills them, as a lone `govbot run` stops at once then."""
        self._signals += 1
        self._stopping = True
        if self._signals >= FORCE_AFTER:
            self._forced = signum
            log.warning("govbot: %s a third time; killing the workers: work in flight goes again after its "
                        "lease", signal.Signals(signum).name)
            for process in self._workers:
                if process.is_alive():
                    process.kill()

    def run(self) -> int:
        for number in range(self._count):
            self._start(number)
        log.info("govbot: %d workers on http://%s:%d", self._count, self._settings.http_host,
                 self._settings.http_port)
        code = 0
        while not self._stopping:
            wait([process.sentinel for process in self._workers], timeout=0.5)
            for number, process in enumerate(self._workers):
                if process.is_alive() or self._stopping:
                    continue
                if process.exitcode == CONFIGURATION_ERROR:
                    log.critical("govbot: worker %d stopped on a configuration error; stopping", number + 1)
                    self._stopping, code = True, CONFIGURATION_ERROR
                    break
                log.error("govbot: worker %d exited with code %s; starting it again", number + 1,
                          process.exitcode)
                if self._too_many_deaths():
                    log.critical("govbot: workers keep dying (%d in a minute); stopping",
                                 RESTARTS_PER_MINUTE + 1)
                    self._stopping, code = True, 1
                    break
                if not self._start(number):
                    break
        self._stop_all()
        log.info("govbot stopped")
        return code if self._forced is None else 128 + self._forced

    def _start(self, number: int) -> bool:
        """Start worker ``number`` in its place in the list, unless a stop has begun; whether it did.

        Stop signals wait meanwhile: one that came between the look at ``_stopping`` and the start began
        a worker after the stop, and one during the start left it out of the list the third signal kills.
        """
        with _stop_signals_held():
            if self._stopping:
                return False
            process = self._context.Process(target=_worker, args=(self._settings, self._serve, os.getpid()),
                                            name=f"worker-{number + 1}", daemon=False)
            process.start()
            self._workers[number:number + 1] = [process]
        return True

    def _too_many_deaths(self) -> bool:
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < 60] + [now]
        return len(self._deaths) > RESTARTS_PER_MINUTE

    def _stop_all(self) -> None:
        running = [process for process in self._workers if process.is_alive()]
        for process in running:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("govbot: %s did not stop in %.0f s; killed", process.name, STOP_GRACE)
                process.kill()
                process.join()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (blocked, not lost) while a worker starts, and the worker is born ignoring
    SIGINT: it spends a second importing in the supervisor's process group before it leaves it, and a
    terminal's Ctrl-C then raised KeyboardInterrupt in it, with a traceback. The worker inherits the
    blocked signals and unblocks them itself (``_worker``)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _worker(settings: Settings, serve: Serve, supervisor: int) -> None:
    """A worker process: its own process group (a terminal's Ctrl-C reaches the supervisor, which
    stops the workers in order), the log set up as `govbot` does it, then one server."""
    os.setpgrp()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # SIGINT ignored until the server handles it
    threading.Thread(target=_orphan_watch, args=(supervisor,), name="orphan-watch", daemon=True).start()
    log_masked(WORKER_LOG_FORMAT)
    logging.getLogger().setLevel(settings.log_level)
    masking.use_region(settings.phone_region)
    try:
        serve(settings, True)
    except ConfigError as exc:  # said once, as `govbot` says it, instead of a traceback
        print(f"govbot: configuration error: {exc}", file=sys.stderr)
        sys.exit(CONFIGURATION_ERROR)


def _orphan_watch(supervisor: int) -> None:
    """Stop this worker gracefully once its supervisor is gone (killed with SIGKILL, say): no server
    should outlive the command an operator started and stopped."""
    while os.getppid() == supervisor:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
