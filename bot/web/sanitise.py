"""Reply HTML for a browser: a strict allow-list of formatting and http(s) links; everything else is text."""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

ALLOWED = frozenset({"b", "i", "u", "s", "code", "pre", "blockquote", "a"})
ALIASES = {"strong": "b", "em": "i", "ins": "u", "strike": "s", "del": "s"}
"""Telegram accepts these as the same formatting."""
UNWRAPPED = frozenset({"span", "tg-spoiler", "tg-emoji"})
"""Telegram-only markup: the tag goes, its content stays."""
MAX_DEPTH = 16


@dataclass(frozen=True)
class Element:
    """An allowed tag; ``href`` only on links, and only http(s)."""

    tag: str
    children: tuple[Node, ...]
    href: str | None = None


Node = str | Element


def safe_href(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) address with a host and nothing odd in it; else None."""
    if not url:
        return None
    url = url.strip()
    if any(ord(char) < 33 or char in "\"'<>\\`" for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def parse(text: str) -> tuple[Node, ...]:
    """The reply HTML as a tree of allowed elements and text; never raises."""
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.result()


def to_html(nodes: tuple[Node, ...]) -> str:
    """The tree as HTML in which every text is escaped."""
    return "".join(_html(node) for node in nodes)


def to_json(nodes: tuple[Node, ...]) -> list[Any]:
    """The tree for the page's script: strings are text, objects are ``{tag, children[, href]}``."""
    return [_json(node) for node in nodes]


def sanitise(text: str) -> str:
    """Reply HTML reduced to the allow-list."""
    return to_html(parse(text))


def _html(node: Node) -> str:
    if isinstance(node, str):
        return html.escape(node, quote=True)
    inner = to_html(node.children)
    if node.tag == "a":
        return f'<a href="{html.escape(node.href or "", quote=True)}" rel="noopener noreferrer">{inner}</a>'
    return f"<{node.tag}>{inner}</{node.tag}>"


def _json(node: Node) -> Any:
    if isinstance(node, str):
        return node
    data: dict[str, Any] = {"tag": node.tag, "children": to_json(node.children)}
    if node.href is not None:
        data["href"] = node.href
    return data


@dataclass
class _Open:
    tag: str
    children: list[Node]
    href: str | None = None
    keep: bool = True
    """False for a tag whose markup is dropped (an unsafe link, Telegram-only tags): its content stays."""


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._root: list[Node] = []
        self._stack: list[_Open] = []

    def result(self) -> tuple[Node, ...]:
        while self._stack:
            self._close_top()
        return tuple(self._merged(self._root))

    def _children(self) -> list[Node]:
        return self._stack[-1].children if self._stack else self._root

    def _text(self, text: str) -> None:
        if text:
            self._children().append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name = ALIASES.get(tag, tag)
        if len(self._stack) >= MAX_DEPTH or (name not in ALLOWED and name not in UNWRAPPED):
            self._text(self.get_starttag_text() or f"<{tag}>")
            return
        href = safe_href(dict(attrs).get("href")) if name == "a" else None
        keep = name in ALLOWED and (name != "a" or href is not None)
        self._stack.append(_Open(name, [], href, keep))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._text(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        name = ALIASES.get(tag, tag)
        if not any(open_.tag == name for open_ in self._stack):
            self._text(f"</{tag}>")
            return
        while self._stack:
            closed = self._stack[-1].tag
            self._close_top()
            if closed == name:
                return

    def handle_data(self, data: str) -> None:
        self._text(data)

    def handle_comment(self, data: str) -> None:
        self._text(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._text(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._text(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self._text(f"<![{data}]>")

    def _close_top(self) -> None:
        open_ = self._stack.pop()
        children = self._merged(open_.children)
        if open_.keep:
            self._children().append(Element(open_.tag, tuple(children), open_.href))
        else:
            self._children().extend(children)

    @staticmethod
    def _merged(nodes: list[Node]) -> list[Node]:
        """Adjacent texts as one (the parser hands text over in pieces)."""
        merged: list[Node] = []
        for node in nodes:
            if isinstance(node, str) and merged and isinstance(merged[-1], str):
                merged[-1] += node
            else:
                merged.append(node)
        return merged
