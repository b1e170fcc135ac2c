"""The citizen's side of escalation at its edges: group chats, typed words at a button step, old buttons,
tickets as they are copied, and notices in the language the citizen chose."""

from __future__ import annotations

import pytest

from handlers.dialogue import Dialogue
from tests.handlers.conftest import said
from tests.handlers.test_escalation import open_case_by_dialogue


@pytest.mark.parametrize(
    "typed",
    ["/status TA－2026－000001", "/status ＴＡ-２０２６-０００００１", "/status TA-2026-000001.",
     "/status 「ta-2026-000001」。"],
)
async def test_status_finds_a_ticket_typed_full_width_or_copied_with_its_punctuation(
    dialogue: Dialogue, typed: str
) -> None:
    await open_case_by_dialogue(dialogue)
    shown = await dialogue.handle(said(typed))
    assert shown[0].kind == "case"
    assert "TA-2026-000001" in shown[0].text
