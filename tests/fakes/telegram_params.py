"""Bot API request parameters: from the query and a JSON, form or multipart body, typed as Telegram does."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from tests.fakes.telegram_state import JSON, ApiError, Upload

_JSON_PARAMS = ("reply_markup", "reply_parameters", "link_preview_options", "allowed_updates",
                "commands", "scope", "entities", "caption_entities")


async def read_params(request: web.Request) -> JSON:
    """Parameters from the query string and a JSON, form or multipart body, as Telegram accepts."""
    params: JSON = dict(request.query)
    try:
        params.update(await _body_params(request))
    except (ValueError, HttpProcessingError) as error:  # undecodable bytes, a broken multipart body
        raise ApiError(400, f"Bad Request: can't parse request body: {error}") from None
    for name in _JSON_PARAMS:
        if isinstance(params.get(name), str):
            params[name] = _loads_or_400(params[name], name)
    return params


async def _body_params(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        body = await request.json(loads=_loads_or_400)
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON object expected")
        return body
    if not request.can_read_body:
        return {}
    return {name: Upload(value.filename, value.file.read(), value.content_type)
            if isinstance(value, web.FileField) else value
            for name, value in (await request.post()).items()}


def _loads_or_400(text: str | bytes, name: str = "request body") -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None


def int_param(params: JSON, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError(400, f"Bad Request: invalid {name} specified")
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def required_int_param(params: JSON, name: str) -> int:
    value = int_param(params, name)
    if value is None:
        raise ApiError(400, f"Bad Request: {name} is empty")
    return value


def str_param(params: JSON, name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None if value is None else json.dumps(value)


def bool_param(params: JSON, name: str) -> bool:
    return params.get(name) in (True, "true", "True", "1", 1)


def chat_id_param(params: JSON) -> int | str:
    value = params.get("chat_id")
    if isinstance(value, str) and value.startswith("@") and len(value) > 1:
        return value
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    try:
        return required_int_param(params, "chat_id")
    except ApiError:
        raise ApiError(400, "Bad Request: chat not found") from None


def reply_to_param(params: JSON) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, dict):
        return int_param(reply, "message_id")
    return int_param(params, "reply_to_message_id")
