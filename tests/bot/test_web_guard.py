"""Which address the web chat's rate limit counts, behind reverse proxies or not, over IPv4 or IPv6."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_network

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.flood import FloodLimit
from bot.config import load_settings
from bot.keys import SETTINGS
from bot.web.guard import CLIENT_LIMIT, TRUSTED_PROXIES, counted_as, forwarded_client, guard

PROXIES = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))
Client = TestClient[web.Request, web.Application]
Serve = Callable[..., Awaitable[Client]]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not from a proxy: the header is ignored
        ("10.0.0.2", [], "10.0.0.2"),  # a proxy that forwarded nothing is the client
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["198.51.100.1, 10.0.0.9"], "198.51.100.1"),  # two proxies in a chain
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client's own forged hop is ignored
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # several header lines read as one list
        ("10.0.0.2", ["10.0.0.3, 10.0.0.4"], "10.0.0.3"),  # all trusted: the furthest hop
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        ("10.0.0.2", ["not-an-address"], "10.0.0.2"),  # garbage stops at the proxy we know
        ("10.0.0.2", ["198.51.100.1, "], "10.0.0.2"),
        ("unknown", ["198.51.100.1"], "unknown"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded_for: list[str], client: str
) -> None:
    assert forwarded_client(peer, forwarded_for, PROXIES) == client


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"),  # any address of a household's /64
        ("2001:db8:1:2::1", "2001:db8:1:2:5e3a:9f00:12:7"),  # a privacy address picked for each request
        ("::ffff:198.51.100.1", "198.51.100.1"),  # a dual-stack socket's IPv4 client is that client
    ],
)
def test_the_addresses_of_one_ipv6_network_share_one_limit(one: str, other: str) -> None:
    assert counted_as(one) == counted_as(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:3::1"),  # the neighbour's /64
        ("198.51.100.1", "198.51.100.2"),  # IPv4 addresses stay apart
        ("::ffff:198.51.100.1", "::ffff:198.51.100.2"),
    ],
)
def test_other_networks_and_ipv4_clients_are_counted_apart(one: str, other: str) -> None:
    assert counted_as(one) != counted_as(other)


def test_what_is_not_an_address_is_counted_as_it_is() -> None:
    assert counted_as("unknown") == "unknown"


async def page(request: web.Request) -> web.Response:
    return web.Response(text="a citizen's page")


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """A guarded page behind a trusted proxy on 127.0.0.1, with the given settings."""
    clients: list[Client] = []

    async def make(**settings: str) -> Client:
        app = web.Application(middlewares=[guard])
        app[SETTINGS] = load_settings(database_url="sqlite+aiosqlite://", **settings)
        app[CLIENT_LIMIT] = FloodLimit(100)
        app[TRUSTED_PROXIES] = (ip_network("127.0.0.0/8"),)
        app.router.add_get("/", page, name="web.page")
        client = Client(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_a_page_reached_over_https_tells_the_browser_to_use_nothing_else(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    public = await serve(public_url="https://chat.example.gov")
    assert "Strict-Transport-Security" in (await public.get("/")).headers


async def test_a_page_over_plain_http_sets_no_hsts(serve: Serve) -> None:
    client = await serve()
    response = await client.get("/", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in response.headers
