"""The Makefile's housekeeping keeps what `make run` made."""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import REPO


def test_make_clean_leaves_the_local_database_alone() -> None:
    # `make run` keeps the bot's SQLite database in var/: cleaning caches must not delete citizens' data.
    make = shutil.which("make")
    assert make is not None, "the README's commands need make"
    planned = subprocess.run(  # noqa: S603 - make, found on PATH, with fixed arguments
        [make, "-n", "clean"], cwd=REPO, capture_output=True, text=True, check=True
    )
    commands = [line.split() for line in planned.stdout.splitlines() if line.startswith("rm ")]
    removed = [word for command in commands for word in command]
    assert ".venv" in removed
    assert "var" not in removed
