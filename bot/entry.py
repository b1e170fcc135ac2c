"""The `govbot` console script's entry point: the command tree loads in about two seconds, and Ctrl-C in
that time ends the command quietly as it does later, instead of with a traceback of whichever import it
interrupted."""

from __future__ import annotations

import sys

INTERRUPTED = 130
"""128 + SIGINT, as shells report a command stopped by Ctrl-C (and as `bot.cli.main` returns)."""


def main() -> int:
    try:
        from bot.cli import main as command  # here, not at the top: this import is what is guarded

        return command()
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
