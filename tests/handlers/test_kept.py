"""Replies kept for the notifier: kept as written, buttons included; masked once finished."""

from __future__ import annotations

from handlers.escalation import notice_replies
from handlers.kept import KEPT, at_rest, kept_data
from handlers.types import Button, Reply

PHONE = "13812345678"


def test_kept_replies_come_back_as_written_with_their_buttons() -> None:
    replies = [Reply(f"Call <b>{PHONE}</b>.", kind="answer"),
               Reply("Pick one.", buttons=((Button("Yes", payload="y"), Button("Site", url="https://x.gov")),))]
    assert notice_replies(KEPT, kept_data(replies), "zh") == replies


def test_a_finished_notice_keeps_the_texts_masked_and_no_buttons() -> None:
    data = kept_data([Reply(f"Call {PHONE}.", buttons=((Button("Yes", payload="y"),),))])
    [kept] = at_rest(data)["replies"]
    assert PHONE not in kept["text"]
    assert "buttons" not in kept
