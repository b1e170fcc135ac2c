"""Greeting, help and the choice of language."""

from __future__ import annotations

from handlers.i18n import LANGUAGES, t
from handlers.router import Router, Turn
from handlers.types import Button, Reply

router = Router()

LANGUAGE_NAMES = {"en": "English", "zh": "中文"}


def language_buttons() -> tuple[tuple[Button, ...], ...]:
    return (tuple(Button(LANGUAGE_NAMES[code], payload=f"lang:{code}") for code in LANGUAGES),)


@router.command("start")
async def start(turn: Turn) -> list[Reply]:
    """Greet, show the privacy notice, offer the languages and the menu."""
    menu = (Button(turn.t("btn_menu"), payload="menu:1"),)
    return [
        Reply(turn.t("greeting") + "\n\n" + turn.t("privacy_notice"), buttons=(menu,), kind="start"),
        Reply(turn.t("choose_language"), buttons=language_buttons(), kind="language"),
    ]


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
async def help_(turn: Turn) -> list[Reply]:
    """What the account can do."""
    return [Reply(help_text(turn.lang), kind="help")]


@router.command("language", "lang")
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
