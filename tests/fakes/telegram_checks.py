"""What Telegram accepts in text and keyboards: its HTML subset and inline buttons, in its own error words."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from tests.fakes.telegram_state import JSON, ApiError

CALLBACK_DATA_LIMIT = 64
_HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                        "blockquote", "tg-spoiler", "span"})
_HTML_ENTITY = re.compile(r"&(?:#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_BUTTON_ACTIONS = ("url", "callback_data", "web_app", "login_url", "switch_inline_query", "pay",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                   "copy_text", "callback_game")


class _TelegramHTML(HTMLParser):
    """Checks text the way Telegram parses parse_mode=HTML and collects the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.plain: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        if tag == "span" and ("class", "tg-spoiler") not in attrs:
            raise ApiError(400, 'Bad Request: can\'t parse entities: Tag "span" must have class "tg-spoiler"')
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f'"</{self.open[-1]}>"' if self.open else "nothing"
            raise ApiError(400, f"Bad Request: can't parse entities: Unmatched end tag, "
                                f'expected {expected}, found "</{tag}>"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            raise ApiError(400, "Bad Request: can't parse entities: Unexpected '<': escape it as &lt;")
        self.plain.append(data)

    def handle_entityref(self, name: str) -> None:
        self.plain.append(_NAMED.get(name, ""))

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.plain.append(chr(code) if 0 < code <= 0x10FFFF else "")

    def handle_comment(self, data: str) -> None:
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag \"!--\"")

    def handle_decl(self, decl: str) -> None:
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag \"!\"")

    def handle_pi(self, data: str) -> None:
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported start tag \"?\"")

    def unknown_decl(self, data: str) -> None:
        self.handle_decl(data)


def plain_text(text: str, parse_mode: str | None) -> str:
    """The text Telegram shows after parsing entities; raises ApiError for malformed HTML."""
    if (parse_mode or "").lower() != "html":
        return text
    if "&" in _HTML_ENTITY.sub("", text):
        raise ApiError(400, "Bad Request: can't parse entities: Unsupported HTML entity: '&' must be "
                            "written as &amp;")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise ApiError(400, "Bad Request: can't parse entities: Can't find end tag corresponding to "
                            f'start tag "{parser.open[-1]}"')
    return "".join(parser.plain)


def check_reply_markup(markup: Any) -> JSON | None:
    """The reply_markup if Telegram would accept it; raises ApiError otherwise."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an "
                            "Array of Arrays")
    for button in (button for row in rows for button in row):
        _check_button(button)
    return markup


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text expected")
    if not any(action in button for action in _BUTTON_ACTIONS):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text buttons are "
                            "unallowed in the inline keyboard")
    data = button.get("callback_data")
    if "callback_data" in button and (
        not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT
    ):
        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    url = button.get("url")
    if "url" in button and not (isinstance(url, str) and re.match(r"(https?|tg)://\S", url)):
        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
