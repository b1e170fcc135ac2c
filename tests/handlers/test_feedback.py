"""Ratings, "what was missing?" and /feedback comments, through the dialogue on a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from handlers.feedback import WAIT
from handlers.types import Incoming, Reply
from storage.feedback import MAX_FEEDBACK_CHARS, Feedback
from storage.knowledge_sync import LiveKnowledge
from storage.models import Answer
from storage.suggestions import SuggestionRepository
from tests.handlers.conftest import NOW, payloads, said

Sessions = async_sessionmaker[AsyncSession]
QUESTION = "pay property tax"


async def answered(dialogue: Dialogue, user: str = "42") -> tuple[str, str]:
    """Ask a question that has a confident answer; its (helpful, not helpful) payloads."""
    replies = await dialogue.handle(said(QUESTION, user=user))
    assert replies[0].kind == "answer"
    helpful, unhelpful = payloads(replies)
    return helpful, unhelpful


async def stored(sessions: Sessions) -> list[Feedback]:
    async with sessions() as session:
        return list(await session.scalars(select(Feedback).order_by(Feedback.id)))


async def ratings(sessions: Sessions) -> list[str | None]:
    async with sessions() as session:
        return list(await session.scalars(select(Answer.rating).order_by(Answer.id)))


def in_group(user: str, payload: str) -> Incoming:
    return Incoming(
        channel="test", chat_id="-100", user_id=user, payload=payload, is_group=True, language="en"
    )


def texts(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies)


async def test_not_helpful_asks_what_was_missing_offers_skip_and_a_department(dialogue: Dialogue) -> None:
    _, unhelpful = await answered(dialogue)
    answer_id = unhelpful.split(":")[1]
    [reply] = await dialogue.handle(said(payload=unhelpful))
    assert reply.kind == "feedback_missing"
    assert "What was missing?" in reply.text
    assert reply.notice == "Thank you for your feedback!"
    assert payloads([reply]) == [f"fb:skip:{answer_id}", f"human:a{answer_id}"]


async def test_what_was_missing_is_stored_with_the_answer_and_its_entry(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    _, unhelpful = await answered(dialogue)
    await dialogue.handle(said(payload=unhelpful))
    [reply] = await dialogue.handle(said("The deadline for paying"))
    assert reply.kind == "feedback_saved"
    [row] = await stored(sessions)
    assert (row.kind, row.text, row.entry_id, row.answer_id) == (
        "missing",
        "The deadline for paying",
        "tax-property-pay",
        int(unhelpful.split(":")[1]),
    )
    # One reply only: the next message is a question again.
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"


async def test_skip_stores_nothing_and_the_next_message_is_a_question(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    _, unhelpful = await answered(dialogue)
    skip = payloads(await dialogue.handle(said(payload=unhelpful)))[0]
    assert (await dialogue.handle(said(payload=skip)))[
        0
    ].notice == "All right. Thank you for rating the answer."
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"
    assert await stored(sessions) == []


async def test_a_command_abandons_the_question_of_what_was_missing(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    _, unhelpful = await answered(dialogue)
    await dialogue.handle(said(payload=unhelpful))
    await dialogue.handle(said("/help"))
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"
    assert await stored(sessions) == []


async def test_changing_the_rating_to_helpful_withdraws_the_question(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    helpful, unhelpful = await answered(dialogue)
    await dialogue.handle(said(payload=unhelpful))
    assert (await dialogue.handle(said(payload=helpful)))[0].notice == "Your rating has been updated."
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"
    assert await stored(sessions) == []


async def test_an_unanswered_prompt_expires_and_later_text_is_a_question(
    sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    clock = [NOW]
    dialogue = Dialogue(sessions, knowledge, clock=lambda: clock[0])
    _, unhelpful = await answered(dialogue)
    await dialogue.handle(said(payload=unhelpful))
    clock[0] = NOW + WAIT + timedelta(seconds=1)
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"
    assert await stored(sessions) == []


async def test_rating_twice_never_double_counts(dialogue: Dialogue, sessions: Sessions) -> None:
    helpful, unhelpful = await answered(dialogue)
    assert (await dialogue.handle(said(payload=helpful)))[0].notice == "Thank you for your feedback!"
    assert (await dialogue.handle(said(payload=helpful)))[0].notice == "You have already rated this answer."
    await dialogue.handle(said(payload=unhelpful))
    again = await dialogue.handle(said(payload=unhelpful))
    assert again[0].notice == "You have already rated this answer."
    assert again[0].kind == "rating"
    assert await ratings(sessions) == ["not_helpful"]


async def test_another_member_of_a_group_cannot_rate_and_sees_only_a_notice(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    asked = await dialogue.handle(
        Incoming(channel="test", chat_id="-100", user_id="1", text=QUESTION, is_group=True)
    )
    helpful, unhelpful = payloads(asked)
    [refused] = await dialogue.handle(in_group("2", unhelpful))
    assert (refused.text, refused.notice) == ("", "Only the person who asked can rate this answer.")
    await dialogue.handle(in_group("1", helpful))
    assert await ratings(sessions) == ["helpful"]
    # The refused member's next message is not taken as "what was missing".
    assert (await dialogue.handle(said(QUESTION, user="2")))[0].kind == "answer"


async def test_rating_an_answer_that_no_longer_exists_says_so(dialogue: Dialogue, sessions: Sessions) -> None:
    helpful, _ = await answered(dialogue)
    async with sessions.begin() as session:
        await session.execute(delete(Answer))
    [reply] = await dialogue.handle(said(payload=helpful))
    assert reply.text == reply.notice
    assert "no longer in our records" in reply.text


async def test_forged_feedback_buttons_get_a_clear_reply(dialogue: Dialogue) -> None:
    for payload in ("rate:99999999999999999999:1", "rate:²:1", "rate:0:1", "rate:-1:0", "fb", "fb:zzz"):
        replies = await dialogue.handle(said(payload=payload))
        assert [r.kind for r in replies] == ["expired"], payload
    assert (await dialogue.handle(said(payload="fb:skip:abc")))[0].kind == "feedback_done"


async def test_feedback_command_takes_the_next_message_as_a_comment(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    [prompt] = await dialogue.handle(said("/feedback"))
    assert payloads([prompt]) == ["fb:complaint", "fb:cancel"]
    [thanks] = await dialogue.handle(said("The new opening hours are great"))
    assert thanks.text == "Thank you for your comment. Our staff read every one."
    [row] = await stored(sessions)
    assert (row.kind, row.text, row.answer_id, row.entry_id, row.language) == (
        "comment",
        "The new opening hours are great",
        None,
        None,
        "en",
    )


async def test_feedback_with_text_is_stored_at_once(dialogue: Dialogue, sessions: Sessions) -> None:
    await dialogue.handle(said("/feedback 服务很好", language="zh"))
    [row] = await stored(sessions)
    assert (row.kind, row.text, row.language) == ("comment", "服务很好", "zh")


async def test_complaint_button_records_a_complaint(dialogue: Dialogue, sessions: Sessions) -> None:
    await dialogue.handle(said("/feedback"))
    [prompt] = await dialogue.handle(said(payload="fb:complaint"))
    assert "complaint" in prompt.text
    assert "recorded" in (await dialogue.handle(said("I waited an hour at the counter")))[0].text
    assert [(r.kind, r.text) for r in await stored(sessions)] == [
        ("complaint", "I waited an hour at the counter")
    ]


async def test_empty_comment_is_asked_again_and_can_be_cancelled(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said("/feedback"))
    for empty in ("\u200b\u200b", "...", "？！"):
        [again] = await dialogue.handle(said(empty))
        assert again.kind == "feedback_empty", empty
        assert payloads([again]) == ["fb:cancel"]
    [cancelled] = await dialogue.handle(said(payload="fb:cancel"))
    assert cancelled.text == "Cancelled. Nothing was saved."
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"
    assert await stored(sessions) == []


async def test_very_long_comment_is_kept_cut_to_the_maximum_with_a_note(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said("/feedback"))
    replies = await dialogue.handle(said("x" * 5000))
    assert f"we kept the first {MAX_FEEDBACK_CHARS} characters" in texts(replies)
    [row] = await stored(sessions)
    assert row.text == "x" * MAX_FEEDBACK_CHARS


async def test_emoji_only_comment_is_the_citizens_voice_and_is_kept(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said("/feedback"))
    assert (await dialogue.handle(said("👍👍🏻🙂")))[0].kind == "feedback_saved"
    _, unhelpful = await answered(dialogue)
    await dialogue.handle(said(payload=unhelpful))
    assert (await dialogue.handle(said("😡")))[0].kind == "feedback_saved"
    assert [(r.kind, r.text) for r in await stored(sessions)] == [("comment", "👍👍🏻🙂"), ("missing", "😡")]


async def test_feedback_replies_follow_the_citizens_language(dialogue: Dialogue) -> None:
    [prompt] = await dialogue.handle(said("/feedback", language="zh"))
    assert prompt.text.startswith("您对本服务有什么意见")
    assert prompt.buttons_flat[0].label == "⚠️ 投诉"


async def test_comment_prompt_expires_like_every_prompt(sessions: Sessions, knowledge: LiveKnowledge) -> None:
    clock = [NOW]
    dialogue = Dialogue(sessions, knowledge, clock=lambda: clock[0])
    await dialogue.handle(said("/feedback"))
    clock[0] = NOW + WAIT + timedelta(minutes=1)
    assert (await dialogue.handle(said(QUESTION)))[0].kind == "answer"
    assert await stored(sessions) == []


async def test_choosing_from_did_you_mean_suggests_the_question_as_a_phrasing(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    options = payloads(await dialogue.handle(said("Identity card?")))
    await dialogue.handle(said(payload=options[0]))
    none_of_these = payloads(await dialogue.handle(said("identity card office", user="7")))[-1]
    assert none_of_these.endswith(":none")
    await dialogue.handle(said(payload=none_of_these, user="7"))
    async with sessions() as session:
        [suggestion] = await SuggestionRepository(session).listing()
    async with sessions() as session:
        chosen = (await session.scalars(select(Answer.entry_id))).one()
    assert (suggestion.entry_id, suggestion.text, suggestion.times_chosen) == (chosen, "Identity card", 1)
