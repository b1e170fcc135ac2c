"""Greeting, help and the choice of language."""

from __future__ import annotations

import re

from handlers import browse
from handlers.i18n import LANGUAGES, t
from handlers.router import Router, Turn
from handlers.types import Button, Reply

router = Router()

LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What Telegram lets a ``start`` deep link carry; anything else was not made by a link."""
TOPIC_LINK = "topic_"


def language_buttons() -> tuple[tuple[Button, ...], ...]:
    return (tuple(Button(LANGUAGE_NAMES[code], payload=f"lang:{code}") for code in LANGUAGES),)


@router.command("start")
@router.reads_no_messages
async def start(turn: Turn) -> list[Reply]:
    """Greet, show the privacy notice, offer the languages and the menu; then what a deep link opens."""
    menu = (Button(turn.t("btn_menu"), payload="menu:1"),)
    return [
        Reply(turn.t("greeting") + "\n\n" + turn.t("privacy_notice"), buttons=(menu,), kind="start"),
        Reply(turn.t("choose_language"), buttons=language_buttons(), kind="language"),
        *await _linked(turn, turn.args),
    ]


async def _linked(turn: Turn, link: str) -> list[Reply]:
    """What a deep link (``t.me/<bot>?start=<link>``, on a poster or a web page) opens: ``topic_<category>``
    a topic's questions, ``<entry id>`` an entry's answer; nothing for anything else (mistyped, forged,
    an entry withdrawn since), which leaves the plain greeting."""
    if not DEEP_LINK.fullmatch(link):
        return []
    code = link.removeprefix(TOPIC_LINK)
    if code != link and turn.knowledge.category(code) is not None:
        return [browse.topic(turn, code, 1, replace=False)]
    entry = turn.entry(link)
    return [await browse.shown(turn, entry, how="linked")] if entry is not None else []


HELP_COMMANDS = ("menu", "language", "human", "status", "feedback", "mydata", "privacy", "forget")
"""The commands /help explains, in its order; a channel's command menu lists these, /help and /start."""


def help_text(lang: str) -> str:
    """/help: how to ask, then each command with what it does."""
    lines = [t(lang, "help_title"), "• " + t(lang, "help_ask")]
    lines += [f"• /{name} — {t(lang, f'command_{name}')}" for name in HELP_COMMANDS]
    return "\n".join(lines)


def command_menu(lang: str) -> list[tuple[str, str]]:
    """The commands a channel offers in its own menu (Telegram's "/" list), each with what it does."""
    described = [(name, str(t(lang, f"command_{name}"))) for name in (*HELP_COMMANDS, "help", "start")]
    return [(name, text[:1].upper() + text[1:]) for name, text in described]


@router.command("help")
@router.reads_no_messages
async def help_(turn: Turn) -> list[Reply]:
    """What the account can do."""
    return [Reply(help_text(turn.lang), kind="help")]


@router.command("language", "lang")
@router.reads_no_messages
async def choose_language(turn: Turn) -> list[Reply]:
    """Offer the languages."""
    return turn.say("choose_language", kind="language", buttons=language_buttons())


@router.button("lang")
async def set_language(turn: Turn) -> list[Reply]:
    """Remember the citizen's language and confirm in it."""
    if turn.args not in LANGUAGES:
        return turn.say("button_expired", kind="expired")
    await turn.citizens.set_language(turn.citizen.id, turn.args)
    turn.lang = turn.args
    confirmation = t(turn.lang, "language_set")
    return [Reply(confirmation, notice=confirmation, kind="language_set")]
