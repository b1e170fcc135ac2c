"""Bot API methods that hand the bot its updates: long polling (getUpdates) and the webhook."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import aiohttp

from tests.fakes import telegram_updates as build
from tests.fakes.telegram_params import bool_param, int_param, str_param
from tests.fakes.telegram_state import JSON, ApiError, Pending, Secret, ServerState, WebhookState

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_NOT_BY_DEFAULT = ("chat_member", "message_reaction", "message_reaction_count")


class UpdateMethods(ServerState):
    """getUpdates, setWebhook, deleteWebhook, getWebhookInfo, and the queue of updates behind them."""

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates queued for getUpdates that the bot has not confirmed yet."""
        return [pending.update for pending in self._queue]

    def push_update(self, update: JSON) -> int:
        """Queue an update for getUpdates; sets update_id in place unless it has one (a re-send)."""
        update_id = int(self.numbered(update)["update_id"])
        self._queue.append(Pending(update))
        self._bump()
        return update_id

    async def deliver(self, update: JSON, *, secret_token: str | Secret | None = Secret.REGISTERED,
                      timeout: float = 5.0) -> int:
        """POST an update to the registered webhook (secret None: no header) and return the status."""
        if not self.webhook.url:
            raise AssertionError("no webhook is set: the bot has not called setWebhook")
        self.numbered(update)
        secret = self.webhook.secret_token if secret_token is Secret.REGISTERED else secret_token
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                    session.post(self.webhook.url, json=update, headers=headers) as response):
            return response.status

    async def _api_get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook.url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = int_param(params, "offset", 0) or 0
        limit = min(max(int_param(params, "limit", 100) or 100, 1), 100)
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = [str(kind) for kind in params["allowed_updates"]]
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._bump()  # an earlier long poll still waiting learns it was superseded
        ready = await self._until(lambda: self._ready(generation, limit),
                                  max(int_param(params, "timeout", 0) or 0, 0))
        for pending in ready or []:
            pending.delivered = True
        return [pending.update for pending in ready or []]

    async def _api_set_webhook(self, params: JSON) -> bool:
        url = str_param(params, "url") or ""
        if url and not re.match(r"https?://[^/\s]+", url):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = str_param(params, "secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        drop = bool_param(params, "drop_pending_updates")
        # Set before the port is tried, as Telegram's answer comes at once: a test that saw the call sees it.
        self.webhook = webhook = WebhookState(url, secret, allowed if isinstance(allowed, list) else None,
                                              drop, int_param(params, "max_connections", 40) or 40
                                              ) if url else WebhookState()
        if url:
            webhook.reachable = await _takes_connections(url)
            self.webhooks_set.append(webhook)
        if drop:
            self._queue.clear()
        return True

    async def _api_delete_webhook(self, params: JSON) -> bool:
        self.webhook = WebhookState()
        if bool_param(params, "drop_pending_updates"):
            self._queue.clear()
        return True

    async def _api_get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {"url": self.webhook.url, "has_custom_certificate": False,
                      "pending_update_count": len(self._queue)}
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    def _ready(self, generation: int, limit: int) -> list[Pending] | None:
        if generation != self._poll_generation:
            raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only "
                                "one bot instance is running")
        self._queue = [pending for pending in self._queue if self._wanted(pending.update)]
        ready = sorted(self._queue, key=lambda pending: int(pending.update["update_id"]))[:limit]
        return ready if ready or self._closing else None

    def _wanted(self, update: JSON) -> bool:
        kind = build.update_kind(update)
        return kind in self._allowed_updates if self._allowed_updates else kind not in _NOT_BY_DEFAULT

    def _confirm(self, offset: int) -> None:
        """Forget updates the bot confirmed; a re-sent duplicate not yet delivered stays queued."""
        if offset < 0:
            self._queue = self._queue[offset:]
        else:
            self._queue = [pending for pending in self._queue
                           if not pending.delivered or int(pending.update["update_id"]) >= offset]


async def _takes_connections(url: str) -> bool:
    """Whether a TCP connection to the URL's host and port is accepted (a server still starting that
    listens already holds it until it serves)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
