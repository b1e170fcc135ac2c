"""Feedback end to end: ratings, "what was missing?", /feedback and suggested phrasings over fake Telegram."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.keys import KNOWLEDGE
from handlers.i18n import t
from storage.feedback import MAX_FEEDBACK_CHARS, Feedback
from storage.models import Answer
from storage.suggestions import SuggestionRepository
from tests.e2e.conftest import StartBot
from tests.fakes.telegram_server import FakeTelegramServer

Sessions = async_sessionmaker[AsyncSession]
CITIZEN = 42
GROUP = -1001
BOT = "govbot_test_bot"


async def stored(sessions: Sessions) -> list[tuple[str, str, str | None]]:
    async with sessions() as session:
        rows = await session.scalars(select(Feedback).order_by(Feedback.id))
        return [(row.kind, row.text, row.entry_id) for row in rows]


async def test_not_helpful_then_what_was_missing_is_stored_with_the_entry(
    start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions
) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "How do I renew my identity card?")
    [answer] = await telegram.wait_for_sent(chat_id=CITIZEN)
    unhelpful = answer.payloads[-1]
    answer_id = unhelpful.split(":")[1]
    telegram.mark()
    telegram.send_callback(CITIZEN, unhelpful, message_id=answer.message_id)
    [toast] = await telegram.wait_for_call("answerCallbackQuery")
    assert toast.params["text"] == t("en", "rating_thanks")
    [question] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert question.text == t("en", "feedback_what_missing")
    assert question.payloads == [f"fb:skip:{answer_id}", f"human:a{answer_id}"]
    telegram.mark()
    telegram.send_message(CITIZEN, "Whether I can renew it abroad")
    [thanks] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert thanks.text == t("en", "feedback_missing_thanks")
    async with sessions() as session:
        rated = await session.get(Answer, int(answer_id))
    assert rated is not None
    assert rated.rating == "not_helpful"
    assert await stored(sessions) == [("missing", "Whether I can renew it abroad", rated.entry_id)]


async def test_feedback_command_records_a_complaint(
    start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions
) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/feedback", language_code="zh-hans")
    [prompt] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert prompt.text == t("zh", "feedback_prompt")
    telegram.mark()
    telegram.send_callback(CITIZEN, "fb:complaint", message_id=prompt.message_id, language_code="zh-hans")
    [complaint_prompt] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert complaint_prompt.text == t("zh", "feedback_complaint_prompt")
    telegram.mark()
    telegram.send_message(CITIZEN, "窗口排队两个小时", language_code="zh-hans")
    [thanks] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert thanks.text == t("zh", "feedback_complaint_thanks")
    assert await stored(sessions) == [("complaint", "窗口排队两个小时", None)]


async def test_a_very_long_comment_is_kept_cut_with_a_note(
    start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions
) -> None:
    await start_bot()
    telegram.send_message(CITIZEN, "/feedback")
    await telegram.wait_for_sent(chat_id=CITIZEN)
    telegram.mark()
    telegram.send_message(CITIZEN, "long " * 1000)
    notes = await telegram.wait_for_sent(2, chat_id=CITIZEN)
    assert t("en", "feedback_cut", limit=MAX_FEEDBACK_CHARS) in (notes[-1].text or "")
    [(kind, text, _)] = await stored(sessions)
    assert (kind, len(text)) == ("comment", MAX_FEEDBACK_CHARS)


async def test_in_a_group_only_the_asker_can_rate(
    start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions
) -> None:
    await start_bot()
    telegram.send_message(
        GROUP, f"@{BOT} How do I renew my identity card?", chat_type="supergroup", user_id=7
    )
    [answer] = await telegram.wait_for_sent(chat_id=GROUP)
    helpful, unhelpful = answer.payloads
    telegram.mark()
    telegram.send_callback(GROUP, unhelpful, message_id=answer.message_id, user_id=8)
    [refused] = await telegram.wait_for_call("answerCallbackQuery")
    assert refused.params["text"] == t("en", "rating_not_yours")
    telegram.send_callback(GROUP, helpful, message_id=answer.message_id, user_id=7)
    [thanks] = await telegram.wait_for_sent(chat_id=GROUP)
    # Nothing was said in the group for the refused press; the asker's rating is the only one.
    assert [m.text for m in telegram.sent_since_mark()] == [thanks.text] == [t("en", "rating_thanks")]
    async with sessions() as session:
        assert list(await session.scalars(select(Answer.rating))) == ["helpful"]


async def test_a_phrasing_chosen_from_did_you_mean_and_accepted_is_answered_without_a_restart(
    start_bot: StartBot, telegram: FakeTelegramServer, sessions: Sessions
) -> None:
    bot = await start_bot()
    telegram.send_message(CITIZEN, "ID card renewal or replacement?")
    [clarify] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert clarify.text == t("en", "clarify")
    telegram.mark()
    telegram.send_callback(CITIZEN, clarify.payloads[0], message_id=clarify.message_id)
    [answer] = await telegram.wait_for_sent(chat_id=CITIZEN)
    async with sessions.begin() as session:
        repo = SuggestionRepository(session)
        [suggestion] = await repo.listing()
        assert suggestion.text == "ID card renewal or replacement"
        await repo.accept(suggestion.id)
    await bot.app[KNOWLEDGE].refresh()
    telegram.mark()
    telegram.send_message(CITIZEN, "ID card renewal or replacement?")
    [again] = await telegram.wait_for_sent(chat_id=CITIZEN)
    assert again.text == answer.text
    assert again.payloads[-1].startswith("rate:")
