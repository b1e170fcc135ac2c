"""Whole numbers that arrive as text: button payloads, query parameters, typed choices, settings.

``str.isdigit`` is true for "²" and "١", which ``int`` refuses or reads as another digit; such text comes
from forged buttons and from anyone typing, so only the ASCII digits 0-9 make a number here.
"""

from __future__ import annotations

MAX_DIGITS = 18
"""More digits than any id, page or count govbot takes; longer text is not a number it wants."""


def whole_number(text: str, low: int = 0, high: int = 10**MAX_DIGITS - 1) -> int | None:
    """The number ``text`` spells in ASCII digits if it lies in ``low..high``, else None."""
    if not text or len(text) > MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None
