"""The message catalogues: complete in both languages and safe to fill in."""

from __future__ import annotations

import pytest

from handlers.i18n import LANGUAGES, Html, catalogue, language_of, placeholders, t


def test_every_language_has_every_message_with_the_same_placeholders() -> None:
    english = catalogue("en")
    for lang in LANGUAGES:
        messages = catalogue(lang)
        assert messages.keys() == english.keys(), lang
        for key, text in messages.items():
            assert placeholders(text) == placeholders(english[key]), (lang, key)


def test_values_are_escaped_unless_marked_as_html() -> None:
    assert (
        t("en", "unknown_command", command="<script>") == "I don't know the command /&lt;script&gt;. "
        "See /help for what I can do."
    )
    assert "<b>x</b>" in t("en", "category_title", category=Html("<b>x</b>"))


def test_unknown_language_falls_back_to_english() -> None:
    assert t("fr", "empty_text") == "Please type your question."


@pytest.mark.parametrize(
    ("code", "expected"),
    [("zh-hans", "zh"), ("zh_CN", "zh"), ("en-GB", "en"), ("de", None), ("", None), (None, None)],
)
def test_platform_language_codes_map_to_ours(code: str | None, expected: str | None) -> None:
    assert language_of(code) == expected
