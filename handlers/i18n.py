"""Message catalogues: every user-facing text, in English and Simplified Chinese."""

from __future__ import annotations

import html
import string
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOGUES = Path(__file__).resolve().parent / "messages"
LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"


class Html(str):
    """Text that is already safe HTML and must not be escaped again when put into a message."""

    __slots__ = ()


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of one language, loaded once from every ``<feature>.<lang>.yaml``."""
    messages: dict[str, str] = {}
    for path in sorted(CATALOGUES.glob(f"*.{lang}.yaml")):
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        clash = messages.keys() & data.keys()
        if clash:
            raise ValueError(f"{path.name} defines messages again: {sorted(clash)}")
        messages.update({str(key): str(value) for key, value in data.items()})
    return messages


def t(lang: str, key: str, **values: Any) -> Html:
    """The message ``key`` in ``lang`` (falling back to English), with ``values`` HTML-escaped into it."""
    text = catalogue(lang if lang in LANGUAGES else DEFAULT_LANGUAGE).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANGUAGE)[key]
    safe = {
        name: value if isinstance(value, Html) else html.escape(str(value), quote=False)
        for name, value in values.items()
    }
    return Html(text.format(**safe) if safe else text)


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a catalogue text expects."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def language_of(code: str | None) -> str | None:
    """Our language for a platform's language code (``zh-hans`` → ``zh``); None when we do not speak it."""
    if not code:
        return None
    base = code.replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None
