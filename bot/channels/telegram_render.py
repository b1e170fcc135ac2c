"""Replies in Telegram's terms: HTML split to fit a message, and inline keyboards. Pure functions, no I/O."""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from typing import Literal, NamedTuple

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.types import Button

MESSAGE_LIMIT = 4096
"""Telegram's limit on a message's text after entity parsing."""
CAPTION_LIMIT = 1024
KEYBOARD_CACHE = 512
"""Keyboards kept built (menus, topic pages; an answer's rating buttons differ for every answer)."""

_TOKEN = re.compile(
    r"<(?P<close>/?)(?P<name>[a-zA-Z][a-zA-Z0-9-]*)[^<>]*>"
    r"|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);"
)
_WORD_BREAK_AFTER = frozenset("。！？；，、：")
"""Chinese punctuation after which a line can break, as after a space (Chinese has no spaces)."""

Kind = Literal["text", "open", "close"]
Break = Literal["paragraph", "line", "word"]
_PREFERENCE: tuple[Break, ...] = ("paragraph", "line", "word")
OpenTags = tuple[tuple[str, str], ...]
"""Tags open at a point of the text, outermost first: (name, the opening tag as written)."""
_NOTHING_OPEN: OpenTags = ()


class _Unit(NamedTuple):
    """One indivisible piece of the HTML: a tag, an entity, or a character."""

    raw: str
    kind: Kind
    width: int = 0
    """Length as Telegram counts it (UTF-16 code units of the shown text); tags count nothing."""
    name: str = ""
    shown: str = ""


def shown_length(text: str) -> int:
    """How long Telegram considers the HTML text: UTF-16 code units of what is shown."""
    return sum(unit.width for unit in _units(text))


def plain(text: str) -> str:
    """The text Telegram shows for the HTML, for places that take no markup (a button press's notice)."""
    return "".join(unit.shown for unit in _units(text))


def fits_caption(text: str) -> bool:
    """Whether the HTML text can go in a document's caption."""
    return shown_length(text) <= CAPTION_LIMIT


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Parts of at most ``limit`` shown characters, cut at paragraphs, else lines, else words, else anywhere.

    Tags open at a cut are closed at the end of the part and opened again (with their attributes) at the
    start of the next; tags and entities are never cut. Text that fits comes back unchanged; parts that
    would show nothing are left out.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 (one character may take two UTF-16 code units)")
    if 2 * len(text) <= limit:  # fits whatever it holds: no character takes more than two code units
        return [text] if _shown(text).strip() else []
    units = _units(text)
    if sum(unit.width for unit in units) <= limit:
        return [text] if _shows_something(units) else []
    parts: list[str] = []
    start, stack = 0, _NOTHING_OPEN
    while start < len(units):
        start = _skip_space(units, start)
        end = _overflow(units, start, limit)
        cut = len(units) if end is None else _cut(units, start, end)
        piece, after = _trim(units[start:cut]), _replay(stack, units[start:cut])
        if _shows_something(piece):
            # Closing what is open at the end also closes what a malformed text left open in its last part.
            parts.append("".join(raw for _, raw in stack) + "".join(unit.raw for unit in piece)
                         + "".join(f"</{name}>" for name, _ in reversed(after)))
        stack, start = after, cut
    return parts


@lru_cache(maxsize=KEYBOARD_CACHE)
def keyboard(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """The inline keyboard for a reply's buttons: payloads become callback data, urls url buttons.

    Cached: menus and topic pages come back with the same buttons all the time, and PTB's objects are
    immutable, so one built keyboard serves every reply that has it.
    """
    built = [[_button(button) for button in row] for row in rows if row]
    return InlineKeyboardMarkup(built) if built else None


@lru_cache(maxsize=KEYBOARD_CACHE)
def keyboard_json(rows: tuple[tuple[Button, ...], ...]) -> str | None:
    """:func:`keyboard` as the JSON the Bot API takes for ``reply_markup``, for requests made of plain values:
    python-telegram-bot would otherwise turn the same keyboard into a dict and JSON on every reply. In a
    JSON body the Bot API reads a string holding JSON as it reads the object (telegram-bot-api's HttpReader
    keeps a string's content and an object's text alike), as PTB's own form-encoded requests rely on."""
    markup = keyboard(rows)
    return None if markup is None else json.dumps(markup.to_dict())


def _button(button: Button) -> InlineKeyboardButton:
    if button.url is not None:
        return InlineKeyboardButton(button.label, url=button.url)
    return InlineKeyboardButton(button.label, callback_data=button.payload)


def _units(text: str) -> list[_Unit]:
    units: list[_Unit] = []
    position = 0
    for match in _TOKEN.finditer(text):
        units.extend(_characters(text[position:match.start()]))
        if match["name"]:
            kind: Kind = "close" if match["close"] else "open"
            units.append(_Unit(match.group(), kind, name=match["name"].lower()))
        else:
            shown = html.unescape(match.group())
            units.append(_Unit(match.group(), "text", _utf16(shown), shown=shown))
        position = match.end()
    units.extend(_characters(text[position:]))
    return units


def _shown(text: str) -> str:
    """The text as shown: without tags, entities replaced (cheaper than its units, for short replies)."""
    return _TOKEN.sub(lambda match: "" if match["name"] else html.unescape(match.group()), text)


def _characters(text: str) -> list[_Unit]:
    return [_character(char) for char in text]


@lru_cache(maxsize=4096)
def _character(char: str) -> _Unit:
    return _Unit(char, "text", _utf16(char), shown=char)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _overflow(units: list[_Unit], start: int, limit: int) -> int | None:
    """The index of the first unit that no longer fits in a part beginning at ``start``."""
    used = 0
    for index in range(start, len(units)):
        used += units[index].width
        if used > limit:
            return index
    return None


def _cut(units: list[_Unit], start: int, end: int) -> int:
    """Where to end a part that must stop before ``end``: the best break, clear of dangling tags."""
    found: dict[Break, int] = {}
    for index in range(end, start, -1):
        kind = _break_before(units, index)
        if kind is not None:
            found.setdefault(kind, index)
        if "paragraph" in found:
            break
    cut = next((found[kind] for kind in _PREFERENCE if kind in found), end)
    while cut < len(units) and units[cut].kind == "close":
        cut += 1  # a tag closing right after the cut belongs to this part, not to an empty next one
    while cut - 1 > start and units[cut - 1].kind == "open":
        cut -= 1  # a tag opening right before the cut belongs to the next part
    return max(cut, start + 1)


def _break_before(units: list[_Unit], index: int) -> Break | None:
    before = units[index - 1]
    if before.kind != "text":
        return None
    if before.raw == "\n":
        earlier = units[index - 2] if index >= 2 else None
        return "paragraph" if earlier is not None and earlier.raw == "\n" else "line"
    if before.raw.isspace() or before.raw in _WORD_BREAK_AFTER:
        return "word"
    return None


def _shows_something(units: list[_Unit]) -> bool:
    return any(unit.kind == "text" and not unit.shown.isspace() for unit in units)


def _skip_space(units: list[_Unit], start: int) -> int:
    while start < len(units) and units[start].kind == "text" and units[start].shown.isspace():
        start += 1
    return start


def _trim(piece: list[_Unit]) -> list[_Unit]:
    """The piece without the white space that ends it (tags after that space stay)."""
    last = max((i for i, unit in enumerate(piece) if unit.kind == "text" and not unit.shown.isspace()),
               default=-1)
    return piece[:last + 1] + [unit for unit in piece[last + 1:] if unit.kind != "text"]


def _replay(stack: OpenTags, piece: list[_Unit]) -> OpenTags:
    """The tags (name, opening tag) still open after the piece, given those open before it."""
    open_tags = list(stack)
    for unit in piece:
        if unit.kind == "open":
            open_tags.append((unit.name, unit.raw))
        elif unit.kind == "close":
            for position in range(len(open_tags) - 1, -1, -1):
                if open_tags[position][0] == unit.name:
                    del open_tags[position]
                    break
    return tuple(open_tags)
