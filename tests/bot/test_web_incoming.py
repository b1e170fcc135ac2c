"""What a chat page may send: a field no database stores is a 400, never a failure at the database."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.web.guard import Problem
from bot.web.incoming import parse_message


@pytest.mark.parametrize(
    "fields",
    [
        {"payload": "\ud800"},  # half a surrogate pair: UTF-8 cannot encode it
        {"payload": "menu:1\x00"},
        {"payload": "menu:1", "label": "\ud800"},
        {"payload": "menu:1", "label": "Opening hours\x00"},  # PostgreSQL refuses NUL in text
    ],
)
def test_a_payload_or_label_no_database_stores_is_a_bad_request(fields: dict[str, str]) -> None:
    with pytest.raises(Problem) as refused:
        parse_message("application/json", json.dumps(fields).encode())
    assert refused.value.status == 400


def test_a_form_with_nul_in_its_label_is_a_bad_request() -> None:
    body = urlencode({"payload": "menu:1", "label": "a\x00", "csrf": "token"}).encode()
    with pytest.raises(Problem) as refused:
        parse_message("application/x-www-form-urlencoded", body)
    assert refused.value.status == 400


def test_a_pressed_button_keeps_its_label() -> None:
    body = urlencode({"payload": "menu:1", "label": "办事时间", "csrf": "t"}).encode()
    message, token = parse_message("application/x-www-form-urlencoded", body)
    assert (message.payload, message.label, token) == ("menu:1", "办事时间", "t")
