"""Browsing the knowledge base: topics, the questions in a topic, an entry's answer."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from handlers.answers import answer_reply, button_label, entry_label
from handlers.router import Router, Turn
from handlers.types import MAX_PAYLOAD_BYTES, Button, Reply
from knowledge.entry import Entry
from storage.numbers import whole_number

log = logging.getLogger(__name__)
router = Router()

TOPICS_PER_PAGE = 8
QUESTIONS_PER_PAGE = 6
MAX_PAGE = 9_999
"""The highest page number a button can name."""


@router.command("menu")
@router.reads_no_messages
async def menu(turn: Turn) -> list[Reply]:
    """The first page of topics, as a new message."""
    return [_topics(turn, 1, replace=False)]


@router.button("menu")
async def menu_page(turn: Turn) -> list[Reply]:
    """A page of topics, replacing the message the button was on."""
    return [_topics(turn, _page(turn.args), replace=True)]


@router.button("cat")
async def category(turn: Turn) -> list[Reply]:
    """A page of the questions in one topic."""
    code, _, page = turn.args.rpartition(":")
    return [topic(turn, code, _page(page), replace=True)]


def topic(turn: Turn, code: str, page: int, *, replace: bool) -> Reply:
    """A page of the questions in one topic; the topics, when it has none to show."""
    found = turn.knowledge.category(code)
    entries = [e for e in turn.knowledge.entries_in(code) if turn.shows(e) and _fits(e)]
    if found is None or not entries:
        return _topics(turn, 1, replace=replace)
    pages = max(1, math.ceil(len(entries) / QUESTIONS_PER_PAGE))
    current = min(page, pages)
    shown = entries[(current - 1) * QUESTIONS_PER_PAGE : current * QUESTIONS_PER_PAGE]
    rows: list[tuple[Button, ...]] = [
        (Button(entry_label(turn, e), payload=f"show:{e.id}"),) for e in shown
    ]
    rows.append(_pager(turn, lambda p: f"cat:{code}:{p}", current, pages))
    rows.append((Button(turn.t("btn_back"), payload="menu:1"),))
    text: str = turn.t("category_title", category=turn.localized(found.name) or code)
    if pages > 1:
        text += "\n" + turn.t("page", page=current, pages=pages)
    return Reply(text, buttons=tuple(row for row in rows if row), replace=replace, kind="menu")


@router.button("show")
async def show(turn: Turn) -> list[Reply]:
    """An entry's answer, chosen from the menu."""
    entry = turn.entry(turn.args)
    if entry is None:
        return turn.say("entry_gone", kind="expired")
    return [await shown(turn, entry, how="browsed")]


async def shown(turn: Turn, entry: Entry, *, how: str) -> Reply:
    """The entry's answer, recorded as shown to the citizen ``how`` (``browsed``, ``linked``)."""
    answer_id = await turn.questions.record_answer(turn.citizen.id, entry.id, how=how, now=turn.now)
    return answer_reply(turn, entry, answer_id)


def _topics(turn: Turn, page: int, *, replace: bool) -> Reply:
    categories = [
        c for c in turn.knowledge.kb.categories if turn.knowledge.entries_in(c.code) and _fits_topic(c.code)
    ]
    if not categories:
        return Reply(turn.t("menu_empty"), kind="menu")
    pages = max(1, math.ceil(len(categories) / TOPICS_PER_PAGE))
    current = min(page, pages)
    shown = categories[(current - 1) * TOPICS_PER_PAGE : current * TOPICS_PER_PAGE]
    buttons = [
        Button(button_label(turn.localized(c.name) or c.code), payload=f"cat:{c.code}:1") for c in shown
    ]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    rows.append(_pager(turn, lambda p: f"menu:{p}", current, pages))
    text: str = turn.t("menu_title")
    if pages > 1:
        text += "\n" + turn.t("page", page=current, pages=pages)
    return Reply(text, buttons=tuple(row for row in rows if row), replace=replace, kind="menu")


def _pager(turn: Turn, make: Callable[[int], str], current: int, pages: int) -> tuple[Button, ...]:
    row = []
    if current > 1:
        row.append(Button(turn.t("btn_previous"), payload=make(current - 1)))
    if current < pages:
        row.append(Button(turn.t("btn_next"), payload=make(current + 1)))
    return tuple(row)


def _page(text: str) -> int:
    return whole_number(text, 1, MAX_PAGE) or 1


def _fits_topic(code: str) -> bool:
    if len(f"cat:{code}:{MAX_PAGE}".encode()) <= MAX_PAYLOAD_BYTES:
        return True
    log.warning("category code %r is too long for a button; its topic cannot be browsed", code)
    return False


def _fits(entry: Entry) -> bool:
    if len(f"show:{entry.id}".encode()) <= MAX_PAYLOAD_BYTES:
        return True
    log.warning("entry id %r is too long for a button; it cannot be browsed", entry.id)
    return False
