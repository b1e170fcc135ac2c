"""What every citizen-facing web route gets: security headers, a per-client rate limit, bounded bodies,
and errors as problem+json (or, for a browser without the script, a page that says why)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from aiohttp import web

from bot.channels.flood import FloodLimit
from bot.keys import SETTINGS
from bot.web import refusal
from storage.db import error_reason, out_of_reach, reconnecting

log = logging.getLogger(__name__)

ROUTE_PREFIX = "web."
"""Routes named ``web.…`` are guarded; the rest of the server (APIs, webhooks, health) is left alone."""
MAX_BODY = 64 * 1024
"""The page takes at most 4000 characters; a form sends each Chinese one as 9 bytes (%E5%8A%9E), so
36 000 bytes plus the other fields. JSON sends it as 3 bytes, or 6 as an escape (\\u529e)."""
RETRY_AFTER_SECONDS = 10
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000"
"""A year of HTTPS only, for this host alone: other hosts of the domain may not all have TLS."""
CLIENT_LIMIT = web.AppKey("web_client_limit", FloodLimit)
Network = IPv4Network | IPv6Network
TRUSTED_PROXIES = web.AppKey("web_trusted_proxies", tuple[Network, ...])
"""Reverse proxies whose X-Forwarded-For names the client (GOVBOT_WEB_TRUSTED_PROXIES)."""
IPV6_PREFIX = 64
"""An IPv6 client is counted by its /64: a household or a server has all of those addresses to pick from."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """An HTTP error to answer with an RFC 9457 problem+json body."""

    def __init__(self, status: int, title: str, detail: str = "", **headers: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.headers = status, title, detail, headers


def problem_response(problem: Problem) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    response = web.json_response(
        body, status=problem.status, content_type="application/problem+json",
        dumps=partial(json.dumps, ensure_ascii=False),  # a citizen's language as itself, not \uXXXX
    )
    response.headers.update({k.replace("_", "-"): v for k, v in problem.headers.items()})
    return response


def too_many(detail: str = "") -> Problem:
    return Problem(429, "Too Many Requests", detail, Retry_After=str(RETRY_AFTER_SECONDS))


def client_address(request: web.Request) -> str:
    """Who is asking, for rate limits: the peer, or the client a trusted proxy forwarded for."""
    peer = request.remote or "unknown"
    trusted = request.config_dict.get(TRUSTED_PROXIES, ())
    if not trusted:
        return counted_as(peer)
    return counted_as(forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), trusted))


def counted_as(client: str) -> str:
    """What the limit counts for a client: an IPv4 address as itself, an IPv6 one by its network.

    Counted one by one, the addresses of a single /64 would let one client send without limit.
    """
    address = _address(client)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # a dual-stack socket's IPv4 client
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, IPV6_PREFIX), strict=False))
    return client


def forwarded_https(request: web.Request) -> bool:
    """Whether a trusted proxy says the citizen reached it over HTTPS (X-Forwarded-Proto)."""
    trusted = request.config_dict.get(TRUSTED_PROXIES, ())
    if not _is_trusted(request.remote or "", trusted):
        return False
    values = request.headers.getall("X-Forwarded-Proto", [])
    schemes = [item.strip().lower() for value in values for item in value.split(",")]
    return bool(schemes) and schemes[0] == "https"  # the first proxy's: the one the citizen talked to


def over_https(request: web.Request) -> bool:
    """Whether the citizen's browser talks HTTPS: to us, to our trusted TLS proxy, or to the public URL."""
    public = request.config_dict[SETTINGS].public_url or ""
    return request.secure or forwarded_https(request) or public.startswith("https://")


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The address a chain of trusted proxies received the request from.

    Walks X-Forwarded-For from the right (the hop nearest to us) while the hop is a trusted proxy;
    anything left of the first untrusted hop could have been written by the client and is ignored.
    """
    hop = peer
    hops = [item.strip() for value in forwarded_for for item in value.split(",")]
    while _is_trusted(hop, trusted) and hops:
        candidate = hops.pop()
        if _address(candidate) is None:
            log.warning("ignoring a malformed X-Forwarded-For hop from proxy %s", hop)
            break
        hop = candidate
    return hop


def _is_trusted(text: str, trusted: Sequence[Network]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in trusted)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


_BODY = web.RequestKey("body", bytes)


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing with 413 once it is over ``limit`` (declared or actually sent).

    Kept on the request, so a handler run again (after a database restart) reads it again.
    """
    if _BODY in request:
        return request[_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "Content Too Large", f"the body may have at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Content Too Large", f"the body may have at most {limit} bytes")
        chunks.append(chunk)
    request[_BODY] = body = b"".join(chunks)
    return body


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rate-limit, run and harden the citizen-facing routes; other routes pass straight through.

    A path or method nothing serves gets the headers and a problem too: it is a citizen's browser as often
    as not, and aiohttp's plain error would come without them.
    """
    name = request.match_info.route.name or ""
    unmatched = request.match_info.http_exception is not None
    if not name.startswith(ROUTE_PREFIX) and not unmatched:
        return await handler(request)
    try:
        if not unmatched:
            _admit(request)
        # A request that met a connection a restarted database had closed changed nothing: run it again.
        response = await reconnecting(lambda: handler(request))
    except Problem as problem:
        response = _answer(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}  # a 405 must name them
        response = _answer(request, Problem(exc.status, exc.reason, **allow))
    except Exception as exc:
        response = _answer(request, _failure(name or request.path, exc))
    response.headers.update(SECURITY_HEADERS)
    if over_https(request):  # else a stripped first visit or link keeps citizens on plain HTTP for good
        response.headers["Strict-Transport-Security"] = HSTS
    if name != "web.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _answer(request: web.Request, problem: Problem) -> web.Response:
    """What the script reads (problem+json), or what a browser without it can show."""
    return refusal.for_browser(request, problem.status, problem.headers) or problem_response(problem)


def _admit(request: web.Request) -> None:
    """Refuse a client over its request rate, or a body declared over MAX_BODY, before any work."""
    if not request.config_dict[CLIENT_LIMIT].check(client_address(request)).allowed:
        raise too_many("too many requests from this address; wait a few seconds")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "Content Too Large", f"the body may have at most {MAX_BODY} bytes")


def _failure(route: str, exc: Exception) -> Problem:
    """503 with one log line while the database is out of reach (every request fails alike); else 500."""
    if out_of_reach(exc):
        reason = error_reason(exc)[:200]
        log.warning("web route %s: the database is unavailable, answered 503 (%s)", route, reason)
        return Problem(
            503, "Service Unavailable", "the database is unavailable; try again in a moment",
            Retry_After=str(RETRY_AFTER_SECONDS),
        )
    log.exception("web route %s failed", route)
    return Problem(500, "Internal Server Error", "please try again in a moment")
