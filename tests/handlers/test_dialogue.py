"""The platform-neutral dialogue, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from handlers.i18n import t
from handlers.router import Router, Turn
from handlers.smalltalk import GREETINGS, THANKS
from handlers.start import help_text
from handlers.types import FLOOD, FLOOD_QUIET, Reply
from knowledge.entry import Category
from knowledge.normalise import normalise
from storage import citizen_data, db
from storage.citizens import CitizenRepository
from storage.knowledge import KnowledgeRepository
from storage.knowledge_sync import LiveKnowledge
from storage.models import Answer, Message, Question
from storage.suggestions import SuggestionRepository
from tests.conftest import close_every_connection, statements
from tests.handlers.conftest import NOW, payloads, said, small_kb
from tests.handlers.test_escalation import press

Sessions = async_sessionmaker[AsyncSession]


async def test_start_greets_with_privacy_notice_and_language_choice(dialogue: Dialogue) -> None:
    replies = await dialogue.handle(said("/start"))
    assert "Harbourside" in replies[0].text
    assert "Privacy" in replies[0].text
    assert payloads(replies) == ["menu:1", "lang:en", "lang:zh"]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_a_deep_link_opens_its_entry_or_its_topic_after_the_greeting(
    dialogue: Dialogue, lang: str
) -> None:
    greeting, choice, answer = await dialogue.handle(said("/start id-card-renew", language=lang))
    assert (greeting.kind, choice.kind, answer.kind) == ("start", "language", "answer")
    assert answer.text.startswith(small_kb().entries[0].answer[lang])
    *_, topic = await dialogue.handle(said("/start topic_tax", language=lang))
    title = t(lang, "category_title", category=small_kb().categories[1].name[lang])
    assert (topic.text, topic.replace) == (title, False)
    assert payloads([topic]) == ["show:tax-property-pay", "menu:1"]


@pytest.mark.parametrize("payload", [
    "nowhere", "topic_nowhere", "topic_", "tax-old-rebate", "ID-CARD-RENEW", "show:id-card-renew",
    "id-card-renew now", "../id-card-renew", "身份证", "topic_tax%00", "x" * 65])
async def test_a_deep_link_to_nothing_we_show_is_the_plain_start(dialogue: Dialogue, payload: str) -> None:
    assert [r.kind for r in await dialogue.handle(said(f"/start {payload}"))] == ["start", "language"]


async def test_chosen_language_is_remembered_across_a_restart(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    replies = await dialogue.handle(said(payload="lang:zh"))
    assert replies[0].text == "已切换为简体中文。"
    restarted = Dialogue(sessions, knowledge, clock=lambda: NOW)
    assert "使用说明" in (await restarted.handle(said("/help")))[0].text


async def test_language_follows_telegram_code_then_the_script_of_the_text(dialogue: Dialogue) -> None:
    assert "使用说明" in (await dialogue.handle(said("/help", user="1", language="zh-hans")))[0].text
    assert "How to use" in (await dialogue.handle(said("/help", user="2", language="de")))[0].text
    reply = (await dialogue.handle(said("身份证丢了怎么补办", user="3", language=None)))[0]
    assert reply.text == "先挂失，再到户籍窗口申请补领。"


async def test_button_press_answers_in_the_language_the_citizen_typed(dialogue: Dialogue) -> None:
    options = payloads(await dialogue.handle(said("身份证的事", user="7", language=None)))
    picked = await dialogue.handle(said(payload=options[0], user="7", language=None))
    assert picked[0].kind == "answer"
    chinese = {"携带旧身份证和照片到任一户籍窗口办理，工本费20元。", "先挂失，再到户籍窗口申请补领。"}
    assert picked[0].text in chinese


async def test_confident_question_gets_the_answer_with_links_and_rating_buttons(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    replies = await dialogue.handle(said("how do I renew my identity card"))
    assert [r.kind for r in replies] == ["answer"]
    assert replies[0].text.startswith("Bring your old card")
    assert replies[0].buttons_flat[0].url == "https://registry.example.gov/id"
    async with sessions() as session:
        answer = (await session.scalars(select(Answer))).one()
        question = (await session.scalars(select(Question))).one()
    assert payloads(replies) == [f"rate:{answer.id}:1", f"rate:{answer.id}:0"]
    assert (answer.entry_id, answer.how, question.decision) == ("id-card-renew", "matched", "answer")


async def test_unknown_question_is_admitted_recorded_and_offers_a_department(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    replies = await dialogue.handle(said("What time does the moon festival fireworks show start?"))
    assert [r.kind for r in replies] == ["fallback"]
    async with sessions() as session:
        question = (await session.scalars(select(Question))).one()
    assert question.decision == "none"
    assert payloads(replies) == [f"human:q{question.id}", "menu:1"]


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        ("Hello!", "greeting", "en"),
        ("hi there 👋", "greeting", "en"),
        ("您好，在吗？", "greeting", "zh"),
        ("Thank you.", "thanks", "en"),
        ("謝謝！", "thanks", "zh"),
    ],
)
async def test_a_greeting_or_thanks_on_its_own_gets_a_friendly_word_not_a_question_for_staff(
    dialogue: Dialogue, sessions: Sessions, text: str, kind: str, language: str
) -> None:
    [reply] = await dialogue.handle(said(text, language=None))
    assert reply.kind == kind
    assert reply.text == t(language, "greeting" if kind == "greeting" else "you_are_welcome")
    assert ("menu:1" in payloads([reply])) is (kind == "greeting")
    async with sessions() as session:
        assert list(await session.scalars(select(Question))) == []  # nothing in staff's "unanswered"
        assert [m.text for m in await session.scalars(select(Message).order_by(Message.id))] == [
            text,
            reply.text,
        ]


async def test_a_question_that_starts_with_a_greeting_is_still_a_question(dialogue: Dialogue) -> None:
    [reply] = await dialogue.handle(said("Hello, how do I renew my identity card?"))
    assert reply.kind == "answer"


async def test_did_you_mean_pick_answers_and_records_the_choice(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    replies = await dialogue.handle(said("identity card"))
    assert replies[0].kind == "clarify"
    options = payloads(replies)
    assert 2 <= len(options) <= 4
    assert options[-1].endswith(":none")
    picked = await dialogue.handle(said(payload=options[0]))
    assert picked[0].kind == "answer"
    async with sessions() as session:
        question = (await session.scalars(select(Question))).one()
        answer = (await session.scalars(select(Answer))).one()
    assert question.chosen_entry_id == answer.entry_id
    assert answer.how == "picked"


async def test_only_the_first_choice_of_a_did_you_mean_counts_as_a_suggested_phrasing(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    options = payloads(await dialogue.handle(said("identity card")))
    for pressed in (options[0], options[0], options[1], options[-1]):
        assert (await dialogue.handle(said(payload=pressed)))[0].kind in {"answer", "fallback"}
    async with sessions() as session:
        question = (await session.scalars(select(Question))).one()
        suggestions = await SuggestionRepository(session).listing()
        shown = (await session.scalars(select(Answer.entry_id).order_by(Answer.id))).all()
    assert [(s.entry_id, s.times_chosen) for s in suggestions] == [(question.chosen_entry_id, 1)]
    assert shown == [question.chosen_entry_id, question.chosen_entry_id, shown[2]]  # each shown answer
    assert shown[2] != shown[0]
    async with sessions.begin() as session:  # and erasure takes the one pick back
        citizen = await CitizenRepository(session).get_or_create("test", "42", now=NOW)
        await citizen_data.erase(session, citizen.id, NOW)
    async with sessions() as session:
        assert await SuggestionRepository(session).listing() == []


async def test_none_of_these_falls_back_to_a_department(dialogue: Dialogue) -> None:
    options = payloads(await dialogue.handle(said("identity card")))
    assert (await dialogue.handle(said(payload=options[-1])))[0].kind == "fallback"


async def test_rating_twice_changes_the_rating_and_another_user_cannot_rate(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    helpful, unhelpful = payloads(await dialogue.handle(said("pay property tax")))
    assert (await dialogue.handle(said(payload=helpful)))[0].notice == "Thank you for your feedback!"
    assert (await dialogue.handle(said(payload=helpful)))[0].notice == "You have already rated this answer."
    assert (await dialogue.handle(said(payload=unhelpful)))[0].notice == "Your rating has been updated."
    stranger = await dialogue.handle(said(payload=helpful, user="99"))
    assert stranger[0].notice == "Only the person who asked can rate this answer."
    async with sessions() as session:
        ratings = (await session.scalars(select(Answer.rating))).all()
    assert ratings == ["not_helpful"]


async def test_forged_and_stale_buttons_get_a_clear_reply(dialogue: Dialogue) -> None:
    for payload in (
        "zzz:1",
        "pick:999:0",
        "pick:abc",
        "rate:abc:1",
        "rate:1:7",
        "show:no-such-entry",
        "lang:fr",
        "cat:nope:1",
        "",
    ):
        replies = await dialogue.handle(said(payload=payload))
        assert replies, payload
        assert all(r.kind in {"expired", "menu"} for r in replies), payload


async def test_buttons_forged_with_digits_int_refuses_get_a_clear_reply_not_an_apology(
    dialogue: Dialogue,
) -> None:
    """"²" and "١" pass str.isdigit(); a payload carrying them is as forged as any other."""
    clarified = await dialogue.handle(said("identity card"))
    own_question = payloads(clarified)[0].split(":")[1]
    for digits in ("²", "١", "١²"):
        for payload in (f"menu:{digits}", f"cat:tax:{digits}", f"pick:{own_question}:{digits}",
                        f"forget:yes:{digits}", f"consent:{digits}:1", f"rate:{digits}:1"):
            replies = await dialogue.handle(said(payload=payload))
            assert replies, payload
            assert "error" not in {r.kind for r in replies}, payload


async def test_button_of_an_entry_deleted_since_says_it_is_gone(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    async with sessions.begin() as session:
        await KnowledgeRepository(session).delete_entry("tax-property-pay", "test")
    await knowledge.refresh()
    replies = await dialogue.handle(said(payload="show:tax-property-pay"))
    assert replies[0].text == "That answer is no longer available. Please ask again or use /menu."


async def test_menu_browses_topics_then_questions_then_an_answer(dialogue: Dialogue) -> None:
    topics = await dialogue.handle(said("/menu"))
    assert payloads(topics) == ["cat:civil-registry:1", "cat:tax:1"]
    questions = await dialogue.handle(said(payload="cat:tax:1"))
    assert questions[0].replace
    # The expired rebate is not offered.
    assert payloads(questions) == ["show:tax-property-pay", "menu:1"]
    answer = await dialogue.handle(said(payload="show:tax-property-pay"))
    assert answer[0].text.startswith("Pay property tax online")


async def test_a_command_ends_at_any_whitespace_not_only_a_space(dialogue: Dialogue) -> None:
    for text in ("/help\nplease", "/help\tplease", "/help\u3000please", "／help"):  # ／: Chinese input
        assert (await dialogue.handle(said(text)))[0].text == help_text("en"), repr(text)
    assert said("/ help").command is None  # a slash and a space is not a command


async def test_without_a_chosen_language_commands_and_buttons_keep_the_language_typed_last(
    dialogue: Dialogue,
) -> None:
    assert (await dialogue.handle(said("身份证到期了怎么换领", language=None)))[0].kind == "answer"
    assert (await dialogue.handle(said("/menu", language=None)))[0].text.startswith(t("zh", "menu_title"))
    for _ in range(6):  # more presses than the bot's own messages that come between
        pressed = await dialogue.handle(said(payload="menu:1", language=None))
        assert pressed[0].text.startswith(t("zh", "menu_title"))


async def test_the_notice_of_a_cut_message_is_in_the_citizens_language(dialogue: Dialogue) -> None:
    await dialogue.handle(said(payload="lang:zh"))
    replies = await dialogue.handle(said("a " * 3000))
    assert replies[0].text == t("zh", "too_long")


async def test_in_a_group_personal_data_commands_ask_for_a_private_chat(dialogue: Dialogue) -> None:
    await dialogue.handle(said("I live at 5 Secret Road, how do I renew my identity card?"))
    for command in ("/mydata", "/forget", "/privacy", "/status", "/cases"):
        replies = await dialogue.handle(said(command, is_group=True))
        assert [r.kind for r in replies] == ["private_only"], command
        assert all(r.document is None and not r.buttons_flat for r in replies), command
        assert "Secret Road" not in replies[0].text
    assert (await dialogue.handle(said("/mydata")))[0].document is not None  # in private it works


async def test_an_entry_imported_without_an_answer_is_never_shown_empty(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    kb = small_kb()
    silent = kb.entries[0].replace(
        id="zoo-zebra", question={"en": "How do I adopt a zebra from the city zoo?"},
        alternatives={"en": ["adopt a zebra", "zebra adoption"]}, answer={},
    )
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(replace(kb, entries=[*kb.entries, silent]), "test")
    await knowledge.refresh()
    for replies in (await dialogue.handle(said("How do I adopt a zebra from the city zoo?")),
                    await dialogue.handle(said(payload="show:zoo-zebra"))):
        assert replies
        assert all(reply.text for reply in replies)
        assert "answer" not in {reply.kind for reply in replies}
    browsed = await dialogue.handle(said(payload=f"cat:{silent.category}:1"))
    assert "show:zoo-zebra" not in payloads(browsed)


async def test_a_topic_whose_code_is_too_long_for_a_button_is_left_out_of_the_menu(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    """Stored before files refused such codes: the menu failed for every citizen ("button payload over
    64 bytes"), not just for that topic."""
    kb = small_kb()
    long_code = "c" * 61
    entry = kb.entries[0].replace(id="zoo-zebra", category=long_code, question={"en": "Adopt a zebra?"})
    wider = replace(kb, categories=[*kb.categories, Category(long_code, {"en": "Zoo"})],
                    entries=[*kb.entries, entry])
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(wider, "test")
    await knowledge.refresh()
    [reply] = await dialogue.handle(said("/menu"))
    assert reply.kind == "menu"
    assert payloads([reply]) == ["cat:civil-registry:1", "cat:tax:1"]


async def test_an_entry_stored_without_a_question_is_named_by_a_phrasing_never_a_blank_button(
    dialogue: Dialogue, sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    """Files refuse such entries now, but a database seeded or imported before may hold them."""
    kb = small_kb()
    nameless = kb.entries[0].replace(
        id="zoo-zebra", question={}, alternatives={"en": ["adopt a zebra from the zoo"]},
        answer={"en": "Ask at the zoo's gate."},
    )
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(replace(kb, entries=[*kb.entries, nameless]), "test")
    await knowledge.refresh()
    browsed = await dialogue.handle(said(payload=f"cat:{nameless.category}:1"))
    offered = await dialogue.handle(said("adopt zebra zoo renew"))
    labels = {b.label: b.payload for r in [*browsed, *offered] for row in r.buttons for b in row}
    assert all(label.strip() for label in labels)
    assert labels["adopt a zebra from the zoo"] == "show:zoo-zebra"


async def test_erasing_takes_a_citizens_picks_back_from_the_suggested_phrasings(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    for user in ("41", "42"):
        clarified = await dialogue.handle(said("my identity card thing", user=user))
        assert clarified[0].kind == "clarify"
        await dialogue.handle(said(payload=payloads(clarified)[0], user=user))
    async with sessions() as session:
        [suggestion] = await SuggestionRepository(session).listing()
    assert suggestion.times_chosen == 2
    for user, left in (("41", [1]), ("42", [])):
        async with sessions.begin() as session:
            citizen = await CitizenRepository(session).get_or_create("test", user, now=NOW)
            await citizen_data.erase(session, citizen.id, NOW)
        async with sessions() as session:
            assert [s.times_chosen for s in await SuggestionRepository(session).listing()] == left


async def test_expired_entry_is_never_answered(dialogue: Dialogue) -> None:
    replies = await dialogue.handle(said("How do I claim the 2025 energy rebate?"))
    assert all(r.kind != "answer" for r in replies)


async def test_a_caption_is_answered_after_a_note_that_its_attachment_was_not_read(
    dialogue: Dialogue,
) -> None:
    note, answer = await dialogue.handle(said("How do I renew my identity card?", unsupported="photo"))
    assert (note.kind, answer.kind) == ("attachment", "answer")
    assert [r.kind for r in await dialogue.handle(said("\u200b", unsupported="photo"))] == ["text_only"]


async def test_bad_input_gets_a_clear_reply(dialogue: Dialogue) -> None:
    assert (await dialogue.handle(said(unsupported="sticker")))[0].kind == "text_only"
    assert (await dialogue.handle(said("   ")))[0].kind == "empty"
    assert (await dialogue.handle(said("\x00\x07")))[0].kind == "empty"
    assert (await dialogue.handle(said("\u200b\u202e\u3000\ufeff")))[0].kind == "empty"  # nothing visible
    assert (await dialogue.handle(said("/frobnicate")))[0].text.startswith(
        "I don't know the command /frobnicate"
    )
    assert (await dialogue.handle(said("🙂🙂🙂")))[0].kind in {"fallback", "clarify"}
    surrogate = await dialogue.handle(said("renew identity card \ud800"))
    assert surrogate[0].kind == "answer"
    huge = await dialogue.handle(said("identity card " * 1000))
    assert huge[0].text.startswith("Your message is very long")
    assert huge[1].kind in {"answer", "clarify", "fallback"}


async def test_conversation_is_stored_in_and_out(dialogue: Dialogue, sessions: Sessions) -> None:
    await dialogue.handle(said("pay property tax"))
    async with sessions() as session:
        messages = (await session.execute(select(Message.direction, Message.text).order_by(Message.id))).all()
    assert messages[0] == ("in", "pay property tax")
    assert messages[1][0] == "out"



@pytest.mark.parametrize("command", ["/menu", "/start", "/help", "/language"])
async def test_a_command_that_reads_no_messages_is_written_with_its_replies_in_order(
    dialogue: Dialogue, sessions: Sessions, engine: AsyncEngine, command: str
) -> None:
    # Its incoming message need not be there before the flow runs: one write for the turn's messages,
    # where the command was a round trip of its own.
    await dialogue.handle(said("hello"))
    with statements(engine) as sent:
        replies = await dialogue.handle(said(command))
    async with sessions() as session:
        kept = (await session.execute(select(Message.direction, Message.text).order_by(Message.id))).all()
    said_out = [("out", reply.text) for reply in replies if reply.text]
    assert [tuple(row) for row in kept[2:]] == [("in", command), *said_out]
    assert len([s for s in sent if "INSERT INTO messages" in s]) == 1

async def test_a_failing_flow_is_answered_with_an_apology(
    sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    broken = Router()

    @broken.command("boom")
    async def boom(turn: Turn) -> list[Reply]:
        raise RuntimeError("bug")

    dialogue = Dialogue(sessions, knowledge, routers=[broken])
    replies = await dialogue.handle(said("/boom"))
    assert replies[0].kind == "error"
    assert "something went wrong" in replies[0].text


async def test_a_database_out_of_reach_is_one_log_line_per_event_not_a_traceback(
    sessions: Sessions, knowledge: LiveKnowledge, caplog: pytest.LogCaptureFixture
) -> None:
    down = Router()

    @down.command("down")
    async def refused(turn: Turn) -> list[Reply]:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    dialogue = Dialogue(sessions, knowledge, routers=[down])
    with caplog.at_level(logging.WARNING, logger="handlers.dialogue"):
        replies = await dialogue.handle(said("/down"))
    assert [reply.kind for reply in replies] == ["error"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "the database is unavailable" in record.getMessage()
    assert "ConnectionRefusedError: connection refused" in record.getMessage()


async def test_a_flow_other_than_a_question_sees_the_message_that_started_it(
    sessions: Sessions, knowledge: LiveKnowledge
) -> None:
    seen: list[tuple[str, str]] = []
    echo = Router()

    @echo.command("echo")
    async def echo_flow(turn: Turn) -> list[Reply]:
        stored = await turn.session.execute(
            select(Message.direction, Message.text)
            .where(Message.user_id == turn.citizen.id)
            .order_by(Message.id)
        )
        seen.extend((direction, text) for direction, text in stored)
        return [Reply("echoed")]

    await Dialogue(sessions, knowledge, routers=[echo]).handle(said("/echo hello"))
    assert seen == [("in", "/echo hello")]


async def test_a_citizen_over_the_flood_limit_is_told_once_and_nothing_of_it_is_kept(
    sessions: Sessions, knowledge: LiveKnowledge, engine: AsyncEngine
) -> None:
    # Two processes: each its own engine and Dialogue, the count in the database they share.
    other = db.create_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        first = Dialogue(sessions, knowledge, clock=lambda: NOW, flood_limit=2)
        second = Dialogue(db.sessionmaker(other), knowledge, clock=lambda: NOW, flood_limit=2)
        kinds = [[r.kind for r in await process.handle(said("/help"))]
                 for process in (first, second, first, second, first)]
    finally:
        await other.dispose()
    assert kinds[:2] == [["help"], ["help"]]
    assert kinds[2:] == [[FLOOD], [FLOOD_QUIET], [FLOOD_QUIET]]
    async with sessions() as session:
        kept = (await session.execute(select(Message.text).where(Message.direction == "in"))).scalars().all()
    assert list(kept) == ["/help", "/help"]  # the refused messages were not recorded
    later = Dialogue(sessions, knowledge, clock=lambda: NOW + timedelta(minutes=3), flood_limit=2)
    assert [r.kind for r in await later.handle(said("/help"))] == ["help"]


@pytest.mark.postgres
async def test_a_turn_is_not_lost_when_the_database_restarted_under_the_pool(postgres_url: str) -> None:
    engine = db.create_engine(postgres_url)
    try:
        sessions = db.sessionmaker(engine)
        async with sessions.begin() as session:
            await KnowledgeRepository(session).apply_import(small_kb(), "test")
        knowledge = LiveKnowledge(sessions)
        await knowledge.load()
        dialogue = Dialogue(sessions, knowledge, clock=lambda: NOW)
        await dialogue.handle(said("/help"))  # the pool now holds a connection
        await close_every_connection(postgres_url)  # what a server restart does to it

        replies = await dialogue.handle(said("How do I pay my property tax?"))

        assert [reply.kind for reply in replies] == ["answer"]
        async with sessions() as session:
            asked = (await session.execute(select(Question.text))).scalars().all()
        assert list(asked) == ["How do I pay my property tax?"]
    finally:
        await engine.dispose()



async def describing(dialogue: Dialogue) -> list[Reply]:
    """The citizen has asked for a person, chosen the tax topic and is asked to describe their need."""
    replies = await press(dialogue, await dialogue.handle(said("/human")), "esc:cat:tax")
    replies = await press(dialogue, replies, "esc:yes")
    assert replies[0].kind == "escalation_describe"
    return replies


async def test_a_step_pending_in_the_private_chat_is_neither_taken_nor_dropped_by_a_group_message(
    dialogue: Dialogue,
) -> None:
    """The same citizen addressing the bot in a group: not their case's description, and no case there."""
    await describing(dialogue)
    for group_message in (said("@govbot what time is the meeting?", is_group=True),
                          said("/help", is_group=True)):
        replies = await dialogue.handle(group_message)
        assert not [r for r in replies if r.kind.startswith("escalation")]
    replies = await dialogue.handle(said("My tax refund from March has not arrived."))
    assert replies[0].kind == "escalation_consent"


async def test_another_features_button_leaves_a_pending_step_as_a_command_does(dialogue: Dialogue) -> None:
    await describing(dialogue)
    await dialogue.handle(said(payload="menu:1"))  # 📚 Browse topics, while asked to describe
    replies = await dialogue.handle(said("How do I pay my property tax?"))
    assert replies[0].kind in ("answer", "clarify"), "a question, not the description of a request"


async def test_in_a_group_a_command_this_bot_does_not_know_is_left_to_the_bot_it_is_for(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    """Every bot in a group gets a bare /command: one that is not ours is another bot's, not a mistake."""
    assert await dialogue.handle(said("/weather London", is_group=True)) == []
    async with sessions() as session:
        assert (await session.scalars(select(Message.text))).all() == []  # nothing of it kept
    for told in (said("/weather@govbot London", is_group=True), said("/weather London")):
        assert [r.kind for r in await dialogue.handle(told)] == ["unknown_command"]


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_a_step_that_waits_for_a_button_names_one_that_is_shown(
    dialogue: Dialogue, language: str
) -> None:
    # The confirmation shows Yes and "✖ No, thanks": "press Cancel" named a button that was not there.
    asked = await dialogue.handle(said("/human", language=language))
    confirm = await press(dialogue, asked, "esc:cat:tax", language=language)
    told, again = await dialogue.handle(said("yes please", language=language))
    assert told.kind == "escalation_use_buttons"
    [leave] = [b.label for b in again.buttons_flat if b.payload and b.payload.startswith("esc:no")]
    assert leave == confirm[0].buttons_flat[-1].label
    assert leave.split()[0] in told.text  # the ✖ that both the topic and the confirmation show


@pytest.mark.parametrize("phrase", sorted(GREETINGS | THANKS))
def test_every_small_talk_phrase_is_written_as_a_citizens_message_folds(phrase: str) -> None:
    """A phrase in any other form (capitals, Traditional characters, punctuation) would never be met."""
    folded = normalise(phrase)
    assert phrase in {folded, folded.replace(" ", "")}
