"""A seeded random walk through every flow of the real dialogue, on the bundled sample knowledge base.

Three citizens type questions, commands, contact details and junk, and mostly press the buttons they were
just shown (sometimes stale, someone else's or mangled ones). Whatever the order, every event gets a reply
and none is the apology that stands for an unexpected error.
"""

from __future__ import annotations

import logging
import random
from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import seed_knowledge
from bot.config import SAMPLE_KB
from handlers.dialogue import Dialogue
from handlers.escalation import DEFAULT_DEPARTMENT
from handlers.types import Incoming
from storage.knowledge_sync import LiveKnowledge
from tests.handlers.conftest import NOW

TEXTS = [
    "how do I renew my ID card", "身份证丢了怎么办", "bus pass for students", "property tax",
    "parking permit", "社保怎么交", "The streetlight outside number 12 has been broken for a week",
    "hello", "", "   ", "x" * 5000, "😀😀", "\x00\x07 control", "13812345678", "me@example.com", "1", "yes",
    "/start", "/help", "/menu", "/menu extra", "/language", "/human", "/status", "/status TR-2026-000001",
    "/status XX", "/forget", "/cancel", "/privacy", "/mydata", "/feedback",
    "/feedback the forms are too long", "/unknown", "/start@otherbot",
]
ASKED = {  # what a citizen mostly types when the bot has just asked for it
    "escalation_describe": "The streetlight outside number 12 has been broken for a week",
    "escalation_contact": "13812345678",
}
STEPS = 600


def mangled(payload: str, rnd: random.Random) -> str:
    return payload[: rnd.randint(0, len(payload))] + rnd.choice(["", "x", ":", "9999", "-1"])


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_random_walk_through_every_flow_is_always_answered_and_never_with_an_apology(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    await seed_knowledge(sessions, [SAMPLE_KB])
    knowledge = LiveKnowledge(sessions)
    await knowledge.load()
    dialogue = Dialogue(sessions, knowledge, extras={DEFAULT_DEPARTMENT: "CITY"}, clock=lambda: NOW)
    rnd = random.Random(seed)
    shown: dict[str, list[str]] = {}  # the buttons of each citizen's last reply that had any
    asked: dict[str, str] = {}  # the kind of each citizen's last reply
    pressed_ever: list[str] = []
    kinds: Counter[str] = Counter()
    caplog.set_level(logging.ERROR)
    for step in range(STEPS):
        user, roll = rnd.choice("123"), rnd.random()
        text = payload = None
        if asked.get(user) in ASKED and roll < 0.8:
            text = ASKED[asked[user]]
        elif roll < 0.55 and shown.get(user):
            payload = rnd.choice(shown[user])
        elif roll < 0.65 and pressed_ever:
            payload = rnd.choice(pressed_ever)
            payload = mangled(payload, rnd) if rnd.random() < 0.3 else payload
        else:
            text = rnd.choice(TEXTS)
        incoming = Incoming("test", user, user, text=text, payload=payload,
                            language=rnd.choice(["en", "zh", None]), message_id=str(step))
        replies = await dialogue.handle(incoming)
        assert replies, f"step {step}: {incoming} got no reply"
        assert all(reply.kind != "error" for reply in replies), f"step {step}: {incoming} got an apology"
        kinds.update(reply.kind for reply in replies)
        asked[user] = replies[-1].kind
        buttons = [b.payload for reply in replies for b in reply.buttons_flat if b.payload]
        if buttons:
            shown[user] = buttons
            pressed_ever.extend(buttons)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    # The walk reached the deep ends of the flows, or it would prove little.
    deep_ends = {"answer", "clarify", "fallback", "menu", "rating", "case_created", "forgotten"}
    assert deep_ends | {"feedback_saved"} <= set(kinds)
