"""Updates read straight from their JSON are read exactly as python-telegram-bot's objects would be."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update, User

from bot.channels.telegram_updates import _read_simple, chat_key, read_update, to_incoming

ME = User(id=999, first_name="Govbot", is_bot=True, username="govbot")
ALICE = {"id": 42, "is_bot": False, "first_name": "Alice", "last_name": "Liddell", "language_code": "en"}
BOB = {"id": 43, "is_bot": False, "first_name": "Bob"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Alice"}
GROUP = {"id": -100, "type": "group", "title": "Neighbours"}
PHOTO = {"file_id": "p", "file_unique_id": "up", "width": 1, "height": 1}
FILE = {"file_id": "d", "file_unique_id": "ud"}
CHECKLIST = {"title": "Papers to bring", "tasks": [{"id": 1, "text": "passport"}]}


def _message(chat: dict[str, Any], sender: dict[str, Any], **content: Any) -> dict[str, Any]:
    return {"message_id": 7, "date": 1_700_000_000, "chat": chat, "from": sender, **content}


COMMON = {
    "a question": {"update_id": 1, "message": _message(PRIVATE, ALICE, text="How do I renew my passport?")},
    "a command without a last name": {"update_id": 2, "message": _message(PRIVATE, BOB, text="/start")},
    "a button on a message": {"update_id": 3, "callback_query": {
        "id": "q1", "from": ALICE, "chat_instance": "c", "data": "rate:5:helpful",
        "message": _message(PRIVATE, {"id": 999, "is_bot": True, "first_name": "Govbot"}, text="Answer")}},
    "a button in a group": {"update_id": 4, "callback_query": {
        "id": "q2", "from": BOB, "chat_instance": "c", "data": "menu:1",
        "message": _message(GROUP, {"id": 999, "is_bot": True, "first_name": "Govbot"}, text="Menu")}},
    "a button on an inaccessible message": {"update_id": 5, "callback_query": {
        "id": "q3", "from": ALICE, "chat_instance": "c", "data": "menu:1",
        "message": {"message_id": 8, "date": 0, "chat": PRIVATE}}},
    "a button on an inline message": {"update_id": 6, "callback_query": {
        "id": "q4", "from": ALICE, "chat_instance": "c", "data": "menu:1", "inline_message_id": "i"}},
    "a question in a topic of the private chat": {"update_id": 7, "message": _message(
        PRIVATE, ALICE, text="passport?", message_thread_id=3, is_topic_message=True)},
    "a button in a topic of the private chat": {"update_id": 8, "callback_query": {
        "id": "q6", "from": ALICE, "chat_instance": "c", "data": "menu:1", "message": _message(
            PRIVATE, {"id": 999, "is_bot": True, "first_name": "Govbot"}, text="Menu", message_thread_id=3,
            is_topic_message=True)}},
}
OTHERS = {
    "a group message": {"update_id": 10, "message": _message(
        GROUP, ALICE, text="@govbot passport?", entities=[{"type": "mention", "offset": 0, "length": 7}])},
    "a sticker": {"update_id": 11, "message": _message(PRIVATE, ALICE, sticker={
        "file_id": "f", "file_unique_id": "u", "width": 1, "height": 1, "is_animated": False,
        "is_video": False, "type": "regular"})},
    "a service message": {"update_id": 12, "message": _message(GROUP, ALICE, new_chat_title="Renamed")},
    "an edit": {"update_id": 13, "edited_message": _message(PRIVATE, ALICE, text="edited", edit_date=1)},
    "a game button": {"update_id": 14, "callback_query": {
        "id": "q5", "from": ALICE, "chat_instance": "c", "game_short_name": "g"}},
    "a photo with a caption": {"update_id": 15, "message": _message(
        PRIVATE, ALICE, photo=[PHOTO], caption="how do I fill this in?")},
    "a photo without a caption": {"update_id": 16, "message": _message(PRIVATE, ALICE, photo=[PHOTO])},
    "a document whose caption mentions the bot in a group": {"update_id": 17, "message": _message(
        GROUP, ALICE, document=FILE, caption="@govbot is this form right?",
        caption_entities=[{"type": "mention", "offset": 0, "length": 7}])},
    "a video with a caption in a group, for nobody": {"update_id": 18, "message": _message(
        GROUP, ALICE, video=FILE | {"width": 1, "height": 1, "duration": 1}, caption="look at the queue")},
    "a checklist": {"update_id": 19, "message": _message(PRIVATE, ALICE, checklist=CHECKLIST)},
    "data from a web app's keyboard button": {"update_id": 20, "message": _message(
        PRIVATE, ALICE, web_app_data={"data": "{}", "button_text": "Apply"})},
    "tasks of a checklist ticked": {"update_id": 21, "message": _message(
        PRIVATE, ALICE, checklist_tasks_done={"marked_as_done_task_ids": [1]})},
}


def _through_ptb(payload: dict[str, Any]) -> tuple[str, Any, str | None]:
    update = Update.de_json(payload, None)
    query = update.callback_query
    return chat_key(update), to_incoming(update, ME), query.id if query is not None else None


@pytest.mark.parametrize("payload", list(COMMON.values()) + list(OTHERS.values()),
                         ids=list(COMMON) + list(OTHERS))
def test_an_update_is_read_as_python_telegram_bot_reads_it(payload: dict[str, Any]) -> None:
    read = read_update(payload, ME, None)
    assert (read.chat, read.incoming, read.query_id) == _through_ptb(payload)


def test_group_messages_are_still_checked_for_being_addressed_to_the_bot() -> None:
    read = read_update(OTHERS["a group message"], ME, None)
    assert read.incoming is not None
    assert (read.incoming.text, read.incoming.is_group) == ("passport?", True)


@pytest.mark.parametrize(("name", "read"), [
    ("a photo with a caption", ("how do I fill this in?", "photo")),
    ("a photo without a caption", (None, "photo")),
    ("a document whose caption mentions the bot in a group", ("is this form right?", "document")),
])
def test_a_caption_is_read_as_the_text_of_the_attachment_it_came_with(
        name: str, read: tuple[str | None, str]) -> None:
    incoming = read_update(OTHERS[name], ME, None).incoming
    assert incoming is not None
    assert (incoming.text, incoming.unsupported) == read


@pytest.mark.parametrize(("name", "kind"), [
    ("a checklist", "checklist"), ("data from a web app's keyboard button", "web_app_data")])
def test_what_a_citizen_sent_that_is_not_text_gets_its_kind(name: str, kind: str) -> None:
    incoming = read_update(OTHERS[name], ME, None).incoming
    assert incoming is not None
    assert (incoming.text, incoming.unsupported) == (None, kind)


def test_ticking_a_checklists_tasks_is_a_service_message_and_left_alone() -> None:
    assert read_update(OTHERS["tasks of a checklist ticked"], ME, None).incoming is None


def test_a_caption_in_a_group_that_is_not_for_the_bot_is_ignored() -> None:
    assert read_update(OTHERS["a video with a caption in a group, for nobody"], ME, None).incoming is None


@pytest.mark.parametrize("payload", list(COMMON.values()), ids=list(COMMON))
def test_private_text_and_button_presses_skip_python_telegram_bot(payload: dict[str, Any]) -> None:
    assert _read_simple(payload) is not None


@pytest.mark.parametrize("payload", list(OTHERS.values()), ids=list(OTHERS))
def test_other_updates_are_left_to_python_telegram_bot(payload: dict[str, Any]) -> None:
    assert _read_simple(payload) is None
