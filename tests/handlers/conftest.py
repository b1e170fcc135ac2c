"""A dialogue on a real database with a small bilingual knowledge base."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from handlers.types import Incoming, Reply
from knowledge.entry import Category, DepartmentRef, Entry, KnowledgeBase, Link
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def small_kb() -> KnowledgeBase:
    """Two topics, confusable neighbours, and one entry that has expired."""
    registry = Entry(id="", category="civil-registry", department="REGISTRY")
    tax = Entry(id="", category="tax", department="TAX")
    return KnowledgeBase(
        categories=[
            Category("civil-registry", {"en": "Civil registry", "zh": "户籍证件"}),
            Category("tax", {"en": "Tax", "zh": "税务"}),
        ],
        departments=[
            DepartmentRef("REGISTRY", {"en": "Registry", "zh": "户籍处"}),
            DepartmentRef("TAX", {"en": "Tax Bureau", "zh": "税务局"}),
        ],
        entries=[
            registry.replace(
                id="id-card-renew",
                question={"en": "How do I renew my identity card?", "zh": "身份证到期了怎么换领？"},
                alternatives={
                    "en": ["My ID card is expiring", "renew ID card", "identity card renewal"],
                    "zh": ["身份证快过期了怎么办", "换身份证", "身份证换领"],
                },
                answer={
                    "en": "Bring your old card and a photo to any registry office. Fee: 20 yuan.",
                    "zh": "携带旧身份证和照片到任一户籍窗口办理，工本费20元。",
                },
                links=[Link("https://registry.example.gov/id", {"en": "Book online", "zh": "网上预约"})],
            ),
            registry.replace(
                id="id-card-lost",
                question={
                    "en": "I lost my identity card, how do I replace it?",
                    "zh": "身份证丢了怎么补办？",
                },
                alternatives={
                    "en": ["lost ID card", "ID card stolen", "replace a lost identity card"],
                    "zh": ["身份证丢失补办", "身份证被偷了", "补办身份证"],
                },
                answer={
                    "en": "Report the loss, then apply for a replacement at a registry office.",
                    "zh": "先挂失，再到户籍窗口申请补领。",
                },
            ),
            tax.replace(
                id="tax-property-pay",
                question={"en": "How do I pay my property tax?", "zh": "房产税怎么缴纳？"},
                alternatives={
                    "en": ["pay property tax", "property tax payment", "where to pay house tax"],
                    "zh": ["交房产税", "房产税在哪交", "缴房产税"],
                },
                answer={
                    "en": "Pay property tax online at tax.example.gov or at any bank counter.",
                    "zh": "可在税务网站或任一银行柜台缴纳房产税。",
                },
            ),
            tax.replace(
                id="tax-old-rebate",
                valid_until=date(2025, 12, 31),
                question={"en": "How do I claim the 2025 energy rebate?", "zh": "如何申请2025年能源补贴？"},
                alternatives={
                    "en": ["energy rebate", "claim rebate", "2025 rebate"],
                    "zh": ["能源补贴", "申请补贴", "2025补贴"],
                },
                answer={"en": "The 2025 energy rebate has closed.", "zh": "2025年能源补贴已截止。"},
            ),
        ],
        synonyms=[["identity card", "ID card"]],
    )


@pytest.fixture
async def knowledge(sessions: async_sessionmaker[AsyncSession]) -> LiveKnowledge:
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(small_kb(), "test")
    live = LiveKnowledge(sessions)
    await live.load()
    return live


@pytest.fixture
def dialogue(sessions: async_sessionmaker[AsyncSession], knowledge: LiveKnowledge) -> Dialogue:
    return Dialogue(sessions, knowledge, clock=lambda: NOW)


def said(
    text: str | None = None,
    *,
    user: str = "42",
    payload: str | None = None,
    language: str | None = "en",
    unsupported: str | None = None,
    is_group: bool = False,
) -> Incoming:
    """What a citizen on the test channel does."""
    return Incoming(
        channel="test",
        chat_id=user,
        user_id=user,
        text=text,
        payload=payload,
        language=language,
        unsupported=unsupported,
        is_group=is_group,
    )


def payloads(replies: list[Reply]) -> list[str]:
    return [b.payload for r in replies for b in r.buttons_flat if b.payload]


def shown(payloads: Iterable[str], wanted: str) -> str:
    """The one payload among ``payloads`` that ``wanted`` names: ``esc:consent:0`` names the consent
    button ``esc:consent:<code>:0``, as an escalation button carries its request's code after the action."""
    action, _, value = wanted.removeprefix("esc:").partition(":")
    [found] = [
        payload for payload in payloads
        if payload == wanted or (wanted.startswith("esc:") and payload.startswith(f"esc:{action}:")
                                 and (not value or payload.endswith(f":{value}")))
    ]
    return found
