"""The web chat tests' knowledge base: the handlers' small one and an answer that tries to inject a script."""

from __future__ import annotations

import dataclasses

from knowledge.entry import Entry, KnowledgeBase, Link
from tests.handlers.conftest import small_kb

HOSTILE_QUESTION = "Where is the parking office of the harbour?"
HOSTILE_ANSWER = (
    "<b>Parking office</b>: Pier 3. <script>alert('kb')</script>"
    '<img src=x onerror="alert(1)"> <a href="javascript:alert(2)">click</a> '
    '<a href="https://parking.example.gov/">Parking site</a>'
)


def web_kb() -> KnowledgeBase:
    """small_kb, and an entry whose answer carries a script, an image with a handler, a javascript: link."""
    kb = small_kb()
    hostile = Entry(
        id="harbour-parking",
        category="tax",
        department="TAX",
        question={"en": HOSTILE_QUESTION, "zh": "港口停车办公室在哪里？"},
        alternatives={"en": ["harbour parking office", "parking office harbour"], "zh": ["港口停车办公室"]},
        answer={"en": HOSTILE_ANSWER, "zh": HOSTILE_ANSWER},
        links=[Link("javascript:alert(3)", {"en": "Bad link", "zh": "坏链接"})],
    )
    return dataclasses.replace(kb, entries=[*kb.entries, hostile])
