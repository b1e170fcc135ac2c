"""`govbot chat`: the dialogue in a terminal, buttons shown as numbered choices."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

from handlers.i18n import DEFAULT_LANGUAGE, t
from handlers.types import Button, Conversation, Incoming, Reply
from knowledge.normalise import guess_language
from storage.numbers import whole_number

CHAT_ID = "console"
_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """Reply HTML as terminal text."""
    return html.unescape(_TAG.sub("", text))


def render(replies: Sequence[Reply], out: TextIO, *, language: str) -> list[Button]:
    """Print the replies (the console's own words in ``language``); return the buttons as numbered."""
    numbered: list[Button] = []
    for reply in replies:
        if reply.text:
            out.write(plain(reply.text) + "\n")
        elif reply.notice:
            out.write(f"({plain(reply.notice)})\n")
        if reply.document is not None:
            document = t(language, "console_document", filename=reply.document.filename,
                         size=len(reply.document.content))
            out.write(f"{document}\n")
        for button in reply.buttons_flat:
            numbered.append(button)
            target = f" → {button.url}" if button.url else ""
            out.write(f"  [{len(numbered)}] {plain(button.label)}{target}\n")
    return numbered


def reply_language(replies: Sequence[Reply], fallback: str = DEFAULT_LANGUAGE) -> str:
    """The language the dialogue answered in (it knows the citizen's), read from its words."""
    words = " ".join(plain(reply.text or reply.notice or "") for reply in replies)
    return guess_language(words) if words.strip() else fallback


def pressed(line: str, buttons: Sequence[Button]) -> Button | None:
    """The button whose number ``line`` is, if it is one."""
    text = line.strip()
    number = whole_number(text, 1, len(buttons))
    return buttons[number - 1] if number is not None else None


def to_incoming(line: str, buttons: Sequence[Button], *, language: str | None) -> Incoming:
    """A typed line: a number presses that button, anything else is a message."""
    button = pressed(line, buttons)
    if button is not None and button.payload is not None:
        return Incoming(channel="console", chat_id=CHAT_ID, user_id=CHAT_ID, payload=button.payload,
                        language=language)
    return Incoming(channel="console", chat_id=CHAT_ID, user_id=CHAT_ID, text=line.strip(), language=language)


async def chat(
    conversation: Conversation, lines: AsyncIterator[str], out: TextIO, *, language: str | None = None
) -> None:
    """Talk until the input ends (Ctrl-D) or the citizen types /quit."""
    greeting = Incoming("console", CHAT_ID, CHAT_ID, text="/start", language=language)
    replies = await conversation.handle(greeting)
    lang = language or reply_language(replies)
    buttons = render(replies, out, language=lang)
    out.write("> ")
    out.flush()
    async for line in lines:
        if line.strip() in {"/quit", "/exit"}:
            break
        link = pressed(line, buttons)
        if link is not None and link.url is not None:  # a terminal cannot open it: say where it leads
            out.write(f"{t(lang, 'console_open_link', url=link.url)}\n")
        elif line.strip():
            replies = await conversation.handle(to_incoming(line, buttons, language=language))
            lang = language or reply_language(replies, lang)
            buttons = render(replies, out, language=lang) or buttons
        out.write("> ")
        out.flush()
    out.write("\n")
