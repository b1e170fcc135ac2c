"""What is left of a reply Telegram took only part of."""

from __future__ import annotations

from bot.channels.telegram import catalogue_text, unsent
from bot.channels.telegram_render import split_html
from handlers.types import Button, Document, Reply

YES = ((Button("Yes", payload="y"),),)


def test_the_rest_of_a_long_reply_is_kept_one_message_each_with_the_buttons_on_the_last() -> None:
    text = "\n\n".join(f"Paragraph {n}. " + "word " * 300 for n in range(6))
    parts = split_html(text)
    rest = unsent(Reply(text, buttons=YES, kind="answer"), 1, "en")
    assert [r.text for r in rest] == parts[1:]
    assert [r.buttons for r in rest] == [()] * (len(parts) - 2) + [YES]
    assert {r.kind for r in rest} == {"answer"}


def test_a_document_is_not_kept_and_the_citizen_is_asked_to_try_again() -> None:
    rest = unsent(Reply("Your data.", document=Document("data.json", b"{}")), 0, "zh-hans")
    assert [r.text for r in rest] == [catalogue_text("zh", "error")]
