"""Telegram updates as the dialogue sees them: an Incoming, its chat, the button press to answer.

Private text messages and button presses, nearly every update, are read straight from the JSON; anything
else goes through python-telegram-bot's Update (groups, media, service messages).
"""

from __future__ import annotations

import re
from typing import Any

from telegram import CallbackQuery, Message, MessageEntity, Update, User
from telegram.constants import ChatType

from handlers.types import Incoming

CHANNEL = "telegram"
UNSUPPORTED = ("sticker", "animation", "photo", "video_note", "video", "voice", "audio", "document", "venue",
               "location", "contact", "poll", "dice", "story", "live_photo", "paid_media", "game", "invoice",
               "checklist", "web_app_data")
"""Kinds of content we cannot read, most specific first (an animation also carries a document).

A citizen sent each of them, so each is answered, politely, that we read text. ``web_app_data`` comes from
a Web App button of a keyboard govbot never sends (one left by other software on the same bot): pressed,
it deserves an answer too. Ticking or adding a checklist's tasks (``checklist_tasks_done``/``_added``)
changes a message already sent, like an edit, and is left unanswered as edits are.
"""
JSON = dict[str, Any]
_BARE_COMMAND = re.compile(r"^(/[^\s@]+)(?=\s|$)")


def to_incoming(update: Update, me: User) -> Incoming | None:
    """The update as the dialogue sees it; None for what the bot ignores (edits, group chatter, service)."""
    if update.callback_query is not None:
        return _from_callback(update.callback_query)
    message = update.message
    if message is None or message.from_user is None:
        return None
    if message.is_automatic_forward:
        return None  # a channel's post copied into its discussion group: the channel speaking, not a citizen
    kind = None if message.text is not None else _unsupported(message)
    if message.text is None and kind is None:
        return None  # a service message: someone joined, a title changed …
    group = message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
    if group and not _addressed(message, me):
        return None
    # A photo of a form captioned "how do I fill this in?": the caption is the question.
    said = message.text if message.text is not None else message.caption
    text = _without_mention(said, me.username) if group and said else said
    sender = message.from_user
    # An anonymous admin or a channel writes as the same helper bot in every group: the chat is who it is.
    who = str(message.sender_chat.id) if message.sender_chat is not None else str(sender.id)
    return Incoming(CHANNEL, str(message.chat.id), who, text=text, language=sender.language_code,
                    message_id=str(message.message_id), is_group=group, display_name=sender.full_name,
                    unsupported=kind, thread_id=_topic(message))


def _from_callback(query: CallbackQuery) -> Incoming | None:
    if query.data is None:
        return None  # a game button: nothing of ours
    origin, sender = query.message, query.from_user
    chat_id = str(origin.chat.id) if origin is not None else str(sender.id)
    group = origin is not None and origin.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
    return Incoming(CHANNEL, chat_id, str(sender.id), payload=query.data, language=sender.language_code,
                    message_id=str(origin.message_id) if origin is not None else None, is_group=group,
                    display_name=sender.full_name, thread_id=_topic(origin))


def _topic(message: Any) -> str | None:
    """The forum topic a message is in (an inaccessible message says nothing of it)."""
    if message is None or not getattr(message, "is_topic_message", False):
        return None
    thread = getattr(message, "message_thread_id", None)
    return str(thread) if thread is not None else None


class Read:
    """What processing needs of an update: the chat it belongs to, the event, the button press to answer."""

    __slots__ = ("chat", "incoming", "query_id")

    def __init__(self, chat: str, incoming: Incoming | None, query_id: str | None) -> None:
        self.chat, self.incoming, self.query_id = chat, incoming, query_id


def read_update(payload: JSON, me: User, bot: Any) -> Read:
    """The update as processing needs it: read from the JSON for the common kinds, else through PTB."""
    simple = _read_simple(payload)
    if simple is not None:
        return simple
    update = Update.de_json(payload, bot)
    query = update.callback_query
    return Read(chat_key(update), to_incoming(update, me), query.id if query is not None else None)


def _read_simple(payload: JSON) -> Read | None:
    """A private text message or a button press with data, straight from the JSON; None for anything else.

    Building python-telegram-bot's Update, Message, Chat and User objects cost a tenth of an update's CPU,
    and these two kinds are nearly every update; the rest (groups, media, service messages) go through
    PTB in :func:`to_incoming`. Both must read an update the same way (tests/bot compares them).
    """
    message = payload.get("message")
    if message is not None:
        sender, chat, text = message.get("from"), message.get("chat"), message.get("text")
        if not (isinstance(sender, dict) and isinstance(chat, dict) and isinstance(text, str)
                and chat.get("type") == ChatType.PRIVATE and len(payload) == 2):
            return None
        chat_id = str(chat["id"])
        return Read(chat_id, Incoming(CHANNEL, chat_id, str(sender["id"]), text=text,
                                      language=sender.get("language_code"),
                                      message_id=str(message["message_id"]), display_name=_full_name(sender),
                                      thread_id=_thread(message)),
                    None)
    query = payload.get("callback_query")
    if query is None or len(payload) != 2:
        return None
    sender, origin, data = query.get("from"), query.get("message"), query.get("data")
    if not (isinstance(sender, dict) and isinstance(data, str)):
        return None
    if origin is None:
        chat_id, group, message_id = str(sender["id"]), False, None
    elif isinstance(origin, dict) and isinstance(origin.get("chat"), dict):
        chat = origin["chat"]
        chat_id, message_id = str(chat["id"]), str(origin["message_id"])
        group = chat.get("type") in (ChatType.GROUP, ChatType.SUPERGROUP)
    else:
        return None
    incoming = Incoming(CHANNEL, chat_id, str(sender["id"]), payload=data,
                        language=sender.get("language_code"), message_id=message_id, is_group=group,
                        display_name=_full_name(sender),
                        thread_id=_thread(origin) if origin is not None else None)
    return Read(chat_id, incoming, str(query["id"]))


def _thread(message: JSON) -> str | None:
    """:func:`_topic` of a message's JSON: a private chat with the bot has topics too (Bot API 9.3)."""
    if not message.get("is_topic_message") or message.get("message_thread_id") is None:
        return None
    return str(message["message_thread_id"])


def _full_name(user: JSON) -> str:
    """User.full_name of python-telegram-bot."""
    last = user.get("last_name")
    return f"{user['first_name']} {last}" if last else str(user["first_name"])


def _unsupported(message: Message) -> str | None:
    return next((kind for kind in UNSUPPORTED if getattr(message, kind, None)), None)


def _addressed(message: Message, me: User) -> bool:
    """A group message is for us when it is a command not for another bot, or replies to us, or mentions us.

    A command decides first: ``/help@otherbot`` in a reply to one of our answers is the other bot's.
    """
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    username = (me.username or "").lower()
    for entity, text in entities.items():
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            _, at, target = text.partition("@")
            return not at or target.lower() == username
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return True
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and text[1:].lower() == username:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == me.id:
            return True
    return False


def _without_mention(text: str, username: str | None) -> str:
    """The text without the bot's @mentions; a bare command they leave first is marked as ours by name.

    ``@govbot /weather`` becomes ``/weather@govbot``: the dialogue leaves a bare ``/weather`` that it does
    not know to the group's other bots, and the mention said this one was for us.
    """
    if not username:
        return text
    stripped, mentions = re.subn(rf"(?<![\w/@])@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)
    stripped = re.sub(r"[ \t]{2,}", " ", stripped).strip()
    if mentions:
        stripped = _BARE_COMMAND.sub(lambda bare: f"{bare[1]}@{username}", stripped, count=1)
    return stripped


def chat_key(update: Update) -> str:
    chat, user = update.effective_chat, update.effective_user
    return str(chat.id) if chat is not None else str(user.id) if user is not None else ""
