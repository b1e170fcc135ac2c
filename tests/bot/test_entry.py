"""The `govbot` console script as a shell starts it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import tomllib

from tests.conftest import REPO, SAMPLE_KB


def test_the_console_script_is_the_guarded_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["govbot"] == "bot.entry:main"


def test_ctrl_c_while_the_command_is_still_loading_ends_it_quietly() -> None:
    # Loading the command tree takes about two seconds; an operator's Ctrl-C in that time printed the
    # traceback of whichever import it interrupted.
    script = "import sys; from bot.entry import main; sys.exit(main())"
    command = [sys.executable, "-c", script, "kb", "ask", "identity card", "--kb", str(SAMPLE_KB)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)  # noqa: S603
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=60)
    assert errors.decode() == ""
    assert output.decode() == ""
    assert process.returncode == 128 + signal.SIGINT
