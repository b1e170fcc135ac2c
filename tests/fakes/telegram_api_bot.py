"""Bot API methods about the bot itself: getMe, its command menus, close and logOut."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.telegram_params import str_param
from tests.fakes.telegram_state import JSON, ApiError, ServerState


class BotMethods(ServerState):
    """getMe, setMyCommands, getMyCommands, deleteMyCommands, close, logOut."""

    def commands(self, *, language_code: str = "", scope: JSON | None = None) -> list[JSON]:
        """The bot commands set for a scope and language, as getMyCommands would return them."""
        return self._commands.get(_commands_key(scope, language_code), [])

    async def _api_get_me(self, params: JSON) -> JSON:
        return self.bot

    async def _api_set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}",
                                                                 str(command.get("command"))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[_commands_key(params.get("scope"), str_param(params, "language_code"))] = commands
        return True

    async def _api_get_my_commands(self, params: JSON) -> list[JSON]:
        return self.commands(language_code=str_param(params, "language_code") or "",
                             scope=params.get("scope"))

    async def _api_delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(_commands_key(params.get("scope"), str_param(params, "language_code")), None)
        return True

    async def _api_close(self, params: JSON) -> bool:
        return True

    async def _api_log_out(self, params: JSON) -> bool:
        return True


def _commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""
