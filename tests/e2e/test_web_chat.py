"""The web chat in headless Chromium against the real server, used as a citizen would: keys and clicks."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
import pytest_asyncio
from aiohttp import web

from bot.app import create_app
from bot.channels.web import WEB, WebChannel
from bot.config import load_settings
from bot.web.identity import COOKIE
from handlers.dialogue import MAX_TEXT
from handlers.i18n import t
from handlers.types import Reply
from storage import db
from storage.knowledge import KnowledgeRepository
from tests.bot.web_kb import HOSTILE_QUESTION, web_kb
from tests.conftest import IN_CI, REPO

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route

# One browser for the module (starting Chromium is the slow part); every test gets a new server and page.
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
HAS_CHROMIUM = CHROMIUM.exists()
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]
TIMEOUT_MS = 10_000
MAX_BACKOFF_MS = 15_000
"""The page's longest pause between tries (chat.js MAX_BACKOFF)."""


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; in CI (CI=true) a missing browser is a failure, not a pass."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright's bundled driver."""
    if not HAS_CHROMIUM:
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield browser
        await browser.close()


@dataclass
class Govbot:
    """govbot serving on 127.0.0.1 with a SQLite database holding the test knowledge base."""

    app: web.Application
    url: str

    @property
    def channel(self) -> WebChannel:
        return self.app[WEB]


@pytest_asyncio.fixture(loop_scope="module")
async def govbot(tmp_path: Path) -> AsyncIterator[Govbot]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}"
    engine = db.create_engine(database_url)  # a new file, made and migrated here as the test suite does
    try:
        await db.upgrade(engine)
        async with db.sessionmaker(engine).begin() as session:
            await KnowledgeRepository(session).apply_import(web_kb(), "test")
    finally:
        await engine.dispose()
    app = create_app(load_settings(database_url=database_url))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listening).start()
    yield Govbot(app, f"http://127.0.0.1:{listening.getsockname()[1]}")
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def page(chromium: Browser, govbot: Govbot) -> AsyncIterator[Page]:
    context = await chromium.new_context(viewport={"width": 1000, "height": 800}, locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    await page.goto(govbot.url + "/")
    yield page
    await context.close()
    assert errors == [], "the page had script errors or CSP violations"


@pytest_asyncio.fixture(loop_scope="module")
async def plain_page(chromium: Browser, govbot: Govbot) -> AsyncIterator[Page]:
    """The chat in a browser with JavaScript turned off, set to Chinese: every message is a form post."""
    context = await chromium.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 800}, locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN"}, reduced_motion="reduce",  # no smooth scrolling
    )
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(govbot.url + "/")
    yield page
    await context.close()


async def send_form(page: Page, text: str) -> None:
    await page.locator("#message").fill(text)
    async with page.expect_navigation():
        await page.locator("button.send").click()


async def ask(page: Page, text: str) -> None:
    """Type a question and send it with Enter, as a keyboard user does."""
    await page.locator("#message").fill(text)
    await page.locator("#message").press("Enter")


async def test_a_question_gets_its_answer_with_a_link_and_rating_buttons(page: Page) -> None:
    await ask(page, "how do I renew my identity card")
    answer = page.locator(".msg-bot").last
    await answer.locator(".bubble", has_text="registry office").wait_for()
    link = answer.get_by_role("link", name="Book online", exact=True)  # not "Book online north east arrow"
    assert await link.get_attribute("href") == "https://registry.example.gov/id"
    assert await link.get_attribute("target") is None, "opens here, so nothing to say about where"
    assert "↗" in await link.inner_text(), "still marked for the eye as going to another site"
    assert await answer.get_by_role("button", name="👍 Helpful").is_visible()
    mine = page.locator(".msg-citizen .bubble").last
    assert await mine.text_content() == "You: how do I renew my identity card"
    assert await page.locator("#message").evaluate("e => e === document.activeElement")


async def test_a_link_button_is_named_by_its_label_alone_after_a_reload(page: Page) -> None:
    await ask(page, "how do I renew my identity card")
    await page.get_by_text("registry office").wait_for()
    await page.reload()
    link = page.locator(".msg-bot").last.get_by_role("link", name="Book online", exact=True)
    assert "↗" in await link.inner_text()


async def test_did_you_mean_and_rating_work_from_the_keyboard(page: Page) -> None:
    await ask(page, "identity card")
    await page.get_by_text("Did you mean one of these?").wait_for()
    choice = page.locator(".msg-bot").last.get_by_role("button").first
    label = await choice.inner_text()
    await choice.focus()
    assert await choice.evaluate("e => getComputedStyle(e).outlineStyle") != "none", "focus is visible"
    await page.keyboard.press("Enter")
    await page.locator(".msg-citizen .bubble", has_text=label).wait_for()
    answer = page.locator(".msg-bot").last
    await answer.get_by_role("button", name="👍 Helpful").wait_for()
    await page.locator("#message").focus()
    await page.keyboard.press("Shift+Tab")  # back from the message box to the last button: 👎
    await page.keyboard.press("Shift+Tab")  # and to 👍
    assert await page.evaluate("document.activeElement.textContent") == "👍 Helpful"
    await page.keyboard.press("Space")
    await page.get_by_text("Thank you for your feedback!").wait_for()


async def test_switching_language_changes_the_page_and_the_answers(page: Page) -> None:
    assert await page.get_attribute("html", "lang") == "en"
    await page.get_by_role("button", name="中文").click()
    await page.get_by_text("已切换为简体中文。").wait_for()
    assert await page.get_attribute("html", "lang") == "zh-Hans"
    assert await page.locator("label[for=message]").inner_text() == "您的问题"
    assert await page.get_by_role("button", name="中文").get_attribute("aria-pressed") == "true"
    async with page.expect_request("**/api/chat/messages") as sent:
        await ask(page, "身份证到期了怎么换领")
    assert json.loads((await sent.value).post_data or "")["lang"] == "zh", "messages keep saying our code"
    await page.get_by_text("工本费20元").wait_for()
    await page.reload()
    assert await page.get_attribute("html", "lang") == "zh-Hans"


async def test_each_entry_is_read_in_the_language_it_was_shown_in(page: Page) -> None:
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    await page.get_by_role("button", name="中文").click()
    await page.get_by_text("已切换为简体中文。").wait_for()
    await page.locator(".pending").wait_for(state="detached")
    shown_in = "entries => entries.map(entry => entry.lang)"
    # the greeting, the question, its answer, the press of 中文 (labelled in English when sent), the reply
    assert await page.locator("#log .msg").evaluate_all(shown_in) == ["en", "en", "en", "en", "zh-Hans"]
    await page.reload()  # the language of an entry is not stored: shown again, it is in the page's
    assert set(await page.locator("#log .msg").evaluate_all(shown_in)) == {"zh-Hans"}


async def test_a_reply_that_news_brings_before_the_switch_is_answered_is_in_the_new_language(
    page: Page,
) -> None:
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    reply = page.locator(".msg-bot", has_text="已切换为简体中文。")

    async def answer_after_the_news(route: Route) -> None:
        answered = await route.fetch()  # handled by the server, whose news then brings the reply first
        await reply.wait_for()
        await route.fulfill(response=answered)

    await page.route("**/api/chat/messages", answer_after_the_news, times=1)
    await page.get_by_role("button", name="中文").click()
    await page.locator(".pending").wait_for(state="detached")
    assert await reply.get_attribute("lang") == "zh-Hans"
    assert await reply.locator(".sr-only").text_content() == f"{t('zh', 'web_bot')} "
    assert await page.get_attribute("html", "lang") == "zh-Hans"


async def test_escalating_and_a_case_update_arriving_later(page: Page, govbot: Govbot) -> None:
    await ask(page, "What time does the moon festival fireworks show start?")
    department = page.get_by_role("button", name=str(t("en", "btn_talk_department")))
    await department.wait_for()
    before = await page.locator(".msg-bot").count()
    await department.click()
    await page.locator(".msg-bot").nth(before).wait_for()
    assert str(t("en", "error")) not in await page.locator(".msg-bot").last.inner_text()
    cookie = next(c for c in await page.context.cookies() if c["name"] == COOKIE)
    identity = govbot.channel.signer.identity(cookie["value"])
    assert identity is not None
    await govbot.channel.send(identity, [Reply("Case <b>TR-2026-000123</b> is now <i>in progress</i>.")])
    update = page.locator(".msg-bot .bubble", has_text="TR-2026-000123")
    await update.wait_for()
    assert await update.locator("b").inner_text() == "TR-2026-000123"


async def test_after_a_reload_the_history_is_there(page: Page) -> None:
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    await page.reload()
    assert await page.locator(".msg-citizen .bubble").last.text_content() == "You: pay property tax"
    assert "Pay property tax online" in await page.locator(".msg-bot .bubble").last.inner_text()
    await ask(page, "how do I renew my identity card")
    await page.get_by_text("registry office").wait_for()
    assert await page.locator(".msg").count() == 4


async def test_after_erasing_the_page_is_empty_says_so_and_nothing_of_it_comes_back(page: Page) -> None:
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    await ask(page, "/forget")
    await page.get_by_role("button", name=str(t("en", "btn_forget_yes"))).click()
    await page.get_by_text(str(t("en", "forget_done"))).wait_for()
    assert await page.locator(".msg").count() == 0
    await page.reload()  # a new conversation: only the greeting every empty log starts with
    assert await page.locator('.msg:not([data-seq="0"])').count() == 0
    await ask(page, "how do I renew my identity card")
    await page.get_by_text("registry office").wait_for()
    assert await page.locator('.msg:not([data-seq="0"])').count() == 2
    assert await page.get_by_text("property tax").count() == 0


async def test_after_erasing_from_the_keyboard_the_focus_is_on_the_message_box(page: Page) -> None:
    await ask(page, "/forget")
    yes = page.get_by_role("button", name=str(t("en", "btn_forget_yes")))
    await yes.focus()
    await page.keyboard.press("Enter")  # the button goes with the log it erased
    await page.get_by_text(str(t("en", "forget_done"))).wait_for()
    assert await page.locator("#message").evaluate("e => e === document.activeElement"), "not lost to <body>"


async def listen_to_the_log(page: Page) -> None:
    """Note what is added to the log, the live region a screen reader announces additions of."""
    await page.locator("#log[aria-live=polite][aria-relevant=additions]").evaluate(
        """log => {
            window.announced = [];
            new MutationObserver(changes => changes.forEach(change => change.addedNodes.forEach(
                node => window.announced.push(node.textContent)
            ))).observe(log, {childList: true, subtree: true});
        }"""
    )


async def test_a_question_and_its_answer_are_each_announced_once(page: Page) -> None:
    await listen_to_the_log(page)
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    await page.locator(".pending").wait_for(state="detached")
    announced = await page.evaluate("window.announced")
    assert [text.count("pay property tax") for text in announced] == [1, 0], announced
    assert "Pay property tax online" in announced[1]


async def test_switching_language_announces_the_reply_not_the_whole_log_again(page: Page) -> None:
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    await listen_to_the_log(page)
    await page.get_by_role("button", name="中文").click()
    await page.get_by_text("已切换为简体中文。").wait_for()
    await page.locator(".pending").wait_for(state="detached")
    announced = await page.evaluate("window.announced")
    assert len(announced) == 2, announced
    assert "已切换为简体中文。" in announced[1]


async def refuse_messages(
    page: Page, status: int, problem: str, *, times: int, retry_after: str | None = "1"
) -> list[str]:
    """The server answers the first ``times`` posted messages with ``status`` and Retry-After (unless None),
    then takes them; the list fills with the refused requests' addresses."""
    refused: list[str] = []
    headers = {} if retry_after is None else {"Retry-After": retry_after}

    async def refuse(route: Route) -> None:
        if len(refused) >= times:
            await route.continue_()
            return
        refused.append(route.request.url)
        await route.fulfill(status=status, headers=headers, content_type="application/problem+json",
                            body=problem)

    await page.route("**/api/chat/messages", refuse)
    return refused


async def test_a_refused_message_is_explained_in_the_pages_language_and_sent_again(page: Page) -> None:
    await page.get_by_role("button", name="中文").click()
    await page.get_by_text("已切换为简体中文。").wait_for()
    problem = '{"title": "Too Many Requests", "detail": "too many requests from this address"}'
    refused = await refuse_messages(page, 429, problem, times=1)
    await ask(page, "身份证到期了怎么换领")
    await page.get_by_text(str(t("zh", "web_too_fast"))).wait_for()
    await page.get_by_text("工本费20元").wait_for()
    assert len(refused) == 1


async def test_a_message_the_server_rejects_is_given_back_to_be_sent_again(page: Page) -> None:
    await refuse_messages(page, 400, '{"title": "Bad Request"}', times=1)
    await ask(page, "pay property tax")
    await page.get_by_text(str(t("en", "web_rejected"))).wait_for()
    assert await page.locator("#message").input_value() == "pay property tax", "the citizen's words are kept"
    await page.locator("#message").press("Enter")
    await page.get_by_text("Pay property tax online").wait_for()


async def test_a_message_written_offline_is_sent_when_the_connection_is_back(page: Page) -> None:
    await page.context.set_offline(True)
    await ask(page, "pay property tax")
    await page.locator(".pending", has_text="pay property tax").wait_for()
    await page.get_by_text("Connection lost").wait_for()
    await page.context.set_offline(False)
    await page.get_by_text("Pay property tax online").wait_for()
    assert await page.locator(".pending").count() == 0
    assert await page.locator(".msg-citizen", has_text="pay property tax").count() == 1


async def test_a_script_in_a_message_or_an_answer_is_shown_as_text(page: Page) -> None:
    await page.evaluate("window.injected = false")
    await ask(page, "<script>window.injected = true</script><img src=x onerror=\"window.injected=true\">")
    await ask(page, HOSTILE_QUESTION)
    await page.get_by_text("<script>alert('kb')</script>", exact=False).wait_for()
    assert "<img src=x" in await page.locator(".msg-citizen .bubble").first.inner_text()
    await page.reload()
    await page.get_by_text("<script>alert('kb')</script>", exact=False).wait_for()
    assert await page.evaluate("window.injected === undefined || window.injected === false")
    assert await page.locator("#log script, #log img").count() == 0
    assert await page.locator("#log a[href^='javascript']").count() == 0
    assert await page.locator("#log b", has_text="Parking office").count() == 1


async def test_screenshots_of_the_chat_on_a_desktop_and_a_phone(page: Page) -> None:
    await ask(page, "how do I renew my identity card")
    await page.get_by_text("registry office").wait_for()
    await ask(page, "identity card")
    await page.get_by_text("Did you mean one of these?").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "web-chat.png")
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await page.evaluate("document.documentElement.scrollWidth <= 375"), "no sideways scrolling"
    await page.locator("#log").evaluate("log => { log.style.scrollBehavior = 'auto'; log.scrollTop = 1e9; }")
    await page.screenshot(path=ARTIFACTS / "web-chat-phone.png")
    assert (ARTIFACTS / "web-chat.png").stat().st_size > 10_000


async def test_at_400_percent_zoom_the_newest_answer_is_readable_and_the_message_box_reachable(
    page: Page,
) -> None:
    await page.set_viewport_size({"width": 320, "height": 256})  # a 1280×1024 screen zoomed to 400%
    await ask(page, "pay property tax")
    await ask(page, "how do I renew my identity card")
    answer = page.locator(".msg-bot .bubble", has_text="registry office")
    await answer.wait_for()
    await page.locator(".pending").wait_for(state="detached")
    assert await page.evaluate("document.documentElement.scrollWidth <= 320"), "no sideways scrolling"
    shown = await answer.evaluate(
        """bubble => {
            const box = bubble.getBoundingClientRect(), log = bubble.closest("#log").getBoundingClientRect();
            const top = Math.max(box.top, log.top, 0), bottom = Math.min(box.bottom, log.bottom, innerHeight);
            return {top: box.top, height: box.height, visible: bottom - top};
        }"""
    )
    assert -1 <= shown["top"] < 256, f"the newest answer's start is in view: {shown}"
    assert shown["visible"] >= min(shown["height"], 256 / 2) - 1, f"more of it than two lines: {shown}"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "web-chat-zoom-400.png")
    await page.keyboard.press("Tab")  # from the message box, which keeps the focus, to the send button
    await page.keyboard.press("Shift+Tab")
    box = await page.locator("#message").bounding_box()
    assert box is not None
    assert box["y"] >= 0, "the focused message box is in view"
    assert box["y"] + box["height"] <= 256, "the focused message box is in view"
    await ask(page, "pay property tax")
    await page.locator(".msg-bot .bubble").nth(-1).filter(has_text="Pay property tax online").wait_for()


async def test_at_400_percent_zoom_a_catch_up_with_nothing_new_leaves_the_page_where_it_is(
    page: Page,
) -> None:
    await page.set_viewport_size({"width": 320, "height": 256})
    nothing_new = {"entries": [], "last_seq": 10**6}
    await page.route("**/api/chat/updates*", lambda route: route.fulfill(json=nothing_new))
    await ask(page, "how do I renew my identity card")
    await page.get_by_text("registry office").wait_for()
    await page.locator("#message").fill("and my pass")  # writing the next question
    await page.locator("#message").scroll_into_view_if_needed()
    before = await page.evaluate("scrollY")
    for _ in range(2):  # each empty catch-up after the one in flight when the page was routed
        async with page.expect_response("**/api/chat/updates*"):
            pass
    assert await page.evaluate("scrollY") == before, "the message box written in stays in view"


async def test_the_transparency_page_shows_charts_without_scripts(page: Page, govbot: Govbot) -> None:
    await page.goto(govbot.url + "/transparency")
    assert await page.locator("svg.chart[role=img]").count() >= 3  # a fourth when there were cases
    assert await page.locator("script").count() == 0
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await page.evaluate("document.documentElement.scrollWidth <= 375")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "transparency.png", full_page=True)


async def test_a_message_the_server_cannot_take_now_is_kept_until_it_can(page: Page) -> None:
    assert await page.locator("#message-hint").is_visible(), "the script shows how Enter sends"
    # More times than the tries after which another server error gives up.
    unavailable = await refuse_messages(page, 503, '{"title": "Service Unavailable", "status": 503}', times=4)
    await ask(page, "pay property tax")
    await page.get_by_text(str(t("en", "web_offline"))).wait_for()
    assert "pay property tax" in str(await page.evaluate("sessionStorage.getItem('govbot-outbox')"))
    await page.get_by_text("Pay property tax online").wait_for()
    assert len(unavailable) == 4
    assert await page.locator(".pending").count() == 0
    assert await page.locator(".msg-citizen", has_text="pay property tax").count() == 1
    assert await page.evaluate("sessionStorage.getItem('govbot-outbox')") == "[]"


@pytest.mark.parametrize("status", [502, 504])
async def test_a_message_is_kept_while_the_proxy_says_govbot_is_down(page: Page, status: int) -> None:
    # The reverse proxy's answer, without Retry-After, as many times as another server error gives up after.
    down = await refuse_messages(page, status, f'{{"status": {status}}}', times=3, retry_after=None)
    await ask(page, "pay property tax")
    await page.locator("#status[role=status]", has_text=str(t("en", "web_offline"))).wait_for()
    await page.get_by_text("Pay property tax online").wait_for(timeout=3 * TIMEOUT_MS)  # back-off: 1+2+4 s
    assert len(down) == 3
    assert str(t("en", "web_rejected")) not in await page.locator("#status").inner_text()
    assert await page.locator("#message").input_value() == "", "sent, not given back"
    assert await page.locator(".msg-citizen", has_text="pay property tax").count() == 1


async def test_without_javascript_each_answer_is_shown_where_the_page_lands(plain_page: Page) -> None:
    page = plain_page
    assert not await page.locator("#message-hint").is_visible(), "Enter makes a new line without the script"
    questions = ["how do I renew my identity card", "pay property tax", "identity card", "办" * MAX_TEXT]
    for question in questions:
        await send_form(page, question)
        landed = page.locator("#" + page.url.rsplit("#", 1)[1])
        assert await landed.get_attribute("class") == "msg msg-bot", page.url
        assert await landed.get_attribute("data-seq") == await page.locator("#log .msg").last.get_attribute(
            "data-seq"
        ), "the answer is the newest entry"
        log, answer = await page.locator("#log").bounding_box(), await landed.bounding_box()
        assert log is not None
        assert answer is not None
        assert log["y"] - 1 <= answer["y"] < log["y"] + log["height"] - 20, "the answer's start is in view"
        assert await page.evaluate("document.scrollingElement.scrollHeight <= innerHeight"), "the log scrolls"
    assert await page.locator(".msg-citizen .bubble").last.text_content() == "您： " + "办" * MAX_TEXT


async def test_without_javascript_a_refused_message_is_explained_on_the_chat_in_its_language(
    plain_page: Page,
) -> None:
    page = plain_page
    await page.context.clear_cookies()  # as when the cookie expired while the page stayed open
    await send_form(page, "你好")
    assert page.url.endswith("/?refused=403#status")
    assert await page.locator("#status").text_content() == t("zh", "web_refused_expired")
    assert await page.locator("html").get_attribute("lang") == "zh-Hans"
    await send_form(page, "你好")  # the page it came back to has a new identity and token: this one is sent
    assert await page.locator(".msg-citizen .bubble").last.text_content() == "您： 你好"


async def test_a_message_whose_answer_was_lost_shows_once_after_a_reload(page: Page) -> None:
    lost = asyncio.Event()

    async def lose_the_answer(route: Route) -> None:
        await route.fetch()  # the server takes and answers the message; the answer never reaches the page
        await route.abort()
        lost.set()

    await page.clock.install()  # the page waits to send it again until the test moves its clock: never
    await page.route("**/api/chat/messages", lose_the_answer, times=1)
    await ask(page, "pay property tax")
    await asyncio.wait_for(lost.wait(), TIMEOUT_MS / 1000)
    await page.reload()  # the citizen reloads: the history has the message, the outbox still holds it
    await page.wait_for_function("sessionStorage.getItem('govbot-outbox') === '[]'")
    await page.get_by_text("Pay property tax online").wait_for()
    assert await page.locator(".pending").count() == 0, "no message left 'Sending…' for ever"
    assert await page.locator(".msg-citizen", has_text="pay property tax").count() == 1


async def test_a_reply_reaches_a_page_whose_wait_for_news_hung_on_a_dead_connection(
    chromium: Browser, govbot: Govbot
) -> None:
    context = await chromium.new_context(locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    hung = asyncio.Event()

    async def hang_the_first(route: Route) -> None:
        if hung.is_set():
            await route.continue_()
        else:
            hung.set()  # no answer and no error, as from a connection a phone's network change left dead

    await page.route("**/api/chat/updates*", hang_the_first)
    await page.clock.install()  # the page's timers run when the test moves its clock
    await page.goto(govbot.url + "/")
    await asyncio.wait_for(hung.wait(), TIMEOUT_MS / 1000)
    await ask(page, "pay property tax")
    await page.get_by_text("Pay property tax online").wait_for()
    cookie = next(c for c in await context.cookies() if c["name"] == COOKIE)
    identity = govbot.channel.signer.identity(cookie["value"])
    assert identity is not None
    await govbot.channel.send(identity, [Reply("Case TR-2026-000124 has a reply.")])
    await page.clock.fast_forward(60_000)  # far longer than the server ever waits before answering
    await page.get_by_text(str(t("en", "web_offline"))).wait_for()
    await page.clock.fast_forward(MAX_BACKOFF_MS)
    await page.get_by_text("Case TR-2026-000124 has a reply.").wait_for()
    await context.close()
