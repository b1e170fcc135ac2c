"""`govbot run`: the bot's process, serving HTTP and the channels until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import io
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from bot import supervisor
from bot.app import create_app, seed_knowledge
from bot.channels.console import ConsoleNotices, chat
from bot.config import MAX_WORKERS, Settings
from bot.log_masking import AccessLog
from bot.workers import FORCE_AFTER, HTTP_SHUTDOWN_TIMEOUT
from handlers.dialogue import Dialogue
from handlers.escalation import DEFAULT_DEPARTMENT
from handlers.i18n import LANGUAGES
from storage import db
from storage.knowledge_sync import LiveKnowledge

log = logging.getLogger(__name__)

BACKLOG = 128
"""Connections the kernel holds for the server before it takes them (aiohttp's own default)."""


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("run", help="run the bot: HTTP server, web chat, Telegram", parents=[common])
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="server processes on one port (PostgreSQL only); default GOVBOT_WORKERS or 1")
    parser.set_defaults(handler=run_command)
    parser = commands.add_parser("chat", help="talk to the bot in this terminal", parents=[common])
    parser.add_argument("--lang", default=None, choices=LANGUAGES,
                        help="your language; default: from what you type")
    parser.set_defaults(handler=chat_command)


def run_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Serve until a signal arrives: one process, or ``--workers`` of them under a supervisor."""
    config = settings()
    logging.getLogger().setLevel(config.log_level)
    workers = config.workers if args.workers is None else args.workers
    if not 1 <= workers <= MAX_WORKERS:
        print(f"govbot: --workers must be between 1 and {MAX_WORKERS}", file=sys.stderr)
        return 2
    problem = supervisor.refusal(config, workers)
    if problem is not None:
        print(f"govbot: configuration error: {problem}", file=sys.stderr)
        return 2
    problem = listening_problem(config.http_host, config.http_port)
    if problem is not None:  # found before start-up: a worker that cannot listen would be restarted in vain
        print(f"govbot: {problem}", file=sys.stderr)
        return 1
    if workers > 1:
        return supervisor.supervise(config, workers, serve)
    serve(config, False)
    log.info("govbot stopped")
    return 0


def listening_problem(host: str, port: int) -> str | None:
    """Why the server cannot listen on ``host:port`` (another server has it, the address is not this
    machine's), or None: each address the host names is bound once, as asyncio's server binds it."""
    try:
        for probe in bound_sockets(host, port, reuse_port=False):
            probe.close()
    except OSError as exc:
        return f"cannot listen on {host}:{port} (GOVBOT_HTTP_HOST, GOVBOT_HTTP_PORT): {exc.strerror or exc}"
    return None


def bound_sockets(host: str, port: int, *, reuse_port: bool) -> list[socket.socket]:
    """A socket bound to each address ``host`` names, as asyncio's server binds them; OSError if one
    cannot be (and none is left open)."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def serve(config: Settings, reuse_port: bool) -> None:
    """One server until SIGINT or SIGTERM, which begins a graceful shutdown; a repeated one is ignored."""
    app = create_app(config)
    loop = asyncio.new_event_loop()
    signals = 0

    # Not aiohttp's handle_signals: it raises GracefulExit at every signal, and a second one, raised inside
    # the shutdown, cut it short (deliveries in flight went out again after their leases). systemd's
    # default KillMode signals every worker, and the supervisor then signals them again. A third can only
    # be someone's wish to stop now.
    def stop(number: int) -> None:
        nonlocal signals
        signals += 1
        name = signal.Signals(number).name
        if signals == 1:
            raise web.GracefulExit()
        if signals < FORCE_AFTER:
            log.info("govbot: %s again; still stopping gracefully (once more stops at once)", name)
            return
        log.warning("govbot: %s a third time; stopping at once: work in flight goes again after its lease",
                    name)
        os._exit(128 + number)

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop, number)

    def listening(*_: object) -> None:
        """Called by aiohttp once start-up has succeeded and the server listens (in place of its banner)."""
        log.info("govbot listening on http://%s:%d", config.http_host, config.http_port)

    # Listening before start-up, which registers the Telegram webhook: Telegram's first deliveries wait in
    # the backlog until the server serves them, where a closed port had Telegram wait minutes to try again.
    sockets = bound_sockets(config.http_host, config.http_port, reuse_port=reuse_port)
    try:
        for sock in sockets:
            sock.listen(BACKLOG)
        web.run_app(
            app,
            sock=sockets,
            print=listening,
            shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
            handle_signals=False,
            access_log_class=AccessLog,
            loop=loop,
        )
    finally:
        for sock in sockets:
            sock.close()


def chat_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """The dialogue in the terminal, on the configured database and knowledge base."""
    config = settings()
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):  # what the terminal's encoding lacks: "?" or "�", no crash
            stream.reconfigure(errors="replace")

    async def go() -> None:
        async with db.connected(config.database_url, create=True) as engine:
            sessions = db.sessionmaker(engine)
            await seed_knowledge(sessions, config.kb_paths)
            knowledge = LiveKnowledge(sessions, config.matcher_config(), recent=config.match_cache_size)
            await knowledge.load()
            dialogue = Dialogue(sessions, knowledge, extras={DEFAULT_DEPARTMENT: config.default_department},
                                zone=config.zone())
            notices = ConsoleNotices(sessions, sys.stdout)  # the department's replies to cases opened here
            await chat(dialogue, _stdin_lines(), sys.stdout, language=args.lang, notices=notices)

    asyncio.run(go())
    return 0


async def _stdin_lines() -> AsyncIterator[str]:
    """Typed lines until the input ends, each read in a daemon thread.

    asyncio's own threads are waited for at exit, so one blocked in ``readline`` kept Ctrl-C from
    ending the chat until the next Enter.
    """
    while line := await asyncio.wrap_future(_read_line()):
        yield line


def _read_line() -> concurrent.futures.Future[str]:
    line: concurrent.futures.Future[str] = concurrent.futures.Future()
    line.set_running_or_notify_cancel()  # the read cannot be taken back; Ctrl-C leaves it behind

    def read() -> None:
        try:
            line.set_result(sys.stdin.readline())
        except Exception as exc:  # raised where the chat awaits the line
            line.set_exception(exc)

    threading.Thread(target=read, daemon=True).start()
    return line
