"""Bot API objects for the fake server: builders of updates, and the chats and messages it remembers."""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

JSON = dict[str, Any]
P = ParamSpec("P")

DEFAULT_USER_ID = 1001
"""Sender of group messages when the test names no user."""

CHAT_TYPES = ("private", "group", "supergroup")
"""Chat types the message builders accept; channels post differently and are not modelled."""

_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")


def utf16_len(text: str) -> int:
    """Length of text in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def entities_for(text: str) -> list[JSON]:
    """The bot_command and mention entities Telegram would attach to text."""
    found = [(m, "bot_command") for m in _COMMAND.finditer(text)]
    found += [(m, "mention") for m in _MENTION.finditer(text)]
    found.sort(key=lambda pair: pair[0].start())
    return [
        {"type": kind, "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m, kind in found
    ]


def user(user_id: int, *, first_name: str, username: str | None, language_code: str | None) -> JSON:
    """A human Telegram user."""
    result: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        result["username"] = username
    if language_code:
        result["language_code"] = language_code
    return result


def bot_user(bot_id: int, *, first_name: str, username: str) -> JSON:
    """The bot's own User object, as getMe returns it."""
    return {
        "id": bot_id,
        "is_bot": True,
        "first_name": first_name,
        "username": username,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def chat(chat_id: int | str, chat_type: str, *, member: JSON | None = None) -> JSON:
    """A Chat object; private chats carry the member's names, groups a title."""
    if chat_type not in CHAT_TYPES:
        raise ValueError(f"chat_type must be one of {CHAT_TYPES}, not {chat_type!r}")
    result: JSON = {"id": chat_id, "type": chat_type}
    if chat_type == "private" and member is not None:
        result["first_name"] = member["first_name"]
        if "username" in member:
            result["username"] = member["username"]
    elif chat_type != "private":
        result["title"] = f"Group {chat_id}"
    return result


def message(message_id: int, date: int, chat_obj: JSON, sender: JSON, **content: Any) -> JSON:
    """A Message object with the given content fields (text, entities, photo, ...)."""
    return {"message_id": message_id, "date": date, "chat": chat_obj, "from": sender, **content}


def text_content(text: str) -> JSON:
    """The content fields of a text message, with entities where Telegram would add them."""
    content: JSON = {"text": text}
    entities = entities_for(text)
    if entities:
        content["entities"] = entities
    return content


def sticker_content(file_id: str, emoji: str) -> JSON:
    """The content fields of a static sticker message."""
    return {
        "sticker": {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": 1024,
        }
    }


def photo_content(file_id: str, size: int, caption: str | None) -> JSON:
    """The content fields of a photo message: a thumbnail and the full size, like Telegram sends."""
    sizes = [(90, 67, "t"), (1280, 960, "f")]
    content: JSON = {
        "photo": [
            {
                "file_id": f"{file_id}{tag}",
                "file_unique_id": f"u{file_id}{tag}",
                "width": width,
                "height": height,
                "file_size": size,
            }
            for width, height, tag in sizes
        ]
    }
    if caption:
        content["caption"] = caption
        entities = entities_for(caption)
        if entities:
            content["caption_entities"] = entities
    return content


def callback_query(query_id: str, sender: JSON, origin: JSON, data: str) -> JSON:
    """A CallbackQuery pressed on the button of the origin message."""
    return {
        "id": query_id,
        "from": sender,
        "message": origin,
        "chat_instance": f"ci{origin['chat']['id']}",
        "data": data,
    }


def update_kind(update: JSON) -> str:
    """The type of an update ("message", "callback_query", ...): its one key besides update_id."""
    kinds = [key for key in update if key != "update_id"]
    return kinds[0] if kinds else ""


def _queued(builder: Callable[Concatenate[Chats, P], JSON]) -> Callable[Concatenate[Chats, P], JSON]:
    """A send_* variant of an update builder: build the update, push it, return it."""

    def send(self: Chats, /, *args: P.args, **kwargs: P.kwargs) -> JSON:
        update = builder(self, *args, **kwargs)
        self.push_update(update)
        return update

    send.__doc__ = f"{(builder.__doc__ or '').rstrip('.')}; queued for getUpdates."
    return send


class Chats:
    """The chats and messages a fake Telegram knows, and builders of the updates citizens cause."""

    def __init__(self, bot: JSON, clock: Callable[[], float]) -> None:
        self.bot = bot
        self.clock = clock
        self.chats: dict[int | str, JSON] = {}
        self.messages: dict[tuple[int | str, int], JSON] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        """file_id -> (file_path, content) of everything getFile can serve."""
        self.open_queries: set[str] = set()
        """Callback queries not answered yet."""
        self._last_message_id: defaultdict[int | str, int] = defaultdict(int)
        self._last_update_id = 0
        self._query_count = 0

    def message(self, chat_id: int, text: str, *, user_id: int | None = None, language_code: str = "en",
                chat_type: str = "private", message_id: int | None = None, username: str | None = None,
                first_name: str = "Citizen") -> JSON:
        """A message update from a citizen, with entities for /commands and @mentions."""
        sender = _citizen(chat_id, chat_type, user_id, username, first_name, language_code)
        return self.numbered({"message": self._incoming(chat_id, chat_type, sender, message_id,
                                                        text_content(text))})

    def callback(self, chat_id: int, data: str, *, message_id: int, user_id: int | None = None,
                 language_code: str = "en", username: str | None = None,
                 first_name: str = "Citizen") -> JSON:
        """A callback_query update: the citizen pressed a button under message message_id."""
        # An unknown message comes as Telegram sends old ones: inaccessible, with date 0.
        origin = self.messages.get((chat_id, message_id)) or {
            "chat": self.chat(chat_id), "message_id": message_id, "date": 0}
        sender = _citizen(chat_id, origin["chat"]["type"], user_id, username, first_name, language_code)
        self._query_count += 1
        query_id = f"{self.bot['id']}{self._query_count:08d}"
        self.open_queries.add(query_id)
        return self.numbered({"callback_query": callback_query(query_id, sender, origin, data)})

    def sticker(self, chat_id: int, *, emoji: str = "👍", user_id: int | None = None,
                language_code: str = "en", chat_type: str = "private") -> JSON:
        """A message update carrying a sticker and no text."""
        sender = _citizen(chat_id, chat_type, user_id, None, "Citizen", language_code)
        content = sticker_content(f"sticker{len(self.files)}", emoji)
        return self.numbered({"message": self._incoming(chat_id, chat_type, sender, None, content)})

    def photo(self, chat_id: int, *, caption: str | None = None, data: bytes = b"\xff\xd8fake jpeg",
              user_id: int | None = None, language_code: str = "en", chat_type: str = "private") -> JSON:
        """A message update carrying a photo (downloadable through getFile) and an optional caption."""
        sender = _citizen(chat_id, chat_type, user_id, None, "Citizen", language_code)
        content = photo_content(f"photo{len(self.files)}", len(data), caption)
        for size in content["photo"]:
            self.files[size["file_id"]] = (f"photos/{size['file_id']}.jpg", data)
        return self.numbered({"message": self._incoming(chat_id, chat_type, sender, None, content)})

    def push_update(self, update: JSON) -> int:
        """Queue an update for the bot; the server decides how."""
        raise NotImplementedError

    send_message = _queued(message)
    send_callback = _queued(callback)
    send_sticker = _queued(sticker)
    send_photo = _queued(photo)

    def numbered(self, update: JSON) -> JSON:
        """The update with an update_id: its own if it has one, else the next in sequence."""
        if isinstance(update.get("update_id"), int):
            self._last_update_id = max(self._last_update_id, update["update_id"])
        else:
            self._last_update_id += 1
            update["update_id"] = self._last_update_id
        return update

    def forget_chat(self, chat_id: int | str) -> None:
        """Drop a chat and every message in it, as if it had never been seen (a long benchmark's memory)."""
        for number in range(1, self._last_message_id.pop(chat_id, 0) + 1):
            self.messages.pop((chat_id, number), None)
        self.chats.pop(chat_id, None)

    def chat(self, chat_id: int | str) -> JSON:
        """The Chat object for chat_id: the one seen before, or a plausible new one."""
        if chat_id in self.chats:
            return self.chats[chat_id]
        if isinstance(chat_id, str):  # "@channelname"
            numeric = -1_000_000_000_000 - zlib.crc32(chat_id.encode())
            return {"id": numeric, "type": "channel", "title": chat_id, "username": chat_id[1:]}
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Citizen"}
        return {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}

    def outgoing(self, chat_id: int | str, content: JSON, markup: JSON | None) -> JSON:
        """A new message from the bot, numbered in its chat and remembered for edits."""
        number = self._next_message_id(chat_id)
        sent = message(number, int(self.clock()), self.chat(chat_id), self.bot, **content)
        if markup and "inline_keyboard" in markup:  # Telegram echoes only inline keyboards
            sent["reply_markup"] = markup
        self.messages[(chat_id, number)] = sent
        return sent

    def _incoming(self, chat_id: int, chat_type: str, sender: JSON, message_id: int | None,
                  content: JSON) -> JSON:
        self.chats[chat_id] = chat(chat_id, chat_type, member=sender)
        number = self._next_message_id(chat_id, message_id)
        received = message(number, int(self.clock()), self.chats[chat_id], sender, **content)
        self.messages[(chat_id, number)] = received
        return received

    def _next_message_id(self, chat_id: int | str, wanted: int | None = None) -> int:
        # Ids count up per chat across both sides of the conversation, as in Telegram.
        self._last_message_id[chat_id] = max(self._last_message_id[chat_id] + 1, wanted or 0)
        return wanted or self._last_message_id[chat_id]


def _citizen(chat_id: int, chat_type: str, user_id: int | None, username: str | None, first_name: str,
             language_code: str) -> JSON:
    if user_id is None:
        user_id = chat_id if chat_type == "private" else DEFAULT_USER_ID
    return user(user_id, first_name=first_name, username=username, language_code=language_code)
