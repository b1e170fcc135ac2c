"""How an entry is shown as an answer: the text, its links, and the rating buttons."""

from __future__ import annotations

from handlers.router import Turn
from handlers.types import Button, Reply
from knowledge.entry import Entry


def answer_reply(turn: Turn, entry: Entry, answer_id: int) -> Reply:
    """The entry's answer in the citizen's language, links as buttons, then helpful / not helpful."""
    rows: list[tuple[Button, ...]] = [
        (Button(turn.localized(link.title) or link.url, url=link.url),) for link in entry.links
    ]
    rows.append(
        (
            Button(turn.t("btn_helpful"), payload=f"rate:{answer_id}:1"),
            Button(turn.t("btn_not_helpful"), payload=f"rate:{answer_id}:0"),
        )
    )
    return Reply(turn.localized(entry.answer), buttons=tuple(rows), kind="answer")


LABEL_CHARS = 60
"""Button labels longer than this are cut (Telegram shows about this much on a phone)."""


def button_label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def entry_label(turn: Turn, entry: Entry) -> str:
    """An entry's button: its question, else a phrasing of it, else its id; never blank (an entry stored
    without a question, as files allowed before, was a button with no text)."""
    phrasings = entry.alternatives.get(turn.lang) or next((v for v in entry.alternatives.values() if v), [])
    return button_label(turn.localized(entry.question) or next((p for p in phrasings if p.strip()), entry.id))
