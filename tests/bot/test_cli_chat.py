"""`govbot chat` as staff try it: the real dialogue on a SQLite file, typed lines in, the terminal out."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.channels import console
from bot.channels.console import render, to_incoming
from bot.cli import main
from bot.commands.run import _stdin_lines
from handlers.escalation import notice_replies
from handlers.i18n import t
from handlers.types import Button, Document, Incoming, Reply
from tests.conftest import clear_govbot_settings


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    clear_govbot_settings(monkeypatch)
    path = tmp_path / "var" / "govbot.db"
    monkeypatch.setenv("GOVBOT_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


def chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *lines: str,
         args: tuple[str, ...] = ()) -> list[str]:
    """What the terminal shows for ``lines`` typed into `govbot chat`, one string per prompt."""
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    assert main(["chat", *args]) == 0
    return capsys.readouterr().out.split("> ")


def test_the_chat_greets_then_answers_a_question_with_numbered_buttons(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    greeting, answer, end = chat(monkeypatch, capsys, "How do I renew my identity card?")
    assert greeting.startswith("👋 Welcome")
    assert "  [1] 📚 Browse topics\n" in greeting
    assert "The fee is 20 yuan" in answer  # the answer's HTML shown as plain text
    assert "  [1] Book an ID card appointment → https://registry." in answer
    assert "  [2] 👍 Helpful\n  [3] 👎 Not helpful\n" in answer
    assert end == "\n"  # the input ended: the chat says goodbye with a new line and stops


def test_a_number_presses_the_button_it_names(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, menu, topic, _ = chat(monkeypatch, capsys, "/menu", "3")
    assert menu.startswith("Topics — choose one:")
    assert "  [3] ID cards and household registration\n" in menu
    assert topic.startswith("ID cards and household registration — choose a question:")


def test_the_number_of_a_link_shows_where_it_leads_and_keeps_the_buttons(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, answer, link, rated, _ = chat(monkeypatch, capsys, "How do I renew my identity card?", "1", "2")
    assert "[1] Book an ID card appointment" in answer
    url = "https://registry.harbourside.example.gov/id-card/renew"
    assert link == str(t("en", "console_open_link", url=url)) + "\n"
    assert t("en", "rating_thanks") in rated  # "2" still meant the answer's "Helpful"


def test_the_console_speaks_the_conversations_language_about_links(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, answer, link, _ = chat(monkeypatch, capsys, "身份证到期了怎么换", "1")
    url = answer.split(" → ")[1].split("\n")[0]
    assert link == str(t("zh", "console_open_link", url=url)) + "\n"


def test_the_console_follows_a_language_chosen_in_the_chat_over_lang(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    greeting, chosen, answer, link, _ = chat(
        monkeypatch, capsys, "2", "How do I renew my identity card?", "1", args=("--lang", "zh"))
    assert "  [2] English\n" in greeting
    assert chosen == str(t("en", "language_set")) + "\n"
    url = answer.split(" → ")[1].split("\n")[0]
    assert link == str(t("en", "console_open_link", url=url)) + "\n"
    greeting, _, link, _ = chat(  # the next chat remembers the choice
        monkeypatch, capsys, "How do I renew my identity card?", "1", args=("--lang", "zh"))
    assert greeting.startswith("👋 Welcome")
    assert link == str(t("en", "console_open_link", url=url)) + "\n"


def test_a_number_without_a_button_is_a_question_and_quit_stops(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, not_a_button, end = chat(monkeypatch, capsys, "99", "/quit", "How do I renew my identity card?")
    assert not_a_button.startswith(t("en", "fallback").split("\n")[0])
    assert end == "\n"  # nothing after /quit was read


@pytest.mark.parametrize("typed", ["／quit", "/QUIT", "/quit@govbot", "/exit please"])
def test_quit_is_read_as_the_dialogue_reads_commands(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], typed: str) -> None:
    # A Chinese input method types "／"; the dialogue takes it for "/", so "I don't know /quit" was the reply.
    _, end = chat(monkeypatch, capsys, typed, "How do I renew my identity card?")
    assert end == "\n"


def test_bytes_the_terminal_cannot_decode_or_encode_do_not_end_the_chat(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A UTF-8 locale other than C decodes strictly; a Latin-1 terminal cannot show "👋" or "中文".
    typed = io.BytesIO(b"r\xc3\xa9sum\xc3\xa9 \xff\xfe\n" + "身份证".encode("gbk") + b"\n/help\n")
    screen = io.BytesIO()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(typed, encoding="utf-8", errors="strict"))
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(screen, encoding="latin-1", errors="strict"))
    assert main(["chat"]) == 0
    sys.stdout.flush()
    shown = screen.getvalue().decode("latin-1").split("> ")
    assert shown[0].startswith("? Welcome")
    assert shown[3].startswith("How to use this account")


def test_ctrl_c_ends_the_chat_without_waiting_for_the_line_being_typed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    reading, typed, finished = threading.Event(), threading.Event(), threading.Event()

    class Terminal(io.StringIO):
        def readline(self, size: int | None = -1) -> str:  # type: ignore[override]  # nobody types yet
            reading.set()
            typed.wait(timeout=10)
            finished.set()
            return ""

    async def interrupted() -> None:
        line = asyncio.ensure_future(anext(_stdin_lines()))
        await asyncio.to_thread(reading.wait)
        line.cancel()  # what asyncio.run does with the chat on Ctrl-C

    monkeypatch.setattr("sys.stdin", Terminal())
    asyncio.run(interrupted())
    assert not finished.is_set()  # the chat ended while the line was still being read, not after Enter
    typed.set()


def test_lang_starts_the_chat_in_that_language(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    greeting, answer, _ = chat(monkeypatch, capsys, "身份证到期了怎么换", args=("--lang", "zh"))
    assert greeting.startswith("👋 欢迎")
    assert "换领费用20元" in answer


def test_a_typed_line_is_a_message_unless_it_is_the_number_of_a_button() -> None:
    buttons = [Button("Helpful", payload="rate:1:1"), Button("Site", url="https://example.org/")]
    assert to_incoming(" 1 ", buttons, language="en").payload == "rate:1:1"
    assert to_incoming("0", buttons, language="en").text == "0"
    assert to_incoming("3", buttons, language="en").text == "3"
    assert to_incoming("12345 hotline", buttons, language=None).text == "12345 hotline"
    assert to_incoming("²", buttons, language="en").text == "²"  # a digit to isdigit(), not to int()


def test_control_characters_in_a_departments_reply_never_reach_the_terminal() -> None:
    out = io.StringIO()
    text = "Refund sent.\x1b]0;owned\x07\x1b[2J\x9b31m\r Regards"  # retitle, clear, C1 CSI, overwrite
    notice = {"ticket": "TR-2026-000001", "department": "TAX", "case_id": 1, "text": text}
    render(notice_replies("reply", notice, "en"), out, language="en")
    shown = out.getvalue()
    assert re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown) is None
    assert "Refund sent.]0;owned[2J31m Regards\n" in shown


async def test_a_links_address_is_printed_as_it_is_not_as_html() -> None:
    url = "https://registry.example.gov/book?office=3&day=mon"

    class Linking:
        async def handle(self, incoming: Incoming) -> list[Reply]:
            return [Reply("See the link.", buttons=((Button("Book", url=url),),))]

    async def typed() -> AsyncIterator[str]:
        yield "1\n"

    out = io.StringIO()
    await console.chat(Linking(), typed(), out, language="en")
    _, pressed, _ = out.getvalue().split("> ")
    assert f"→ {url}\n" in out.getvalue()
    assert pressed == f"Open {url} in your browser.\n"


def test_a_reply_that_replaces_the_pressed_message_takes_its_buttons_away(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # On Telegram "erased" is edited into the confirmation, whose buttons go with it; the console kept
    # them, and "2" then pressed "No, keep it" and said nothing was erased just after everything was.
    _, confirm, erased, after, _ = chat(monkeypatch, capsys, "/forget", "1", "2")
    assert "  [2] ✖ No, keep it\n" in confirm
    assert erased.startswith(str(t("en", "forget_done")))
    assert str(t("en", "forget_cancelled")) not in after


def test_a_language_govbot_does_not_speak_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # --lang fr ran in English without a word, and zh-CN spoke Chinese with the console's lines in English.
    for language in ("fr", "zh-CN"):
        with pytest.raises(SystemExit) as stopped:
            main(["chat", "--lang", language])
        assert stopped.value.code == 2
        assert "--lang: invalid choice" in capsys.readouterr().err


def test_mydata_writes_the_export_to_a_file_in_the_current_directory_and_says_where(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    _, _, export, again, _ = chat(monkeypatch, capsys, "How do I renew my identity card?", "/mydata",
                                  "/mydata")
    [saved] = re.findall(r"^\[.*?(/\S+\.json).*\]$", export, flags=re.MULTILINE)
    path = Path(saved)
    assert path.parent == tmp_path.resolve()
    said = [message["text"] for message in json.loads(path.read_bytes())["messages"]]
    assert "How do I renew my identity card?" in said
    assert path.stat().st_mode & 0o077 == 0  # what is held about a citizen, for their eyes only
    [second] = re.findall(r"^\[.*?(/\S+\.json).*\]$", again, flags=re.MULTILINE)
    # The first export is kept, not overwritten.
    assert set(tmp_path.resolve().glob("mydata-*.json")) == {path, Path(second)}


def test_an_export_that_cannot_be_written_is_said_and_the_chat_goes_on(tmp_path: Path) -> None:
    out = io.StringIO()
    reply = Reply("Your data", document=Document("mydata.json", b"{}"))
    render([reply], out, language="en", folder=tmp_path / "gone")
    assert out.getvalue().splitlines()[1].startswith("[mydata.json could not be saved")
