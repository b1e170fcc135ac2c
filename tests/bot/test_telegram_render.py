"""Replies rendered for Telegram: long HTML split into valid messages, buttons into inline keyboards."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.request._requestparameter import RequestParameter

from bot.channels.telegram_render import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    fits_caption,
    keyboard,
    keyboard_json,
    plain,
    shown_length,
    split_html,
)
from handlers.types import Button
from tests.fakes.telegram_server import plain_text


def shown(part: str) -> str:
    """What Telegram shows for the part; fails the test (ApiError) if Telegram would refuse the HTML."""
    return plain_text(part, "HTML")


def assert_valid_parts(parts: list[str], limit: int = MESSAGE_LIMIT) -> None:
    for part in parts:
        assert 0 < shown_length(part) <= limit
        assert shown(part).strip()


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def paragraph(word: str, words: int) -> str:
    return " ".join([word] * words)


def test_text_that_fits_comes_back_unchanged() -> None:
    text = "<b>Opening hours</b>\n\nMonday to Friday, 9&amp;5. <a href=\"https://gov.example/x?a=1&amp;b=2\">More</a>"
    assert split_html(text) == [text]


def test_text_that_shows_nothing_gives_no_parts() -> None:
    assert split_html("") == []
    assert split_html(" \n <b> </b>") == []


def test_long_text_is_split_at_paragraphs() -> None:
    paragraphs = [paragraph(f"p{n}", 500) for n in range(4)]  # 1,499 characters each
    parts = split_html("\n\n".join(paragraphs))
    assert_valid_parts(parts)
    assert [shown(part) for part in parts] == [
        "\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]


def test_without_paragraphs_lines_are_preferred_to_words() -> None:
    lines = [paragraph(f"l{n}", 150) for n in range(12)]  # about 450 characters each
    parts = split_html("\n".join(lines))
    assert_valid_parts(parts)
    assert len(parts) == 2
    assert shown(parts[0]).endswith(lines[8])
    assert shown(parts[1]).startswith(lines[9])


def test_without_lines_words_are_kept_whole() -> None:
    text = paragraph("citizen", 1000)  # 7,999 characters
    parts = split_html(text)
    assert_valid_parts(parts)
    assert all(set(shown(part).split()) == {"citizen"} for part in parts)
    assert squeeze("".join(shown(part) for part in parts)) == squeeze(text)


def test_bold_text_crossing_a_cut_is_closed_and_reopened() -> None:
    text = paragraph("a", 1500) + " <b>" + paragraph("bold", 1500) + "</b> end"
    parts = split_html(text)
    assert_valid_parts(parts)
    assert len(parts) == 3
    assert parts[0].endswith("</b>")
    assert (parts[1][:3], parts[1][-4:]) == ("<b>", "</b>")
    assert (parts[2][:3], parts[2][-8:]) == ("<b>", "</b> end")
    assert squeeze("".join(shown(part) for part in parts)) == squeeze(shown(text))


def test_nested_tags_and_link_attributes_are_reopened_in_order() -> None:
    link = '<a href="https://gov.example/a?x=1&amp;y=2">'
    text = f"<b><i>{link}" + paragraph("link", 1200) + "</a></i></b>"
    parts = split_html(text)
    assert_valid_parts(parts)
    assert len(parts) == 2
    assert parts[0].endswith("</a></i></b>")
    assert parts[1].startswith(f"<b><i>{link}")


def test_entities_count_as_one_character_and_are_never_cut() -> None:
    exactly = "&amp;" * MESSAGE_LIMIT
    assert split_html(exactly) == [exactly]
    parts = split_html(exactly + "&lt;")
    assert_valid_parts(parts)
    assert [shown(part) for part in parts] == ["&" * MESSAGE_LIMIT, "<"]


def test_chinese_without_spaces_breaks_after_sentence_punctuation() -> None:
    sentence = "请携带身份证和户口簿到户籍窗口办理。"  # 18 characters
    text = sentence * 600  # 10,800 characters, no spaces
    parts = split_html(text)
    assert_valid_parts(parts)
    assert len(parts) == 3
    assert all(shown(part).endswith("。") for part in parts)
    assert "".join(shown(part) for part in parts) == text


def test_chinese_without_any_break_is_cut_at_the_limit() -> None:
    text = "户" * 10_000
    parts = split_html(text)
    assert [len(part) for part in parts] == [MESSAGE_LIMIT, MESSAGE_LIMIT, 10_000 - 2 * MESSAGE_LIMIT]
    assert "".join(parts) == text


def test_a_single_ten_thousand_character_word_is_cut_into_full_parts() -> None:
    word = "x" * 10_000
    parts = split_html(word)
    assert [len(part) for part in parts] == [4096, 4096, 1808]
    assert "".join(parts) == word


def test_characters_outside_the_basic_plane_count_twice() -> None:
    text = "😀" * 3000  # 6,000 UTF-16 code units
    parts = split_html(text)
    assert [len(part) for part in parts] == [2048, 952]
    assert shown_length(parts[0]) == MESSAGE_LIMIT


def test_a_tag_opening_at_a_cut_moves_to_the_next_part_whole() -> None:
    text = "x" * 10 + "<b>" + "y" * 10 + "</b>"
    parts = split_html(text, limit=10)
    assert parts == ["x" * 10, "<b>" + "y" * 10 + "</b>"]


def test_unbalanced_html_does_not_crash_and_every_part_is_closed() -> None:
    parts = split_html("<b>" + "z" * 30 + "</i>", limit=10)
    assert parts[0] == "<b>" + "z" * 10 + "</b>"
    assert all(part.startswith("<b>") and part.count("<b>") == part.count("</b>") for part in parts)


def test_a_limit_that_cannot_hold_a_character_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_html("abc", limit=1)


def test_plain_text_is_what_telegram_shows() -> None:
    html = '<b>Saved</b> &amp; <a href="https://gov.example/?a=1&amp;b=2">sent</a> &lt;3'
    assert plain(html) == "Saved & sent <3"


def test_caption_fit_is_measured_on_the_shown_text() -> None:
    assert fits_caption("<b>" + "&amp;" * CAPTION_LIMIT + "</b>")
    assert not fits_caption("a" * (CAPTION_LIMIT + 1))


_WORDS = st.sampled_from(["tax", "ID", "户籍", "证件", "&amp;", "&lt;", "😀", "a" * 40, "。"])
_SEPARATORS = st.sampled_from([" ", "\n", "\n\n", "", "  "])


@st.composite
def telegram_html(draw: st.DrawFn) -> str:
    """Well-formed HTML of the kind the dialogue produces, with tags around random runs of words."""
    pieces = []
    for _ in range(draw(st.integers(1, 40))):
        run = "".join(draw(_WORDS) + draw(_SEPARATORS) for _ in range(draw(st.integers(1, 6))))
        tag = draw(st.sampled_from([None, "b", "i", "code", "a"]))
        if tag == "a":
            run = f'<a href="https://gov.example/?q=1&amp;p=2">{run}</a>'
        elif tag is not None:
            run = f"<{tag}>{run}</{tag}>"
        pieces.append(run)
    return "".join(pieces)


@settings(deadline=None)  # many tiny parts on a loaded CI machine can take a while; the time is not the point
@given(telegram_html(), st.integers(min_value=2, max_value=120))
def test_every_split_is_valid_html_within_the_limit_and_loses_no_text(text: str, limit: int) -> None:
    parts = split_html(text, limit=limit)
    assert_valid_parts(parts, limit)
    assert squeeze("".join(shown(part) for part in parts)) == squeeze(shown(text))


def test_buttons_become_an_inline_keyboard_row_by_row() -> None:
    markup = keyboard((
        (Button("👍", payload="rate:42:up"), Button("👎", payload="rate:42:down")),
        (Button("Website", url="https://gov.example/tax"),),
    ))
    assert markup == InlineKeyboardMarkup([
        [InlineKeyboardButton("👍", callback_data="rate:42:up"),
         InlineKeyboardButton("👎", callback_data="rate:42:down")],
        [InlineKeyboardButton("Website", url="https://gov.example/tax")],
    ])


def test_no_buttons_means_no_keyboard() -> None:
    assert keyboard(()) is None
    assert keyboard(((),)) is None
    assert keyboard_json(((),)) is None


def test_a_keyboard_as_json_is_what_python_telegram_bot_would_send_for_it() -> None:
    rows = ((Button("是", payload="pick:7:1"), Button("Website", url="https://gov.example/tax")),)
    markup = keyboard(rows)
    assert markup is not None
    sent = RequestParameter.from_input("reply_markup", markup).json_value
    assert keyboard_json(rows) == sent
    assert json.loads(sent or "") == {"inline_keyboard": [[{"text": "是", "callback_data": "pick:7:1"},
                                                            {"text": "Website", "url": "https://gov.example/tax"}]]}


def test_a_payload_of_the_maximum_size_fits_telegrams_callback_data() -> None:
    payload = "户" * 21 + "x"  # 64 bytes in UTF-8
    markup = keyboard(((Button("Pick", payload=payload),),))
    assert markup is not None
    assert markup.inline_keyboard[0][0].callback_data == payload


@settings(deadline=None)
@given(telegram_html())
def test_a_text_that_fits_comes_back_whole_unless_it_shows_nothing(text: str) -> None:
    expected = [text] if shown(text).strip() else []
    assert split_html(text, limit=max(2, 2 * len(text))) == expected  # the shortcut for short replies
    assert split_html(text, limit=max(2, shown_length(text))) == expected  # measured unit by unit


@pytest.mark.parametrize("text", ["", "  \n ", "<b> </b>\n<i></i>", "&#32;&#10;"])
def test_a_short_text_that_shows_nothing_is_not_sent(text: str) -> None:
    assert split_html(text) == []
