"""What the fake Telegram server records and remembers, and how its waiters learn that something changed."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.fakes import telegram_updates as build

JSON = dict[str, Any]
T = TypeVar("T")


class Secret(enum.Enum):
    """Marker for deliver(): send the secret token the bot registered."""

    REGISTERED = enum.auto()


class ApiError(Exception):
    """An error the fake answers with, in Telegram's words."""

    def __init__(self, status: int, description: str, retry_after: int | None = None, *,
                 migrate_to_chat_id: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def body(self) -> JSON:
        """The JSON body Telegram returns for this error."""
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        if self.migrate_to_chat_id is not None:
            body["parameters"] = {"migrate_to_chat_id": self.migrate_to_chat_id}
        return body


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded in a multipart request."""

    filename: str
    data: bytes
    content_type: str


@dataclass(eq=False)
class Call:
    """One request to the fake; status is 0 while it is still being answered."""

    method: str
    params: JSON
    time: float
    status: int = 0


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent or edited (sendMessage, sendDocument, editMessageText, ...)."""

    method: str
    chat_id: int | str
    message_id: int
    time: float
    text: str | None = None
    plain_text: str | None = None
    parse_mode: str | None = None
    reply_markup: JSON | None = None
    reply_to: int | None = None
    link_preview_options: JSON | None = None
    document_name: str | None = None
    document_bytes: bytes | None = None
    thread_id: int | None = None
    """message_thread_id: the forum topic it was sent into."""

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row after row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def payloads(self) -> list[str]:
        """The callback data of the buttons, in order."""
        return [button["callback_data"] for button in self.buttons if "callback_data" in button]


@dataclass
class WebhookState:
    """The webhook the bot registered; url is empty while it polls."""

    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    drop_pending_updates: bool = False
    max_connections: int = 40
    reachable: bool = False
    """Whether the URL's port took a connection as it was set: Telegram connects as soon as updates wait."""


@dataclass
class Fault:
    status: int
    description: str
    retry_after: int | None
    times: int


@dataclass
class Pending:
    update: JSON
    delivered: bool = False


class ServerState(build.Chats):
    """The state every group of Bot API methods works on; the server adds HTTP and the test-facing calls."""

    def __init__(self, bot: JSON, clock: Callable[[], float]) -> None:
        super().__init__(bot, clock)
        self.sent: list[SentMessage] = []
        self.calls: list[Call] = []
        self.webhook = WebhookState()
        self.webhooks_set: list[WebhookState] = []
        """Every webhook set, in order (the bot's processes each set it)."""
        self._queue: list[Pending] = []
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._changed = asyncio.Event()
        self._closing = False
        self.upgraded: dict[int | str, int] = {}
        """Groups upgraded to a supergroup: old chat id -> the supergroup's."""

    def upgrade_group(self, group_id: int, supergroup_id: int) -> None:
        """The group becomes a supergroup with a new id; the bot can no longer write to the old one."""
        self.upgraded[group_id] = supergroup_id
        self.chats[supergroup_id] = {"id": supergroup_id, "type": "supergroup",
                                     "title": self.chat(group_id).get("title", f"Group {supergroup_id}")}

    def _writable(self, chat_id: int | str) -> None:
        """Refuse, as Telegram does, to write to a group that became a supergroup, naming the new id."""
        if chat_id in self.upgraded:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to_chat_id=self.upgraded[chat_id])

    def _bump(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, probe: Callable[[], T | None], seconds: float) -> T | None:
        """Wait until probe() gives a result (re-checked on every change) or the timeout passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            changed = self._changed
            found = probe()
            remaining = deadline - loop.time()
            if found is not None or remaining <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
