"""The web chat over HTTP: identity cookie, CSRF, limits, bad input, escaping, history and catching up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.channels.web import WEB
from bot.config import load_settings
from bot.keys import CONVERSATION, SENDERS
from bot.notify import Unreachable
from bot.web.guard import CSP, MAX_BODY
from bot.web.hub import Hub
from bot.web.identity import COOKIE, HOST_COOKIE, Signer
from handlers.dialogue import MAX_TEXT
from handlers.i18n import t
from handlers.types import Document, Incoming, Reply
from storage.cases import CaseRecord
from storage.knowledge import KnowledgeRepository
from storage.models import Question
from tests.bot.web_kb import HOSTILE_QUESTION, web_kb
from tests.conftest import close_every_connection
from tests.handlers.conftest import shown

Client = TestClient[web.Request, web.Application]
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Browser:
    """One citizen's browser: a cookie jar, the page's CSRF token, and the chat API."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.token = ""

    @property
    def channel(self) -> Any:
        return self.client.app[WEB]

    async def open(self, **headers: str) -> str:
        response = await self.client.get("/", headers=headers)
        assert response.status == 200
        page = await response.text()
        found = CSRF.search(page)
        assert found is not None
        self.token = found.group(1)
        return page

    def set_cookie(self, value: str) -> None:
        """Replace the identity cookie, as a citizen editing it by hand would."""
        self.client.session.cookie_jar.clear()
        self.client.session.cookie_jar.update_cookies({COOKIE: value}, self.client.make_url("/"))

    def identity(self) -> str:
        cookie = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))[COOKIE].value
        identity = self.channel.signer.identity(cookie)
        assert identity is not None
        return str(identity)

    async def post(self, body: dict[str, Any], *, token: str | None = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.token if token is None else token}
        response = await self.client.post("/api/chat/messages", json=body, headers=headers)
        return response.status, await response.json(content_type=None)

    async def say(self, text: str, **fields: Any) -> dict[str, Any]:
        status, body = await self.post({"text": text, "lang": "en", **fields})
        assert status == 200, body
        return dict(body)

    async def press(self, payload: str, reply: int | None = None, **fields: Any) -> dict[str, Any]:
        status, body = await self.post({"payload": payload, "reply": reply, "lang": "en", **fields})
        assert status == 200, body
        return dict(body)


Start = Callable[..., Awaitable[Browser]]


class ObservedHub(Hub):
    """A hub that says when a request has started waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def listen(self, identity: str) -> Iterator[asyncio.Event]:
        with super().listen(identity) as event:
            self.listening.set()
            yield event


@pytest.fixture
async def start(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Start]:
    """Serve govbot on a database that already holds the test knowledge base; return a fresh browser."""
    async with sessions.begin() as session:
        await KnowledgeRepository(session).apply_import(web_kb(), "test")
    clients: list[Client] = []

    async def make(**settings: Any) -> Browser:
        client = Client(TestServer(create_app(load_settings(database_url=database_url, **settings))))
        await client.start_server()
        clients.append(client)
        return Browser(client)

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def browser(start: Start) -> Browser:
    browser = await start()
    await browser.open()
    return browser


def texts(body: dict[str, Any]) -> list[str]:
    """The visible text of each entry in a response, tags flattened."""

    def flat(nodes: list[Any]) -> str:
        return "".join(n if isinstance(n, str) else flat(n["children"]) for n in nodes)

    return [flat(entry["nodes"]) for entry in body["entries"]]


def payloads(body: dict[str, Any]) -> list[str]:
    return [b["payload"] for e in body["entries"] for row in e["buttons"] for b in row if "payload" in b]


async def test_the_page_sets_a_signed_httponly_samesite_cookie_and_strict_headers(start: Start) -> None:
    browser = await start()
    response = await browser.client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert response.status == 200
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert browser.channel.signer.identity(cookie.value) is not None
    assert response.headers["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await response.text()
    assert '<html lang="zh-Hans">' in page, "Simplified Chinese, for screen readers' voices and fonts"
    assert '<input type="hidden" name="lang" value="zh">' in page, "the language sent with messages"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline script"
    assert 'role="log"' in page
    assert 'aria-live="polite"' in page
    assert '<label for="message"' in page


async def test_a_question_gets_its_answer_with_rating_buttons_and_links(browser: Browser) -> None:
    body = await browser.say("how do I renew my identity card")
    citizen, answer = body["entries"]
    assert (citizen["role"], citizen["nodes"]) == ("citizen", ["how do I renew my identity card"])
    assert answer["role"] == "bot"
    assert answer["kind"] == "answer"
    assert "registry office" in texts(body)[1]
    link, rating = answer["buttons"]
    assert link == [{"label": "Book online", "url": "https://registry.example.gov/id"}]
    assert [b["payload"].rsplit(":", 1)[1] for b in rating] == ["1", "0"]
    assert body["last_seq"] == 2
    assert body["lang"] == "en"


async def test_did_you_mean_and_rating_are_button_presses_shown_with_their_labels(browser: Browser) -> None:
    clarify = await browser.say("identity card")
    reply_seq = clarify["entries"][-1]["seq"]
    first = payloads(clarify)[0]
    picked = await browser.press(first, reply_seq)
    pressed, answer = picked["entries"]
    assert pressed["role"] == "press"
    offered = clarify["entries"][-1]["buttons"][0][0]["label"]
    assert pressed["nodes"] == [offered]
    assert answer["kind"] == "answer"
    helpful = next(p for p in payloads(picked) if p.endswith(":1"))
    rated = await browser.press(helpful, answer["seq"])
    assert texts(rated) == ["👍 Helpful", "Thank you for your feedback!"]


async def test_a_post_without_the_right_csrf_token_is_forbidden(start: Start) -> None:
    browser = await start()
    await browser.open()
    for token in ("", "forged", Signer("another secret of 32 characters!").csrf_token(browser.identity())):
        status, body = await browser.post({"text": "hello"}, token=token)
        assert status == 403
        assert body["status"] == 403
    async with browser.client.session.post(
        browser.client.make_url("/api/chat/messages"), json={"text": "hello"}
    ) as response:
        assert response.status == 403
        assert response.content_type == "application/problem+json"


async def test_a_post_from_another_site_is_forbidden_even_with_the_token(browser: Browser) -> None:
    response = await browser.client.post(
        "/api/chat/messages",
        json={"text": "hello"},
        headers={"X-CSRF-Token": browser.token, "Origin": "https://evil.example"},
    )
    assert response.status == 403
    response = await browser.client.post(
        "/api/chat/messages",
        json={"text": "hello"},
        headers={"X-CSRF-Token": browser.token, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status == 403


async def test_a_tampered_cookie_gets_a_new_identity_and_the_page_not_an_error(browser: Browser) -> None:
    await browser.say("how do I renew my identity card")
    old = browser.identity()
    browser.set_cookie(old[:-1] + ("A" if old[-1] != "A" else "B") + ".bad-signature")
    page = await browser.open()
    assert browser.identity() != old
    assert "renew my identity card" not in page, "a forged identity sees none of the history"


async def test_a_tampered_cookie_cannot_post(browser: Browser) -> None:
    browser.set_cookie("x" * 22 + ".forged")
    status, body = await browser.post({"text": "hello"})
    assert status == 403
    assert "reload" in body["detail"]


async def test_an_oversized_body_is_refused_with_413(browser: Browser) -> None:
    status, body = await browser.post({"text": "x" * (MAX_BODY + 1)})
    assert status == 413
    assert body["title"] == "Content Too Large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    response = await browser.client.post(
        "/api/chat/messages",
        data=chunks(),
        headers={"X-CSRF-Token": browser.token, "Content-Type": "application/json"},
    )
    assert response.status == 413


MALFORMED = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"text": 5}', "text must be a string"),
    (b'{"text": "a", "payload": "b"}', "either text or payload"),
    (b"{}", "either text or payload"),
    (json.dumps({"payload": "x" * 65}).encode(), "payload over"),
    (b'{"text": "a", "client_id": "../../etc"}', "client_id"),
    (b'{"payload": "rate:1:1", "reply": "seven"}', "reply"),
    (b'{"payload": "rate:1:1", "reply": true}', "reply"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[" * 10_000, "not valid JSON"),
]


async def test_malformed_messages_get_400_problem_json(browser: Browser) -> None:
    for body, detail in MALFORMED:
        response = await browser.client.post(
            "/api/chat/messages",
            data=body,
            headers={"X-CSRF-Token": browser.token, "Content-Type": "application/json"},
        )
        assert response.status == 400, body[:40]
        assert response.content_type == "application/problem+json"
        assert detail in (await response.json(content_type=None))["detail"], body[:40]


async def test_other_media_types_get_415(browser: Browser) -> None:
    response = await browser.client.post(
        "/api/chat/messages",
        data=b"hello",
        headers={"X-CSRF-Token": browser.token, "Content-Type": "text/plain"},
    )
    assert response.status == 415


async def test_a_flood_from_one_citizen_gets_429_in_their_language(start: Start) -> None:
    browser = await start(flood_limit_per_minute=2)
    await browser.open()
    await browser.say("hello")
    await browser.say("hello again")
    status, body = await browser.post({"text": "and again", "lang": "zh"})
    assert status == 429
    assert body["detail"] == "您发送消息过于频繁，请稍等片刻再发送。"


async def test_a_message_refused_by_the_flood_limit_is_not_in_the_log_and_is_refused_again(
    start: Start,
) -> None:
    browser = await start(flood_limit_per_minute=2)
    await browser.open()
    await browser.say("hello")
    await browser.say("hello again")
    for _ in range(2):  # the page sends it again later under the same id: not an answered message yet
        status, _body = await browser.post({"text": "and again", "lang": "en", "client_id": "m-0003-flood"})
        assert status == 429
    news = await (await browser.client.get("/api/chat/updates", params={"after": "0", "lang": "en"})).json()
    assert "and again" not in texts(news)
    assert news["last_seq"] == 4


async def test_a_flood_from_one_address_gets_429_with_retry_after(start: Start) -> None:
    browser = await start(web_requests_per_minute=3)
    statuses = [(await browser.client.get("/")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = await browser.client.get("/transparency")
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    assert (await browser.client.get("/healthz")).status == 200, "only the citizens' pages are limited"


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(start: Start) -> None:
    browser = await start(web_requests_per_minute=2, web_trusted_proxies="127.0.0.0/8")

    async def status(client: str) -> int:
        return (await browser.client.get("/", headers={"X-Forwarded-For": client})).status

    assert [await status("203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert await status("198.51.100.9") == 200, "another citizen behind the same proxy is not limited"


async def test_without_trusted_proxies_x_forwarded_for_cannot_dodge_the_limit(start: Start) -> None:
    browser = await start(web_requests_per_minute=2)
    forged = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(3)]
    statuses = [(await browser.client.get("/", headers=headers)).status for headers in forged]
    assert statuses == [200, 200, 429]


async def test_script_in_an_answer_or_a_message_is_shown_as_text(browser: Browser) -> None:
    await browser.say("<script>alert('citizen')</script>")
    body = await browser.say(HOSTILE_QUESTION)
    answer = body["entries"][-1]
    assert answer["kind"] == "answer"
    assert answer["nodes"][0] == {"tag": "b", "children": ["Parking office"]}
    flat = json.dumps(answer["nodes"])
    assert "javascript:" not in flat
    assert '"tag": "script"' not in flat
    assert '"tag": "img"' not in flat
    assert "<script>alert('kb')</script>" in texts(body)[-1]
    assert all("url" not in b for row in answer["buttons"] for b in row), "a javascript: link is no link"
    page = await browser.open()
    log = page[page.index('id="log"') : page.index('id="status"')]
    assert "<script" not in log
    assert "<img" not in log
    assert "javascript:" not in log
    assert "&lt;script&gt;alert(&#x27;citizen&#x27;)&lt;/script&gt;" in log
    assert "&lt;script&gt;alert(&#x27;kb&#x27;)&lt;/script&gt;" in log
    assert '<b>Parking office</b>' in log
    assert '<a href="https://parking.example.gov/" rel="noopener noreferrer">Parking site</a>' in log


async def test_the_history_is_on_the_page_after_a_reload(browser: Browser) -> None:
    await browser.say("how do I renew my identity card")
    await browser.say("pay property tax")
    page = await browser.open()
    assert page.index("how do I renew my identity card") < page.index("pay property tax")
    assert 'data-last-seq="4"' in page
    assert 'name="payload" value="rate:' in page
    assert 'href="https://registry.example.gov/id"' in page


async def test_a_page_that_lost_its_connection_gets_everything_after_its_last_entry(browser: Browser) -> None:
    await browser.say("how do I renew my identity card")
    await browser.say("pay property tax")
    response = await browser.client.get("/api/chat/updates", params={"after": "2"})
    body = await response.json()
    assert [e["seq"] for e in body["entries"]] == [3, 4]
    assert body["last_seq"] == 4
    params = {"after": "4", "lang": "en"}
    caught_up = await (await browser.client.get("/api/chat/updates", params=params)).json()
    assert caught_up == {"entries": [], "last_seq": 4, "lang": "en"}


async def test_news_says_the_language_its_entries_are_shown_in_with_the_pages_words_in_it(
    browser: Browser,
) -> None:
    await browser.say("pay property tax")
    await browser.press("lang:zh")
    params = {"after": "2", "lang": "en"}  # a page that has not had the answer to its press of 中文
    news = await (await browser.client.get("/api/chat/updates", params=params)).json()
    assert news["lang"] == "zh"
    assert {entry["lang"] for entry in news["entries"]} == {"zh"}
    assert news["ui"]["web_bot"] == t("zh", "web_bot")


async def test_a_message_sent_again_is_answered_from_the_log_not_handled_twice(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await browser.say("pay property tax", client_id="m-0001-retry")
    again = await browser.say("pay property tax", client_id="m-0001-retry")
    assert again["entries"] == first["entries"]
    assert again["duplicate"] is True
    async with sessions() as session:
        assert await session.scalar(select(func.count(Question.id))) == 1


ON_POSTGRESQL = [pytest.param("postgresql", marks=pytest.mark.postgres)]
"""Only PostgreSQL is shared by several processes (govbot run --workers): such tests do not run on SQLite."""


@pytest.mark.parametrize("database_url", ON_POSTGRESQL, indirect=True)
async def test_a_message_sent_again_to_another_process_while_the_first_handles_it_is_handled_once(
    start: Start, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = await start(), await start()  # two processes' servers on one database
    await first.open()
    second.set_cookie(first.client.session.cookie_jar.filter_cookies(first.client.make_url("/"))[COOKIE].value)
    second.token = first.token
    dialogue = first.client.app[CONVERSATION]
    handling, answer = asyncio.Event(), asyncio.Event()
    handle = dialogue.handle

    async def held(incoming: Incoming) -> list[Reply]:
        handling.set()
        await answer.wait()
        return await handle(incoming)

    monkeypatch.setattr(dialogue, "handle", held)
    sent = asyncio.create_task(first.say("pay property tax", client_id="m-0002-retry"))
    await asyncio.wait_for(handling.wait(), 10)
    again = await asyncio.wait_for(second.say("pay property tax", client_id="m-0002-retry"), 10)
    answer.set()
    answered = await sent
    assert again["duplicate"] is True
    assert [e["client_id"] for e in again["entries"]] == ["m-0002-retry"]
    assert again["entries"][0] == answered["entries"][0]
    assert "Pay property tax online" in " ".join(texts(answered))
    async with sessions() as session:
        assert await session.scalar(select(func.count(Question.id))) == 1


async def test_a_department_notice_wakes_a_waiting_page(browser: Browser) -> None:
    await browser.say("hello")
    identity = browser.identity()
    waiting = asyncio.create_task(browser.client.get("/api/chat/updates", params={"after": 2, "wait": 20}))
    sender = browser.client.app[SENDERS]["web"]
    await sender.send(identity, [Reply("Your case <b>TR-2026-000001</b> is now in progress.", kind="notice")])
    response = await asyncio.wait_for(waiting, 10)
    body = await response.json()
    assert [e["nodes"] for e in body["entries"]] == [
        ["Your case ", {"tag": "b", "children": ["TR-2026-000001"]}, " is now in progress."]
    ]


async def test_a_notice_for_an_unknown_web_identity_is_unreachable(browser: Browser) -> None:
    with pytest.raises(Unreachable):
        await browser.channel.send(browser.identity(), [Reply("Your case is closed.")])


async def test_waiting_pages_are_released_when_the_server_shuts_down(browser: Browser) -> None:
    await browser.say("hello")
    hub = browser.channel.hub = ObservedHub()
    waiting = asyncio.create_task(browser.client.get("/api/chat/updates", params={"after": 2, "wait": 25}))
    await asyncio.wait_for(hub.listening.wait(), 10)
    hub.close()
    body = await (await asyncio.wait_for(waiting, 10)).json()
    assert body["entries"] == []


BAD_CATCH_UP = (
    "after=-1", "after=x", "wait=abc", "wait=nan", "wait=1000", "wait=-1", "after=" + "9" * 30,
    "after=%D9%A1", "after=1e3", "after=1_000", "after=%2B1", "after=%201%20", "wait=1.9", "after=2147483648",
)


async def test_bad_catch_up_parameters_get_400(browser: Browser) -> None:
    for query in BAD_CATCH_UP:
        response = await browser.client.get(f"/api/chat/updates?{query}")
        assert response.status == 400, query
        assert response.content_type == "application/problem+json", query
    response = await browser.client.get("/api/chat/updates?after=9999999999")
    detail = (await response.json(content_type=None))["detail"]
    assert detail == "after must be a whole number from 0 to 2147483647"
    assert (await browser.client.get("/api/chat/updates?after=0&wait=0")).status == 200


async def test_catching_up_needs_the_identity_cookie(start: Start) -> None:
    browser = await start()
    response = await browser.client.get("/api/chat/updates")
    assert response.status == 403


async def test_the_language_switch_answers_in_the_new_language_and_the_page_follows(browser: Browser) -> None:
    body = await browser.press("lang:zh")
    assert body["lang"] == "zh"
    assert body["ui"]["web_send"] == "发送"
    assert texts(body) == ["中文", "已切换为简体中文。"]
    page = await browser.open(**{"Accept-Language": "en"})
    assert '<html lang="zh-Hans">' in page
    assert 'value="lang:zh" lang="zh-Hans" class="lang" aria-pressed="true"' in page
    assert 'value="lang:en" lang="en" class="lang" aria-pressed="false"' in page


async def test_a_form_post_without_javascript_works_and_redirects(browser: Browser) -> None:
    response = await browser.client.post(
        "/api/chat/messages",
        data={"csrf": browser.token, "text": "pay property tax", "lang": "en"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/#e2", "to the answer: the script is not there to scroll to it"
    page = await browser.open()
    assert "property tax online" in page
    assert '<div class="msg msg-citizen" id="e1" data-seq="1" lang="en">' in page
    assert '<div class="msg msg-bot" id="e2" data-seq="2" lang="en">' in page
    hint = re.search(r'<p id="message-hint"[^>]*>', page)
    assert hint is not None
    assert " hidden" in hint.group(0), "Enter sends only with the script, which shows the hint"
    forged = await browser.client.post(
        "/api/chat/messages", data={"csrf": "nope", "text": "x"}, allow_redirects=False
    )
    assert (forged.status, forged.headers["Location"]) == (303, "/?refused=403#status")


async def form_post(browser: Browser, **fields: str) -> tuple[int, str]:
    """Post the page's form as a browser without JavaScript does; the status and where it leads."""
    response = await browser.client.post(
        "/api/chat/messages", data={"csrf": browser.token, **fields}, allow_redirects=False
    )
    return response.status, response.headers.get("Location", "")


async def status_line(browser: Browser, location: str) -> str:
    response = await browser.client.get(location, headers={"Accept-Language": "zh-CN"})
    found = re.search(r'<p id="status"[^>]*>([^<]*)</p>', await response.text())
    assert found is not None
    return found.group(1)


async def test_a_refused_form_post_goes_back_to_the_chat_which_says_why_in_its_language(
    start: Start,
) -> None:
    browser = await start(flood_limit_per_minute=1)
    await browser.open(**{"Accept-Language": "zh-CN"})
    assert await form_post(browser, text="你好") == (303, "/#e2")
    refused = await form_post(browser, text="你好")
    assert refused == (303, "/?refused=429#status")
    assert await status_line(browser, refused[1]) == t("zh", "web_refused_too_fast")
    too_long = await form_post(browser, text="x" * (MAX_BODY + 1))
    assert await status_line(browser, too_long[1]) == t("zh", "web_refused_too_long")
    expired = await form_post(browser, text="你好", csrf="")
    assert await status_line(browser, expired[1]) == t("zh", "web_refused_expired")
    malformed = await form_post(browser, text="你好", client_id="../..")
    assert await status_line(browser, malformed[1]) == t("zh", "web_rejected")
    assert await status_line(browser, "/?refused=<script>") == "", "only a status makes a reason"
    status, body = await browser.post({"text": "又一条", "lang": "zh"})
    assert status == 429, "the script still gets problem+json"
    assert body["detail"] == "您发送消息过于频繁，请稍等片刻再发送。"


async def test_problem_json_keeps_chinese_as_it_is(start: Start) -> None:
    browser = await start(flood_limit_per_minute=1)
    await browser.open()
    await browser.say("hello")
    response = await browser.client.post(
        "/api/chat/messages", json={"text": "再一条", "lang": "zh"}, headers={"X-CSRF-Token": browser.token}
    )
    assert response.status == 429
    assert "您发送消息过于频繁" in (await response.read()).decode("utf-8")


async def test_the_longest_chinese_message_the_page_allows_is_not_too_large(browser: Browser) -> None:
    status, location = await form_post(browser, text="办" * MAX_TEXT, lang="zh")  # 9 bytes each in a form
    assert (status, location) == (303, "/#e2")
    status, _ = await browser.post({"text": "办" * MAX_TEXT})
    assert status == 200


async def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(start: Start) -> None:
    proxied = await start(web_trusted_proxies="127.0.0.0/8")
    response = await proxied.client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert response.cookies[HOST_COOKIE]["secure"]
    assert not (await proxied.client.get("/")).cookies[COOKIE]["secure"], "plain HTTP through the proxy"
    direct = await start()
    response = await direct.client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert not response.cookies[COOKIE]["secure"], "only a trusted proxy is believed"


async def test_unknown_paths_and_wrong_methods_get_the_security_headers(browser: Browser) -> None:
    unserved = (("PUT", "/api/chat/messages", 405), ("DELETE", "/", 405), ("GET", "/nope", 404))
    for method, path, status in unserved:
        response = await browser.client.request(method, path)
        assert response.status == status, (method, path)
        assert response.headers["Content-Security-Policy"] == CSP, (method, path)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.content_type == "application/problem+json"
    wrong = await browser.client.put("/api/chat/messages")
    assert wrong.headers["Allow"] == "POST"


async def test_a_file_sent_to_a_citizen_is_downloadable_by_them_only(start: Start) -> None:
    owner, stranger = await start(), None
    await owner.open()
    await owner.say("hello")
    export = Document("mydata.json", b'{"questions": []}')
    await owner.channel.send(owner.identity(), [Reply("Your data", document=export, kind="mydata")])
    await owner.channel.send(owner.identity(), [Reply("Minutes", document=Document("a&b.txt", b"x"))])
    page = await owner.open()
    assert 'href="/api/chat/documents/3" download>Download mydata.json</a>' in page
    assert "Download a&amp;b.txt</a>" in page, "escaped once"
    response = await owner.client.get("/api/chat/documents/3")
    assert response.status == 200
    assert await response.read() == export.content
    assert response.headers["Content-Disposition"] == 'attachment; filename="mydata.json"'
    owner.client.session.cookie_jar.clear()
    stranger = owner
    await stranger.open()
    assert (await stranger.client.get("/api/chat/documents/3")).status == 404
    assert (await stranger.client.get("/api/chat/documents/abc")).status == 404


async def test_identities_survive_a_restart_with_the_secret_kept_in_the_database(start: Start) -> None:
    first = await start()
    await first.open()
    await first.say("pay property tax")
    cookie = first.client.session.cookie_jar.filter_cookies(first.client.make_url("/"))[COOKIE].value
    second = await start()
    second.set_cookie(cookie)
    assert "property tax online" in await second.open()


async def test_a_configured_secret_signs_the_cookies(start: Start) -> None:
    secret = "a configured secret of enough length"
    browser = await start(web_secret=secret)
    await browser.open()
    cookie = browser.client.session.cookie_jar.filter_cookies(browser.client.make_url("/"))[COOKIE].value
    assert Signer(secret).identity(cookie) == browser.identity()


async def test_static_files_are_served_and_the_script_never_uses_inner_html(browser: Browser) -> None:
    response = await browser.client.get("/static/chat.js")
    assert response.status == 200
    assert response.headers["Content-Security-Policy"] == CSP
    script = await response.text()
    assert "innerHTML" not in script
    assert "outerHTML" not in script
    assert "eval(" not in script
    assert (await browser.client.get("/static/../app.py")).status in (403, 404)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_message_with_its_client_id_is_answered_once_after_a_database_restart(
    browser: Browser, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await browser.say("where is the moon festival", client_id="client-0001")  # the pools now hold connections
    await close_every_connection(database_url)  # what a server restart does to them
    await engine.dispose()  # the test's own pool: only the app's is under test
    body = await browser.say("how do I renew my identity card", client_id="client-0002")
    assert [entry["role"] for entry in body["entries"]] == ["citizen", "bot"]
    assert body["entries"][1]["kind"] == "answer"
    async with sessions() as session:
        asked = (await session.execute(select(Question.text).order_by(Question.id))).scalars().all()
    assert list(asked) == ["where is the moon festival", "how do I renew my identity card"]


async def test_a_double_press_on_the_last_step_opens_one_case(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Two presses at once (or the page sending again while the first is handled) are one turn after
    the other: the second finds the request already sent."""
    body = await browser.say("/human")
    body = await browser.press(shown(payloads(body), "esc:cat:tax"))
    body = await browser.press(shown(payloads(body), "esc:yes"))
    body = await browser.say("My tax refund from March has not arrived.")
    only_here = shown(payloads(body), "esc:consent:0")
    first, second = await asyncio.gather(
        browser.press(only_here, client_id="first-press"), browser.press(only_here, client_id="second-press")
    )
    async with sessions() as session:
        tickets = list(await session.scalars(select(CaseRecord.ticket)))
    assert len(tickets) == 1
    assert [tickets[0] in " ".join(texts(body)) for body in (first, second)].count(True) == 1


async def test_over_https_an_identity_planted_under_the_plain_name_is_not_taken(start: Start) -> None:
    # A sibling subdomain, or anyone on the citizen's network over plain HTTP, can set a cookie for this
    # host: a valid identity of the attacker's, which the citizen would then chat under and the attacker
    # read. Over HTTPS the identity lives in a __Host- cookie, which only this origin can set.
    proxied = await start(web_trusted_proxies="127.0.0.0/8")
    https = {"X-Forwarded-Proto": "https"}
    first = await proxied.client.get("/", headers=https)
    cookie = first.cookies[HOST_COOKIE]
    assert (cookie["path"], cookie["domain"]) == ("/", "")
    planted = cookie.value
    proxied.client.session.cookie_jar.clear()
    proxied.client.session.cookie_jar.update_cookies({COOKIE: planted}, proxied.client.make_url("/"))
    second = await proxied.client.get("/", headers=https)
    assert second.cookies[HOST_COOKIE].value != planted  # a fresh identity, not the planted one


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_web_message_the_dialogue_failed_on_is_counted_as_an_error(
    browser: Browser, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:  # a question cannot be recorded: the dialogue fails and apologises
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse_questions BEFORE INSERT ON questions BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    body = await browser.say("how do I renew my identity card")
    assert [entry["kind"] for entry in body["entries"]][-1] == "error"
    metrics = await (await browser.client.get("/metrics")).text()
    assert 'govbot_updates_handled_total{channel="web",result="error"} 1.0' in metrics
    assert 'govbot_updates_handled_total{channel="web",result="ok"}' not in metrics
