"""`govbot chat`: the dialogue in a terminal, buttons shown as numbered choices.

A case opened here gets the department's replies and status changes like any chat: they are printed
before each prompt (and at the start), sent by the notifier through :class:`ConsoleNotices`.
"""

from __future__ import annotations

import errno
import html
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.notify import Notifier
from handlers.dialogue import sanitise
from handlers.i18n import DEFAULT_LANGUAGE, t
from handlers.types import Button, Conversation, Document, Incoming, Reply
from knowledge.normalise import guess_language
from storage.models import utcnow
from storage.numbers import whole_number

CHANNEL = "console"
CHAT_ID = "console"
_TAG = re.compile(r"<[^>]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CURRENT_DIRECTORY = Path()
"""Where `govbot chat` writes a document it is sent (/mydata's export): the directory it runs in."""
MAX_COPIES = 999
"""Files of the same name tried before giving up (``mydata-….json``, ``mydata-…-2.json`` …)."""


def plain(text: str) -> str:
    """Reply HTML as terminal text.

    Control characters go: a department's reply with escape sequences must not clear, retitle or
    rewrite the staff member's terminal.
    """
    return _CONTROL.sub("", html.unescape(_TAG.sub("", text)))


def render(
    replies: Sequence[Reply], out: TextIO, *, language: str, numbered: list[Button] | None = None,
    folder: Path = CURRENT_DIRECTORY,
) -> list[Button]:
    """Print the replies (the console's own words in ``language``); return the buttons as numbered.

    ``numbered``: buttons already shown, which the replies' buttons are numbered after (and added to).
    A document (the /mydata export) is written to a file in ``folder``, whose path is printed.
    """
    numbered = [] if numbered is None else numbered
    for reply in replies:
        if reply.text:
            out.write(plain(reply.text) + "\n")
        elif reply.notice:
            out.write(f"({plain(reply.notice)})\n")
        if reply.document is not None:
            out.write(f"{plain(_saved(reply.document, folder, language))}\n")
        for button in reply.buttons_flat:
            numbered.append(button)
            target = f" → {button.url}" if button.url else ""
            out.write(f"  [{len(numbered)}] {plain(button.label)}{target}\n")
    return numbered


def _saved(document: Document, folder: Path, language: str) -> str:
    """Write the document to a new file in ``folder``; the line that says where, or why it could not."""
    name = Path(document.filename).name or "document"
    try:
        path = save(document.content, folder, name)
    except OSError as exc:
        return t(language, "console_document_unsaved", filename=name, folder=str(folder.resolve()),
                 reason=exc.strerror or type(exc).__name__)
    return t(language, "console_document", path=str(path), size=len(document.content))


def save(content: bytes, folder: Path, name: str) -> Path:
    """A new file ``name`` in ``folder`` (``name-2`` … when taken), readable by its owner only."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for number in range(1, MAX_COPIES + 1):
        path = (folder / (name if number == 1 else f"{stem}-{number}{suffix}")).resolve()
        try:
            # Exclusive: an earlier export (or anyone's file) is never overwritten. 0600: it is personal data.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        return path
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(folder / name))


class ConsoleNotices:
    """The notifier's sender for the console's chat: due notices printed, their buttons numbered on."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], out: TextIO, *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.out = out
        self.language = DEFAULT_LANGUAGE
        self.numbered: list[Button] = []
        self.notifier = Notifier(sessions, {CHANNEL: self}, clock=clock, name=f"{CHANNEL}-chat")

    async def send(self, chat_id: str, replies: list[Reply], *, thread: str | None = None) -> None:
        render(replies, self.out, language=self.language, numbered=self.numbered)

    async def show(self, buttons: list[Button], *, language: str) -> list[Button]:
        """Print the notices due now after what is on screen; the buttons shown, theirs numbered last."""
        self.numbered, self.language = list(buttons), language
        while await self.notifier.run_once():  # one notice of a chat a round, so they stay in order
            pass
        return self.numbered


def reply_language(replies: Sequence[Reply], fallback: str = DEFAULT_LANGUAGE) -> str:
    """The language the dialogue answered in (it knows the citizen's), read from its words."""
    words = " ".join(plain(reply.text or reply.notice or "") for reply in replies)
    return guess_language(words) if words.strip() else fallback


def pressed(line: str, buttons: Sequence[Button]) -> Button | None:
    """The button whose number ``line`` is, if it is one."""
    text = line.strip()
    number = whole_number(text, 1, len(buttons))
    return buttons[number - 1] if number is not None else None


def quits(line: str) -> bool:
    """Whether ``line`` is /quit or /exit, read as the dialogue reads commands (／quit, /QUIT, /quit@bot)."""
    command = sanitise(Incoming(CHANNEL, CHAT_ID, CHAT_ID, text=line))[0].command
    return command is not None and command[0] in {"quit", "exit"}


def to_incoming(line: str, buttons: Sequence[Button], *, language: str | None) -> Incoming:
    """A typed line: a number presses that button, anything else is a message."""
    button = pressed(line, buttons)
    if button is not None and button.payload is not None:
        return Incoming(channel=CHANNEL, chat_id=CHAT_ID, user_id=CHAT_ID, payload=button.payload,
                        language=language)
    return Incoming(channel=CHANNEL, chat_id=CHAT_ID, user_id=CHAT_ID, text=line.strip(), language=language)


async def chat(
    conversation: Conversation,
    lines: AsyncIterator[str],
    out: TextIO,
    *,
    language: str | None = None,
    notices: ConsoleNotices | None = None,
) -> None:
    """Talk until the input ends (Ctrl-D) or the citizen types /quit; ``notices`` shown before each prompt."""
    greeting = Incoming(CHANNEL, CHAT_ID, CHAT_ID, text="/start", language=language)
    replies = await conversation.handle(greeting)
    # The greeting and a language's confirmation are the catalogue's words, so they tell the dialogue's
    # language for sure, which a choice of the citizen's (/language) makes another than ``language``.
    lang = reply_language(replies, language or DEFAULT_LANGUAGE)
    buttons = render(replies, out, language=lang)
    if notices is not None:
        buttons = await notices.show(buttons, language=lang)
    out.write("> ")
    out.flush()
    async for line in lines:
        if quits(line):
            break
        link = pressed(line, buttons)
        if link is not None and link.url is not None:  # a terminal cannot open it: say where it leads
            out.write(f"{plain(t(lang, 'console_open_link', url=link.url))}\n")
        elif line.strip():
            replies = await conversation.handle(to_incoming(line, buttons, language=language))
            if language is None or any(reply.kind == "language_set" for reply in replies):
                lang = reply_language(replies, lang)
            shown = render(replies, out, language=lang)
            # A reply edited into the pressed message takes that message's buttons away, as on Telegram;
            # otherwise the earlier buttons stay pressable (a menu under an answer without buttons).
            buttons = shown or ([] if any(reply.replace for reply in replies) else buttons)
        if notices is not None:
            buttons = await notices.show(buttons, language=lang)
        out.write("> ")
        out.flush()
    out.write("\n")
