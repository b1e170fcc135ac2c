"""What the web pages render: the reply HTML allow-list, chat entries, languages, and the SVG charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.web.pages import accepted_language, entry_html, entry_json, render
from bot.web.sanitise import Element, parse, safe_href, sanitise, to_json
from bot.web.transparency import CaseFigures, DepartmentCases, bar_chart, month_label, render_page
from storage.stats import Figures, Point, Series
from storage.web_chat import ChatEntry

ALLOWED_TAG = re.compile(
    r'</?(?:b|i|u|s|code|pre|blockquote)>|<a href="[^"<>]*" rel="noopener noreferrer">|</a>'
)


@pytest.mark.parametrize(
    ("given_html", "shown"),
    [
        ("<b>bold</b> & <i>it</i>", "<b>bold</b> &amp; <i>it</i>"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ('<img src=x onerror="alert(1)">', "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"),
        ('<a href="javascript:alert(1)">x</a>', "x"),
        ('<a href="https://e.gov/a?b=1&c=2" onclick="x">L</a>',
         '<a href="https://e.gov/a?b=1&amp;c=2" rel="noopener noreferrer">L</a>'),
        ('<a href="//evil.example/">x</a>', "x"),
        ("<strong>s</strong><em>e</em><del>d</del>", "<b>s</b><i>e</i><s>d</s>"),
        ('<span class="tg-spoiler">secret</span>', "secret"),
        ('<pre><code class="language-py">x = 1</code></pre>', "<pre><code>x = 1</code></pre>"),
        ("<b><i>x</b>y", "<b><i>x</i></b>y"),
        ("</b>stray", "&lt;/b&gt;stray"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("unclosed <b", "unclosed &lt;b"),
        ("<!-- note --><br/>", "&lt;!-- note --&gt;&lt;br/&gt;"),
        ("&lt;script&gt; is text", "&lt;script&gt; is text"),
        ("", ""),
    ],
)
def test_reply_html_keeps_the_allow_list_and_the_rest_is_text(given_html: str, shown: str) -> None:
    assert sanitise(given_html) == shown


def test_deep_nesting_is_bounded() -> None:
    html = "<b>" * 100 + "x" + "</b>" * 100
    depth, nodes = 0, parse(html)
    while nodes and isinstance(nodes[0], Element):
        depth, nodes = depth + 1, nodes[0].children
    assert depth <= 16
    assert "x" in sanitise(html)


PIECES = [*"<>/=\"' &;:!-?abiuscdeprhtf", "script", "href", "javascript", "<a ", "https://x"]


@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_no_markup_but_the_allow_list_ever_comes_out(text: str) -> None:
    out = sanitise(text)
    assert "<" not in ALLOWED_TAG.sub("", out)
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', out)).lower()


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://e.gov/x", True),
        ("HTTP://E.GOV", True),
        ("javascript:alert(1)", False),
        ("data:text/html,x", False),
        ("https://", False),
        ("https://e.gov/a b", False),
        ('https://e.gov/"onmouseover=x', False),
        (None, False),
        ("http://[::1", False),
    ],
)
def test_only_absolute_http_links_are_links(url: str | None, safe: bool) -> None:
    assert (safe_href(url) is not None) is safe


def test_the_script_gets_a_tree_never_html() -> None:
    assert to_json(parse('<b>x</b> <a href="https://e.gov">y</a>')) == [
        {"tag": "b", "children": ["x"]},
        " ",
        {"tag": "a", "children": ["y"], "href": "https://e.gov"},
    ]


def entry(role: str, text: str, **fields: object) -> ChatEntry:
    values: dict[str, object] = {
        "seq": 7, "role": role, "text": text, "kind": "message", "buttons": [], "document": None,
        "client_id": None, "created_at": datetime(2026, 11, 23, tzinfo=UTC),
    }
    values.update(fields)
    return ChatEntry(**values)  # type: ignore[arg-type]


def test_a_citizens_text_is_always_text_even_if_it_looks_like_allowed_markup() -> None:
    html = entry_html(entry("citizen", "<b>hi</b><script>x</script>"), lang="en", csrf="t")
    assert "&lt;b&gt;hi&lt;/b&gt;&lt;script&gt;" in html
    assert entry_json(entry("citizen", "<b>hi</b>"), lang="en")["nodes"] == ["<b>hi</b>"]


def test_buttons_become_submit_buttons_and_links_and_bad_urls_do_not() -> None:
    buttons = [
        [{"label": "Book <now>", "url": "https://e.gov/book"}],
        [{"label": "Evil", "url": "javascript:alert(1)"}, {"label": "👍", "payload": 'rate:1:1" onclick="x'}],
    ]
    html = entry_html(entry("bot", "answer", buttons=buttons), lang="en", csrf="tok")
    link = (
        '<a class="link-button" href="https://e.gov/book" rel="noopener noreferrer">Book &lt;now&gt;'
        '<span class="arrow" aria-hidden="true">↗</span></a>'  # a screen reader names it by its label alone
    )
    assert link in html
    assert "javascript:" not in html
    assert 'value="rate:1:1&quot; onclick=&quot;x"' in html
    assert '<input type="hidden" name="reply" value="7">' in html
    assert entry_json(entry("bot", "a", buttons=buttons), lang="en")["buttons"][1] == [
        {"label": "Evil"},
        {"label": "👍", "payload": 'rate:1:1" onclick="x'},
    ]


def test_an_entry_says_the_language_it_is_shown_in() -> None:
    assert entry_html(entry("bot", "你好"), lang="zh", csrf="t").startswith(
        '<div class="msg msg-bot" id="e7" data-seq="7" lang="zh-Hans">'
    )
    assert 'lang="en"' in entry_html(entry("citizen", "hello"), lang="en", csrf="t")


def test_an_empty_entry_is_not_shown() -> None:
    assert entry_html(entry("press", ""), lang="en", csrf="t") == ""


def test_templates_escape_every_value() -> None:
    page = render("transparency.html", tag='en"><script>', css="/x.css", title="<t>", site_name="s",
                  language_label="l", languages="", intro="&", total="", summary="", sections="", back="b")
    assert "<script>" not in page
    assert "&lt;t&gt;" in page
    assert "&amp;" in page


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("de-DE,en;q=0.5,zh;q=0.7", "zh"),
        ("en-GB", "en"),
        ("fr, de", None),
        ("zh;q=0, en;q=0.1", "en"),
        ("zh;q=abc", None),
        ("", None),
        (None, None),
        ("x" * 10_000, None),
    ],
)
def test_the_browsers_preferred_language_among_ours(header: str | None, language: str | None) -> None:
    assert accepted_language(header) == language


def series(*values: float | None, unit: str = "count") -> Series:
    points = tuple(Point(f"2026-{month:02d}", value) for month, value in enumerate(values, start=7))
    return Series("questions", unit, points, Point("2026-07", None))


def test_a_chart_draws_one_bar_per_shown_month_and_marks_withheld_ones() -> None:
    svg = bar_chart(series(12, None, 40), "en")
    assert svg.count('class="bar"') == 2
    assert svg.count('class="withheld"') == 1
    assert 'role="img"' in svg
    assert "<title" in svg
    assert "2026-08: fewer than 5 people" in svg
    assert ">40</text>" in svg


def test_percentages_are_drawn_against_a_hundred() -> None:
    svg = bar_chart(series(50.0, 100.0, unit="percent"), "zh")
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', svg)]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert ">100%<" in svg
    assert "7月" in svg


def test_month_labels_in_both_languages() -> None:
    assert month_label("2026-01", "en", with_year=True) == ("Jan", "2026")
    assert month_label("2026-12", "zh", with_year=False) == ("12月", "")
    assert month_label("garbage", "en", with_year=True) == ("garbage", "")


def test_the_page_renders_any_figures_source() -> None:
    figures = Figures(
        series=(series(5, 6), series(None, None, unit="percent")),
        since=datetime(2026, 7, 1, tzinfo=UTC),
        until=datetime(2026, 9, 1, tzinfo=UTC),
    )
    page = render_page(figures, "zh")
    assert '<html lang="zh-Hans">' in page
    assert page.count("<svg") == 2
    assert "<script" not in page


def test_each_table_is_named_by_a_caption_after_its_figure() -> None:
    figures = Figures(
        series=(series(5, 6), Series("answer_rate", "percent", (Point("2026-07", 50.0),), Point("", None))),
        since=datetime(2026, 7, 1, tzinfo=UTC),
        until=datetime(2026, 8, 1, tzinfo=UTC),
    )
    cases = CaseFigures(None, None, (DepartmentCases("PARKS", {"en": "Parks"}, 7.0),))
    page = render_page(figures, "en", cases)
    captions = re.findall(r"<table><caption>([^<]*)</caption><thead>", page)
    headings = re.findall(r'<h2 id="h-[a-z_]+">([^<]*)</h2>', page)
    assert captions == headings, "a screen reader's list of tables tells them apart"
    assert len(captions) == page.count("<table") == 3
