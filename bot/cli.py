"""The `govbot` command: run the bot and manage its database, knowledge base and departments."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot.commands import audit as audit_commands
from bot.commands import clearance as clearance_commands
from bot.commands import db as db_commands
from bot.commands import deliveries as deliveries_commands
from bot.commands import departments as departments_commands
from bot.commands import kb as kb_commands
from bot.commands import report as report_commands
from bot.commands import retention as retention_commands
from bot.commands import run as run_commands
from bot.config import ConfigError, Settings, load_settings
from bot.entry import INTERRUPTED
from bot.log_masking import log_masked
from knowledge.formats import KnowledgeLoadError
from storage import masking
from storage.db import DatabaseUnavailable, error_reason

Handler = Callable[[argparse.Namespace, Callable[[], Settings]], int]


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; each command module adds its own sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="YAML settings file (environment variables GOVBOT_* override it)",
    )
    parser = argparse.ArgumentParser(prog="govbot", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run_commands, db_commands, kb_commands, report_commands, departments_commands,
                   deliveries_commands, audit_commands, clearance_commands, retention_commands):
        module.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `govbot` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_masked()
    handler: Handler = args.handler

    def settings() -> Settings:
        loaded = load_settings(getattr(args, "config", None))
        masking.use_region(loaded.phone_region)
        return loaded

    try:
        return handler(args, settings)
    except ConfigError as exc:
        print(f"govbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:
        print(f"govbot: database error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # the database failed the work itself: locked, full, gone mid-way
        print(f"govbot: database error: {error_reason(exc)}", file=sys.stderr)
        return 1
    except KnowledgeLoadError as exc:
        # Reassuring only where the command writes (read-only ones set writes=False); of `kb lint` it would
        # suggest that it might have.
        unchanged = ", nothing was changed" if getattr(args, "writes", True) else ""
        print(f"govbot: {len(exc.errors)} problem(s) in the knowledge-base files{unchanged}:",
              file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`govbot … | head`): stop quietly, as a tool killed by SIGPIPE would, and
        # point stdout at nothing so the interpreter's last flush does not fail again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
