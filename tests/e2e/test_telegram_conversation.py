"""Whole conversations on Telegram, in English and in Chinese: one citizen through the whole dialogue."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from handlers.i18n import t
from handlers.start import help_text
from knowledge.entry import Entry
from knowledge.formats.files import load_paths
from tests.e2e.conftest import StartBot
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fakes.telegram_state import SentMessage

CITIZEN = 77
SAMPLE = load_paths([Path(__file__).parents[2] / "knowledge" / "sample"])
ENTRIES = {entry.id: entry for entry in SAMPLE.entries}

# What the citizen types, per language: a question the sample answers outright, one too short to be sure
# of, and one it has nothing on.
SCRIPTS = {
    "en": ("How do I renew my identity card?", "identity card", "xyzzy plugh frobnicate"),
    "zh": ("身份证到期了怎么换", "身份证", "量子力学的火星殖民"),
}


def answer_of(entry_id: str, lang: str) -> str:
    return ENTRIES[entry_id].answer[lang].strip()


def shows_answer(message: SentMessage, entry: Entry, lang: str) -> bool:
    return answer_of(entry.id, lang)[:40] in (message.text or "")


def rated(message: SentMessage) -> bool:
    return [p.split(":")[0] for p in message.payloads[-2:]] == ["rate", "rate"]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_a_citizen_goes_through_the_whole_dialogue_in_their_language(
        lang: str, start_bot: StartBot, telegram: FakeTelegramServer) -> None:
    answered, vague, unknown = SCRIPTS[lang]
    bot = await start_bot()

    # /start: greeting with the privacy notice, then the language choice; the citizen picks theirs.
    telegram.send_message(CITIZEN, "/start")
    greeting, choice = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert t("en", "privacy_notice") in (greeting.text or "")
    telegram.mark()
    telegram.send_callback(CITIZEN, f"lang:{lang}", message_id=choice.message_id)
    await telegram.wait_for_sent(chat_id=CITIZEN, predicate=lambda m: m.text == t(lang, "language_set"))

    # A question the knowledge base answers: the answer in that language, with rating buttons.
    telegram.mark()
    telegram.send_message(CITIZEN, answered)
    [answer] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert shows_answer(answer, ENTRIES["civil-registry-id-card-renew"], lang)
    assert rated(answer)

    # Too short to be sure of: "did you mean", and the first choice is answered.
    telegram.mark()
    telegram.send_message(CITIZEN, vague)
    [clarify] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert clarify.text == t(lang, "clarify")
    first = clarify.buttons[0]
    assert first["callback_data"].startswith("pick:")
    picked = next(e for e in SAMPLE.entries if e.question[lang].startswith(first["text"].rstrip("…")))
    telegram.mark()
    telegram.send_callback(CITIZEN, first["callback_data"], message_id=clarify.message_id)
    [chosen] = await telegram.wait_for_sent(chat_id=CITIZEN, predicate=rated)
    assert shows_answer(chosen, picked, lang)

    # Nothing on it: said plainly, with a department and the menu offered.
    telegram.mark()
    telegram.send_message(CITIZEN, unknown)
    [fallback] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert fallback.text == t(lang, "fallback")
    assert [b["text"] for b in fallback.buttons] == [t(lang, "btn_talk_department"), t(lang, "btn_menu")]

    # /menu: a topic, then a question in it, then its answer.
    telegram.mark()
    telegram.send_message(CITIZEN, "/menu")
    [menu] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert (menu.text or "").startswith(t(lang, "menu_title"))
    topic = next(b for b in menu.buttons if b["callback_data"] == "cat:civil-registry:1")
    telegram.mark()
    telegram.send_callback(CITIZEN, topic["callback_data"], message_id=menu.message_id)
    [questions] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert questions.message_id == menu.message_id  # the menu message turns into the topic's page
    shown = [p.removeprefix("show:") for p in questions.payloads if p.startswith("show:")]
    assert shown
    assert all(ENTRIES[entry_id].category == "civil-registry" for entry_id in shown)
    telegram.mark()
    telegram.send_callback(CITIZEN, f"show:{shown[0]}", message_id=questions.message_id)
    [shown_answer] = await telegram.wait_for_sent(chat_id=CITIZEN, predicate=rated)
    assert shows_answer(shown_answer, ENTRIES[shown[0]], lang)

    # /language: switching over, after which the same question is answered in the other language.
    other = "zh" if lang == "en" else "en"
    telegram.mark()
    telegram.send_message(CITIZEN, "/language")
    [languages] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert languages.payloads == ["lang:en", "lang:zh"]
    telegram.send_callback(CITIZEN, f"lang:{other}", message_id=languages.message_id)
    await telegram.wait_for_sent(chat_id=CITIZEN, predicate=lambda m: m.text == t(other, "language_set"))
    telegram.mark()
    telegram.send_message(CITIZEN, "/help")
    [help_reply] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert help_reply.text == help_text(other)

    # The metrics saw every update, and the matcher's outcomes as the citizen met them.
    async with aiohttp.ClientSession() as client, client.get(bot.url + "/metrics") as response:
        metrics = await response.text()
    for line in ('govbot_match_outcomes_total{outcome="answer"} 3.0',
                 'govbot_match_outcomes_total{outcome="clarify"} 1.0',
                 'govbot_match_outcomes_total{outcome="fallback"} 1.0',
                 'govbot_updates_handled_total{channel="telegram",result="ok"} 12.0',
                 'govbot_update_latency_seconds_count{channel="telegram"} 12.0'):
        assert line in metrics.splitlines()
